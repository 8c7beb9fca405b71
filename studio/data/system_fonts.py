"""The machine's own installed fonts, for ``fonts:PRESET,fonts=system``: what fontconfig lists (``fc-list``), else
the usual font folders of Linux, macOS and Windows. Only TrueType/OpenType files that draw every letter the preset
needs are kept (symbol, emoji and other-script fonts would give blank or boxed glyphs).

The list differs from machine to machine; the fonts' file hashes are part of the dataset fingerprint, so a model
trained on one machine's fonts warns when opened with another machine's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studio.errors import DatasetError

SUFFIXES = (".ttf", ".otf")


def font_dirs() -> list[Path]:
    home = Path.home()
    dirs = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".local/share/fonts", home / ".fonts"]
    if sys.platform == "darwin":
        dirs += [Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library/Fonts"]
    if os.name == "nt":
        windir = Path(os.environ.get("WINDIR", "C:/Windows"))
        dirs += [windir / "Fonts", Path(os.environ.get("LOCALAPPDATA", home)) / "Microsoft/Windows/Fonts"]
    return dirs


def _fc_list() -> list[Path]:
    exe = shutil.which("fc-list")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--format", "%{file}\n"], capture_output=True, text=True, timeout=20,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(line.strip()) for line in out.splitlines() if line.strip()]


def installed_font_files() -> list[Path]:
    """Every TrueType/OpenType file fontconfig or the usual folders know of (no checks yet)."""
    found = _fc_list()
    for folder in font_dirs():
        if folder.is_dir():
            found += [p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES]
    seen: set[Path] = set()
    out = []
    for p in found:
        if p.suffix.lower() in SUFFIXES and p.is_file() and p.resolve() not in seen:
            seen.add(p.resolve())
            out.append(p)
    return out


def draws_letters(path: Path, letters: Sequence[str]) -> bool:
    """Whether the font has a real glyph for every letter: ink that differs from its 'missing glyph' box."""
    from PIL import ImageFont

    try:
        face = ImageFont.truetype(str(path), size=32)
        missing = _glyph(face, "\ue000")
        for ch in letters:
            drawn = _glyph(face, ch)
            if not drawn.any() or np.array_equal(drawn, missing):
                return False
    except (OSError, ValueError):
        return False
    return True


def _glyph(face, ch: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(img).text((8, 8), ch, font=face, fill=255)
    return np.asarray(img)


def system_font_files(letters: Sequence[str]) -> dict[str, Path]:
    """Font name (the file's stem) -> file, for the installed fonts that draw all ``letters``, sorted by name.
    A clear error when there are none, saying where it looked."""
    files = sorted(installed_font_files(), key=lambda p: (p.stem.casefold(), str(p)))
    usable: dict[str, Path] = {}
    for p in files:
        if p.stem not in usable and draws_letters(p, letters):
            usable[p.stem] = p
    if not usable:
        where = ", ".join(str(d) for d in font_dirs())
        how = "fc-list listed none" if shutil.which("fc-list") else "fc-list is not installed"
        raise DatasetError(f"fonts=system: this machine has no installed TrueType/OpenType font that draws the letters "
                           f"{''.join(letters[:12])}{'...' if len(letters) > 12 else ''} ({how}; looked in {where}). "
                           "Install some fonts (e.g. the fonts-dejavu package), or give a folder: fonts=DIR")
    return usable
