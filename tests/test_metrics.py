"""MSE, PSNR and SSIM against cases that can be worked out by hand, and SSIM against a slow direct formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from studio.evaluation import metrics


def _images(seed: int, shape: tuple[int, ...] = (2, 3, 16, 16)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1


def test_identical_images_have_zero_error_infinite_psnr_and_unit_ssim():
    x = _images(0)
    assert torch.equal(metrics.mse(x, x), torch.zeros(2, dtype=torch.float64))
    assert torch.isinf(metrics.psnr(x, x)).all()
    assert torch.allclose(metrics.ssim(x, x), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(metrics.capped_psnr(x, x), torch.full((2,), metrics.PSNR_CAP_DB, dtype=torch.float64))


def test_constant_offset_gives_known_mse_and_psnr():
    # 0.2 apart in [-1, 1] is 0.1 apart in [0, 1]: MSE 0.01, PSNR 10 log10(1 / 0.01) = 20 dB.
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    y = x + 0.2
    assert metrics.mse(x, y).item() == pytest.approx(0.01, rel=1e-12)
    assert metrics.psnr(x, y).item() == pytest.approx(20.0, rel=1e-12)


def test_plus_minus_noise_gives_known_mse():
    # A checkerboard of +-0.1 (in [-1, 1]) is +-0.05 in [0, 1] everywhere: MSE 0.0025, PSNR 26.0206 dB.
    x = _images(1, (1, 3, 12, 12)) * 0.5
    sign = torch.ones(12, 12, dtype=torch.float64)
    sign[::2, 1::2] = -1
    sign[1::2, ::2] = -1
    y = x + 0.1 * sign
    assert metrics.mse(x, y).item() == pytest.approx(0.0025, rel=1e-9)
    assert metrics.psnr(x, y).item() == pytest.approx(10 * math.log10(400.0), rel=1e-9)


def test_mse_is_per_image():
    x = torch.zeros(3, 3, 4, 4, dtype=torch.float64)
    y = x.clone()
    y[1] += 0.2
    y[2] += 0.4
    assert torch.allclose(metrics.mse(x, y), torch.tensor([0.0, 0.01, 0.04], dtype=torch.float64))


def test_ssim_of_flat_images_follows_the_luminance_term():
    # No variance anywhere: SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1) with mx = 0.5, my = 0.6 in [0, 1].
    x = torch.zeros(1, 3, 16, 16, dtype=torch.float64)
    y = torch.full_like(x, 0.2)
    c1 = metrics.SSIM_K1**2
    expected = (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)
    assert metrics.ssim(x, y).item() == pytest.approx(expected, rel=1e-12)


def _direct_ssim(a: np.ndarray, b: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """SSIM by explicit sums over every full 2-D window position, for one (C, H, W) pair in [-1, 1]."""
    x, y = (a + 1) / 2, (b + 1) / 2
    r = np.arange(size) - (size - 1) / 2
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    w /= w.sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - size + 1):
            for j in range(x.shape[2] - size + 1):
                px, py = x[c, i:i + size, j:j + size], y[c, i:i + size, j:j + size]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
                cov = (w * px * py).sum() - mx * my
                values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_the_direct_windowed_formula():
    a, b = _images(2, (1, 3, 14, 15)), _images(3, (1, 3, 14, 15))
    b = 0.6 * a + 0.4 * b  # related images, so the structure term matters
    expected = _direct_ssim(a[0].numpy(), b[0].numpy())
    assert metrics.ssim(a, b).item() == pytest.approx(expected, rel=1e-9)


def test_ssim_is_symmetric_and_below_one_for_different_images():
    a, b = _images(4), _images(5)
    s_ab, s_ba = metrics.ssim(a, b), metrics.ssim(b, a)
    assert torch.allclose(s_ab, s_ba, atol=1e-12)
    assert (s_ab < 0.99).all()
    # More noise, less similarity.
    slight = (a + 0.05 * _images(6)).clamp(-1, 1)
    assert (metrics.ssim(a, slight) > s_ab).all()
    assert (metrics.ssim(a, slight) < 1.0).all()


def test_inverted_image_has_negative_ssim():
    a = _images(7, (1, 1, 16, 16))
    assert metrics.ssim(a, -a).item() < 0


def test_small_images_use_a_window_that_fits():
    a, b = _images(8, (2, 3, 6, 6)), _images(9, (2, 3, 6, 6))
    s = metrics.ssim(a, b)
    assert s.shape == (2,)
    assert torch.isfinite(s).all()
    assert metrics.ssim(a, a).allclose(torch.ones(2, dtype=torch.float64))


def test_single_image_without_batch_axis_and_float32():
    a = _images(10, (3, 16, 16)).float()
    b = (a + 0.2).clamp(-1, 1)
    assert metrics.mse(a, b).shape == (1,)
    assert metrics.ssim(a, b).dtype == torch.float32


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.mse(_images(0, (1, 3, 8, 8)), _images(0, (1, 3, 8, 9)))


def test_gaussian_window_is_normalised_and_symmetric():
    w = metrics.gaussian_window(11, 1.5, torch.float64)
    assert w.sum().item() == pytest.approx(1.0)
    assert torch.allclose(w, w.flip(0))
    assert w.argmax().item() == 5


def test_scores_accumulate_over_batches_like_one_batch():
    a, b = _images(11, (5, 3, 16, 16)), _images(12, (5, 3, 16, 16))
    scores = metrics.ImageScores()
    scores.add(a[:2], b[:2])
    scores.add(a[2:], b[2:])
    assert scores.count == 5
    whole = metrics.summarize(a, b)
    for key, value in scores.means().items():
        assert value == pytest.approx(whole[key], rel=1e-12)
    assert whole["mse"] == pytest.approx(metrics.mse(a, b).mean().item())
