"""Image similarity figures of paper 000, Table 2: MSE, PSNR and SSIM, one value per image.

Images arrive as the methods produce them, in [-1, 1]; they are compared in [0, 1] so that the figures match the
usual conventions (PSNR against a peak of 1, SSIM constants for a data range of 1) and the paper's MSE scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: Averages of PSNR over many images clip each image at this value, so one perfect match cannot make a mean infinite.
PSNR_CAP_DB = 100.0

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _unit_range(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1] as (B, C, H, W), at least float32 (float64 stays float64 for exact tests)."""
    x = images if images.dim() == 4 else images.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W) or (C, H, W), got shape {tuple(images.shape)}")
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return (x + 1.0) * 0.5


def _pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"images to compare differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    x, y = _unit_range(a), _unit_range(b.to(a.device))
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(dtype)


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error per image, in the [0, 1] range: shape (B,)."""
    x, y = _pair(a, b)
    return (x - y).pow(2).flatten(1).mean(dim=1)


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """Peak signal-to-noise ratio per image in dB against a peak of 1; identical images give +inf."""
    err = mse(a, b)
    return 10.0 * torch.log10(1.0 / err)


def capped_psnr(a: Tensor, b: Tensor, cap_db: float = PSNR_CAP_DB) -> Tensor:
    """PSNR clipped at ``cap_db``, for averages over many images."""
    return psnr(a, b).clamp(max=cap_db)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> Tensor:
    """Normalised 1-D Gaussian weights; SSIM applies them along rows and then columns (the 2-D window is separable)."""
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    weights = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return weights / weights.sum()


def _blur(x: Tensor, window: Tensor) -> Tensor:
    """Weighted local means of every channel separately, over full windows only (no padding)."""
    channels = x.shape[1]
    k = window.numel()
    rows = window.view(1, 1, 1, k).expand(channels, 1, 1, k)
    cols = window.view(1, 1, k, 1).expand(channels, 1, k, 1)
    return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)


def ssim(a: Tensor, b: Tensor, window_size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """Structural similarity (Wang et al. 2004) per image with a Gaussian window: shape (B,).

    Local statistics come from an 11x11 Gaussian window (sigma 1.5) over every full window position; the map is
    averaged over positions and channels. Images smaller than the window use the largest odd window that fits.
    """
    x, y = _pair(a, b)
    size = min(window_size, x.shape[-1], x.shape[-2])
    size = size if size % 2 == 1 else size - 1
    if size < 1:
        raise ValueError(f"images of shape {tuple(a.shape)} are too small for SSIM")
    window = gaussian_window(size, sigma, x.dtype, x.device)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    var_x = _blur(x * x, window) - mu_x**2
    var_y = _blur(y * y, window) - mu_y**2
    cov = _blur(x * y, window) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(dim=1)


class ImageScores:
    """Per-image MSE, capped PSNR and SSIM collected over batches; ``means()`` averages over all images seen."""

    def __init__(self) -> None:
        self._parts: dict[str, list[Tensor]] = {"mse": [], "psnr": [], "ssim": []}

    def add(self, predicted: Tensor, target: Tensor) -> None:
        self._parts["mse"].append(mse(predicted, target).double().cpu())
        self._parts["psnr"].append(capped_psnr(predicted, target).double().cpu())
        self._parts["ssim"].append(ssim(predicted, target).double().cpu())

    @property
    def count(self) -> int:
        return int(sum(p.numel() for p in self._parts["mse"]))

    def means(self) -> dict[str, float]:
        if not self.count:
            return {"mse": math.nan, "psnr": math.nan, "ssim": math.nan}
        return {k: float(torch.cat(v).mean()) for k, v in self._parts.items()}


def summarize(predicted: Tensor, target: Tensor) -> dict[str, float]:
    """Mean MSE, mean capped PSNR and mean SSIM over one batch, as plain floats."""
    scores = ImageScores()
    scores.add(predicted, target)
    return scores.means()
