"""What a method samples its batches from: a dataset, its zero-shot split, and fast tensor access; and the way
back from tensors to pictures (``to_uint8``, the sample grids' ``tile_grid``, an image's ``image_border``)."""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from studio.data.dataset import AttributedDataset
from studio.data.multigraph import GroupSampler
from studio.data.splits import ZeroShotSplit


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def image_border(images: Tensor) -> Tensor:
    """(..., C, H, W) -> (..., C, 2H + 2W): the edge pixels, where a glyph's or a sprite's plain ground shows (its
    median is the ground colour both the foreground weighting and the stray-ink evaluation measure from)."""
    return torch.cat([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1)


def to_uint8(images: Tensor) -> np.ndarray:
    """float (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3)."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


class TrainingData:
    """The training view of a dataset. Small sets are rendered once into one uint8 tensor on the device."""

    def __init__(self, dataset: AttributedDataset, split: ZeroShotSplit, device: torch.device | str = "cpu",
                 preload_bytes: int = 3 * 1024**3) -> None:
        self.dataset = dataset
        self.split = split
        self.device = torch.device(device)
        self.train_indices = split.train
        self.test_indices = split.test
        self._codes = torch.from_numpy(dataset.codes.astype(np.int64)).to(self.device)
        self._pixels: Tensor | None = None
        if dataset.materialize(preload_bytes):
            self._pixels = torch.from_numpy(dataset.images(np.arange(len(dataset)))).to(self.device)

    @property
    def schema(self):
        return self.dataset.schema

    @property
    def resolution(self) -> int:
        return self.dataset.resolution

    def images(self, indices: np.ndarray | Tensor) -> Tensor:
        """Items as float (B, 3, H, W) in [-1, 1] on the device."""
        if self._pixels is not None:
            idx = torch.as_tensor(np.asarray(indices), dtype=torch.long, device=self.device)
            return self._pixels[idx].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        return to_tensor(self.dataset.images(np.asarray(indices)), self.device)

    def codes(self, indices: np.ndarray | Tensor) -> Tensor:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long, device=self.device)
        return self._codes[idx]

    @cached_property
    def group_sampler(self) -> GroupSampler:
        return GroupSampler(self.dataset.codes, self.train_indices)

    def train_position(self, indices: np.ndarray) -> np.ndarray:
        """Position of dataset items within the training list (for methods with one code per training item)."""
        return np.searchsorted(self.train_indices, indices)


def tile_grid(images: torch.Tensor, pad: int = 2) -> np.ndarray:
    """Sample images -> one uint8 picture. (rows, cols, 3, H, W) keeps its layout; (n, 3, H, W) is laid out
    eight to a row (or as a square when n is not a multiple of eight)."""
    if images.dim() == 4:
        n = images.shape[0]
        cols = 8 if n % 8 == 0 else math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        if rows * cols > n:
            images = torch.cat([images, images.new_full((rows * cols - n, *images.shape[1:]), 1.0)])
        images = images.reshape(rows, cols, *images.shape[1:])
    rows, cols, _, h, w = images.shape
    tiles = to_uint8(images.reshape(rows * cols, *images.shape[2:])).reshape(rows, cols, h, w, 3)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            top, left = pad + r * (h + pad), pad + c * (w + pad)
            grid[top:top + h, left:left + w] = tiles[r, c]
    return grid
