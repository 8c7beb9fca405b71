"""Pixels to latents and back with the loaded model: the torch calls the model service runs on its inference
worker, and pictures from disk made into what the model sees.

Apart from ``model_service`` so that the one place that turns numpy into tensors and back (batching, resizing
to the model's resolution, the counters tests and benchmarks read) stays short and on its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from studio.data.image_files import load_square_rgb
from studio.errors import StudioError
from studio.service.state import ServiceState


class CallCounts(Protocol):
    """Where encoder and decoder calls are counted (the model service's counters)."""

    encoder_calls: int
    encoded_items: int
    decoder_calls: int


def encode_pixels(state: ServiceState, images: np.ndarray, device: torch.device, encode_batch: int,
                  counts: CallCounts) -> dict[str, np.ndarray]:
    """uint8 ``(n, H, W, 3)`` images -> ``(n, size)`` float32 per slot, ``encode_batch`` images per encoder call."""
    from studio.training.data import to_tensor

    loaded, info = state.need_model()
    if not loaded.method.can_encode():
        raise StudioError(f"this {info.method} checkpoint ({info.path}) cannot encode images yet; "
                          "train it further (its encoders come in a later stage)")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise StudioError(f"images must be (n, H, W, 3) uint8, got {images.shape}")
    out: dict[str, list[np.ndarray]] = {s.name: [] for s in info.slots}
    res = info.resolution
    with torch.inference_mode():
        for start in range(0, len(images), encode_batch):
            x = to_tensor(images[start:start + encode_batch], device)
            if x.shape[-1] != res or x.shape[-2] != res:
                x = F.interpolate(x, size=(res, res), mode="bilinear", antialias=True, align_corners=False)
            latents = loaded.method.encode(x)
            counts.encoder_calls += 1
            counts.encoded_items += len(x)
            for s in info.slots:
                out[s.name].append(latents[s.name].reshape(len(x), -1).float().cpu().numpy())
    return {k: (np.concatenate(v) if v else np.zeros((0, info.slot(k).size), np.float32)).astype(np.float32)
            for k, v in out.items()}


def decode_latents(state: ServiceState, latents: dict[str, np.ndarray], device: torch.device, encode_batch: int,
                   counts: CallCounts) -> np.ndarray:
    """``(n, size)`` latents per slot -> uint8 ``(n, H, W, 3)`` images, ``encode_batch`` per decoder call."""
    from studio.training.data import to_uint8

    loaded, info = state.need_model()
    n = len(next(iter(latents.values())))
    images = []
    with torch.inference_mode():
        for start in range(0, n, encode_batch):
            batch = {}
            for s in info.slots:
                if s.name not in latents:
                    raise StudioError(f"no latent given for slot {s.name!r}")
                z = np.asarray(latents[s.name][start:start + encode_batch], np.float32)
                batch[s.name] = torch.from_numpy(np.ascontiguousarray(z)).reshape(len(z), *s.shape).to(device)
            images.append(to_uint8(loaded.method.decode(batch)))
            counts.decoder_calls += 1
    return np.concatenate(images)


class FileLatents:
    """Latents of image files per model, the least recently used dropped first; a file edited since (other
    modification time or size) is encoded again."""

    def __init__(self) -> None:
        self._latents: OrderedDict[tuple[Any, ...], dict[str, np.ndarray]] = OrderedDict()

    def get(self, state: ServiceState, path: str, encode: Callable[[np.ndarray], dict[str, np.ndarray]],
            limit: int) -> dict[str, np.ndarray]:
        """``(size,)`` float32 per slot of the image at ``path``; ``encode`` turns a batch of pixels into latents,
        ``limit`` files are kept."""
        _, info = state.need_model()
        p = Path(path).expanduser()
        try:
            st = p.stat()
        except OSError:
            raise StudioError(f"{p}: no such image file") from None
        key = (info.fingerprint, str(p.resolve()), st.st_mtime_ns, st.st_size)
        hit = self._latents.get(key)
        if hit is not None:
            self._latents.move_to_end(key)
            return hit
        pixels = load_image_file(p, info.resolution)
        latents = {k: v[0] for k, v in encode(pixels[None]).items()}
        self._latents[key] = latents
        while len(self._latents) > limit:
            self._latents.popitem(last=False)
        return latents


def load_image_file(path: str | Path, resolution: int) -> np.ndarray:
    """A picture from disk as the model sees it: RGB (transparency over white), centre square, resized; read
    through the guarded opener, so a decompression bomb or an odd format is a StudioError naming the file."""
    return load_square_rgb(path, resolution)


def load_pixels_at(image: np.ndarray, resolution: int) -> np.ndarray:
    """A dataset image (uint8 HxWx3) resized to the model's resolution, as ``load_image_file`` would."""
    if image.shape[0] == resolution and image.shape[1] == resolution:
        return image
    return np.asarray(Image.fromarray(image).resize((resolution, resolution), Image.Resampling.LANCZOS), np.uint8)
