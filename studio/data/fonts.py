"""The Fonts dataset of GZS-Net (paper 000, appendix A), rendered on demand from fonts that are the same everywhere.

Glyphs come from the TrueType files shipped inside the matplotlib wheel (DejaVu, STIX, Computer Modern), so a
preset gives the same pixels on every machine with the same Pillow; users may add a folder of their own fonts.
The font files' hashes go into the fingerprint.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from studio.data.dataset import AttributedDataset
from studio.data.schema import Attribute, AttributeSchema
from studio.errors import DatasetError

LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 60), "orange": (255, 165, 0), "yellow": (255, 255, 0), "green": (0, 128, 0),
    "cyan": (0, 255, 255), "blue": (0, 0, 255), "purple": (128, 0, 128), "pink": (255, 192, 203),
    "chocolate": (210, 105, 30), "silver": (192, 192, 192),
}
# Em size as a fraction of the canvas; the paper's 80/100/120 px glyphs on 128 px are tall capitals, our ink
# box is centred so every letter of every font stays inside the canvas.
SIZES: dict[str, float] = {"small": 0.45, "medium": 0.6, "large": 0.75}

# Fonts from the matplotlib wheel that draw Latin letters at their ASCII code points.
BUILTIN_FONTS = (
    "DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique",
    "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSansMono-Oblique", "DejaVuSansMono-BoldOblique",
    "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic",
    "STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic", "STIXGeneralBolIta",
    "cmr10", "cmb10", "cmss10", "cmtt10", "cmti10", "cmmi10",
)


@dataclass(frozen=True)
class FontsPreset:
    letters: tuple[str, ...]
    sizes: tuple[str, ...]
    font_colors: tuple[str, ...]
    background_colors: tuple[str, ...]
    fonts: tuple[str, ...]


PRESETS: dict[str, FontsPreset] = {
    "full": FontsPreset(LETTERS, tuple(SIZES), tuple(COLORS), tuple(COLORS), BUILTIN_FONTS),
    "small": FontsPreset(
        tuple("ABCDEFGHIJ"), tuple(SIZES), ("red", "yellow", "green", "blue", "silver"),
        ("red", "yellow", "green", "blue", "silver"),
        ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSansMono", "DejaVuSerif",
         "DejaVuSerif-BoldItalic", "STIXGeneral", "STIXGeneralItalic", "cmtt10", "cmss10"),
    ),
    "tiny": FontsPreset(
        tuple("ABCDE"), ("small", "large"), ("red", "green", "blue"), ("red", "green", "blue"),
        ("DejaVuSans", "DejaVuSerif-Bold", "cmtt10", "STIXGeneralItalic"),
    ),
}


@cache
def builtin_font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@cache
def _file_sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _font_files(names: tuple[str, ...], extra_dir: Path | None) -> dict[str, Path]:
    files: dict[str, Path] = {}
    base = builtin_font_dir()
    for name in names:
        path = base / f"{name}.ttf"
        if not path.exists():
            raise DatasetError(f"built-in font {name!r} is missing from {base}; reinstall matplotlib")
        files[name] = path
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise DatasetError(f"font folder {extra_dir} does not exist; give a folder of .ttf/.otf files")
        found = sorted(p for p in extra_dir.iterdir() if p.suffix.lower() in {".ttf", ".otf"})
        if not found:
            raise DatasetError(f"font folder {extra_dir} holds no .ttf or .otf files")
        for p in found:
            files.setdefault(p.stem, p)
    return files


class FontsDataset(AttributedDataset):
    """Letters x sizes x (font colour != background colour) x fonts, one image per combination."""

    def __init__(self, preset: str = "small", resolution: int = 64, font_dir: str | None = None) -> None:
        if preset not in PRESETS:
            raise DatasetError(f"unknown Fonts preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if resolution < 16:
            raise DatasetError(f"res={resolution} is too small for Fonts; use 32, 64 or 128")
        p = PRESETS[preset]
        self.preset = preset
        self._font_files = _font_files(p.fonts, Path(font_dir) if font_dir and font_dir != "system" else None)
        if font_dir == "system":  # the machine's installed fonts (a folder named so: fonts=./system)
            from studio.data.system_fonts import system_font_files

            for name, path in system_font_files(p.letters).items():
                self._font_files.setdefault(name, path)
        fonts = tuple(self._font_files)
        schema = AttributeSchema((
            Attribute("letter", p.letters),
            Attribute("size", p.sizes),
            Attribute("font_color", p.font_colors, tuple(COLORS[c] for c in p.font_colors)),
            Attribute("background_color", p.background_colors, tuple(COLORS[c] for c in p.background_colors)),
            Attribute("font", fonts),
        ))
        grids = np.meshgrid(*[np.arange(a.cardinality) for a in schema], indexing="ij")
        codes = np.stack([g.reshape(-1) for g in grids], axis=1)
        fc = np.array(p.font_colors)[codes[:, 2]]
        bg = np.array(p.background_colors)[codes[:, 3]]
        codes = codes[fc != bg]
        spec = f"fonts:{preset},res={resolution}" + (f",fonts={font_dir}" if font_dir else "")
        super().__init__(spec, schema, codes, resolution)
        self._local = threading.local()

    def _fingerprint_parts(self) -> list[str]:
        import PIL

        parts = [f"pillow={PIL.__version__}"]
        parts += [f"{name}={_file_sha(str(path))}" for name, path in self._font_files.items()]
        parts += [f"{k}={v}" for k, v in SIZES.items()]
        return parts

    def _font(self, name: str, px: int) -> ImageFont.FreeTypeFont:
        # FreeType faces are not thread-safe: each thread keeps its own.
        fonts = getattr(self._local, "fonts", None)
        if fonts is None:
            fonts = self._local.fonts = {}
        key = (name, px)
        if key not in fonts:
            fonts[key] = ImageFont.truetype(str(self._font_files[name]), size=px)
        return fonts[key]

    def render_values(self, row) -> np.ndarray | None:
        letter, size, fc, bg, font = (int(v) for v in row)
        s = self.schema
        if s["font_color"].values[fc] == s["background_color"].values[bg]:
            return None
        res = self.resolution
        img = Image.new("RGB", (res, res), s["background_color"].rgb[bg])  # type: ignore[index]
        face = self._font(s["font"].values[font], max(4, round(SIZES[s["size"].values[size]] * res)))
        text = s["letter"].values[letter]
        left, top, right, bottom = face.getbbox(text)
        x = (res - (right - left)) / 2 - left
        y = (res - (bottom - top)) / 2 - top
        ImageDraw.Draw(img).text((x, y), text, font=face, fill=s["font_color"].rgb[fc])  # type: ignore[index]
        return np.asarray(img, dtype=np.uint8)

    def _render(self, index: int) -> np.ndarray:
        out = self.render_values(self.codes[index])
        assert out is not None
        return out
