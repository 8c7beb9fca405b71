"""Writing composed pictures to files: one image, an interpolation strip, a looping GIF.

Plain Python (PIL), so the GUI runs it off its thread through the service and the CLI can use it as well. Files
are written to a temporary name in the target folder and renamed, so a failure never leaves half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.atomic import atomic_path
from studio.errors import StudioError

KINDS = ("strip", "gif")


def save_image_atomically(path: str | Path, image: Image.Image, **params: Any) -> Path:
    """Write through a temporary file in the same folder and rename it, so a failure never leaves half a file."""
    target = Path(path)
    fmt = Image.registered_extensions().get(target.suffix.lower())
    if fmt is None:
        raise StudioError(f"{target}: unknown image type {target.suffix!r}; use .png, .jpg, .gif or .webp")
    if not target.parent.is_dir():
        raise StudioError(f"{target}: the folder {target.parent} does not exist")
    try:
        with atomic_path(target, durable=False) as tmp:
            image.save(tmp, format=fmt, **params)
    except OSError as e:
        raise StudioError(f"{target}: could not write the image ({e})") from None
    return target


def enlarged(image: np.ndarray, scale: int) -> Image.Image:
    """``image`` with every pixel repeated ``scale`` times each way (crisp, not blurred)."""
    scale = max(1, int(scale))
    if scale > 1:
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    return Image.fromarray(np.ascontiguousarray(image))


def write_strip(path: str | Path, frames: Sequence[np.ndarray], scale: int = 1) -> Path:
    """The frames side by side as one image."""
    return save_image_atomically(path, enlarged(np.concatenate([np.asarray(f) for f in frames], axis=1), scale))


def write_gif(path: str | Path, frames: Sequence[np.ndarray], scale: int = 1, frame_ms: int = 80) -> Path:
    """An animated GIF going through the frames and back, so it loops without a jump."""
    frames = [np.asarray(f) for f in frames]
    loop = frames + frames[-2:0:-1]
    pictures = [enlarged(f, scale) for f in loop]
    return save_image_atomically(path, pictures[0], save_all=True, append_images=pictures[1:],
                                 duration=int(frame_ms), loop=0, disposal=2)
