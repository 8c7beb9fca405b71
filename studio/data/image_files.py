"""Reading a user's image files as untrusted input: the one guarded opener every read of user images goes through.

A user's folder, or a file dropped onto the app, may hold a link that points outside the folder, a small file
that declares billions of pixels (a decompression bomb: decoding it would take gigabytes) or a format whose
plugin runs other programs (Pillow's EPS reader calls Ghostscript). ``open_image`` refuses all three before a
pixel is decoded, and turns every decoding failure into an :class:`ImageFileError` that names the file, so no
caller ever shows a traceback for a bad image.
"""

from __future__ import annotations

import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from studio.errors import StudioError

#: The formats a user's image may have (Pillow's names); the file suffixes folders list are these formats'.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
#: Largest image decoded (width x height): Pillow's own warning threshold, about 9,460 x 9,460 px. Larger files
#: are refused from their header, before any decoding.
MAX_PIXELS = 89_478_485
# Pillow warns about images above its threshold while opening them; this module refuses those itself, with a
# message that says what to do, so the warning would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)


class ImageFileError(StudioError):
    """An image file that cannot, or may not, be read. ``reason`` says why without naming the file (it reads
    after "cannot be read as an image: "), so callers that know more (a CSV line) can name the file their way."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} cannot be read as an image: {reason}")
        self.path = path
        self.reason = reason


def inside(path: str | Path, root: str | Path) -> Path:
    """``path`` with every link resolved, refused unless it stays inside ``root`` (itself resolved).

    Checking the path as written is not enough: ``pic.png -> /etc/passwd`` is a plain name inside the folder.
    """
    path = Path(path)
    root = Path(root).resolve()
    written = root / path
    try:
        resolved = written.resolve()
    except (OSError, RuntimeError):  # a link loop
        raise ImageFileError(path, "it is a link that leads nowhere (a loop)") from None
    if not resolved.is_relative_to(root):
        if written.is_symlink():
            how = "it is a link to"
        elif path.is_absolute() or ".." in path.parts:
            how = "it points to"
        else:
            how = "it leads through a link to"
        raise ImageFileError(path, f"{how} {resolved}, outside the folder {root}; a dataset reads only files inside "
                                   "its folder: copy the image into the folder instead of linking to it")
    return resolved


def _bomb_reason(pixels: int, size: tuple[int, int] | None = None) -> str:
    dims = f"{size[0]} x {size[1]} pixels, " if size else ""
    return (f"it is {dims}{pixels / 1e6:.0f} megapixels, more than the {MAX_PIXELS / 1e6:.0f} megapixels "
            "Attribute Studio decodes (a decompression bomb, or a very large scan); shrink it, e.g. to 1024 px on "
            "its long side")


def _pillow_bomb_reason(error: Exception) -> str:
    """Pillow refuses images above twice its threshold itself, before we see their size; its message has the
    pixel count."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return _bomb_reason(int(found.group(1))) if found else f"{error}; shrink it, e.g. to 1024 px on its long side"


@contextmanager
def open_image(path: str | Path, root: str | Path | None = None) -> Iterator[Image.Image]:
    """Open an image lazily (header only) after the checks above; errors inside the ``with`` block while
    decoding become :class:`ImageFileError` too. With ``root``, the file must lie inside that folder."""
    path = Path(path)
    source = inside(path, root) if root is not None else path
    try:
        with Image.open(source, formats=FORMATS) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageFileError(path, _bomb_reason(width * height, (width, height)))
            yield img
    except FileNotFoundError:
        raise ImageFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageFileError(path, "it is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ImageFileError(path, f"it is not an image in a format Attribute Studio reads ({', '.join(FORMATS)})") \
            from None
    except Image.DecompressionBombError as e:
        raise ImageFileError(path, _pillow_bomb_reason(e)) from None
    except _DECODE_ERRORS as e:
        raise ImageFileError(path, str(e) or type(e).__name__) from None


def image_size(path: str | Path, root: str | Path | None = None) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding it (EXIF rotation not applied)."""
    with open_image(path, root) as img:
        return img.size


def decode_fully(path: str | Path, root: str | Path | None = None) -> None:
    """Decode every pixel once (finds truncated or corrupt files that open fine)."""
    with open_image(path, root) as img:
        img.load()


def load_square_rgb(path: str | Path, resolution: int, root: str | Path | None = None) -> np.ndarray:
    """Decode an image, honour its EXIF orientation, flatten transparency onto white, centre-crop it to a square
    and resize it to ``resolution``; images already that size come back untouched."""
    with open_image(path, root) as raw:
        img = ImageOps.exif_transpose(raw)
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.new("RGB", rgba.size, (255, 255, 255))
            img.paste(rgba, mask=rgba.getchannel("A"))
        else:
            img = img.convert("RGB")
        w, h = img.size
        if min(w, h) == 0:
            raise ImageFileError(Path(path), "it is empty (0 pixels wide or high)")
        if w != h:
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            img = img.crop((left, top, left + side, top + side))
        if img.size != (resolution, resolution):
            img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8).copy()
