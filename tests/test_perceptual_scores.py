"""LPIPS and FID only where their pretrained weights are already on the machine; nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.evaluation import perceptual_scores
from studio.evaluation.perceptual_scores import available, frechet_distance
from studio.evaluation.suite import make_context, run_evaluations


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (4000, 3))
    b = rng.normal(0.0, 2.0, (4000, 3)) + np.array([1.0, 0.0, 0.0])
    # N(0, I) vs N(m, 4I): |m|^2 + tr(I + 4I - 2 * 2I) = 1 + 3
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.1)
    assert abs(frechet_distance(a, a)) < 1e-6


def test_without_weights_the_evaluation_is_skipped_naming_the_files(tiny_gzs_run, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(perceptual_scores, "lpips_lin_file", lambda: None)
    found = available()
    assert set(found["missing"]) == {"lpips", "fid"}
    assert "inception_v3_google-0cc3c7bd.pth" in found["missing"]["fid"]
    result = run_evaluations(make_context(tiny_gzs_run, device="cpu"), ["perceptual"])["perceptual"]
    assert "nothing is downloaded" in result["skipped"]
    assert "alexnet-owt-7be5be79.pth" in result["skipped"] and "inception_v3_google" in result["skipped"]


def test_with_weights_present_both_figures_are_computed(tiny_gzs_run, tmp_path, monkeypatch):
    """Weight files with the expected names and layouts (freshly initialised networks, not the pretrained ones,
    which this machine lacks) take the code path a machine with the real files takes."""
    from torchvision.models import alexnet, inception_v3

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(alexnet(weights=None).state_dict(), hub / "checkpoints" / perceptual_scores.ALEXNET_FILE)
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(),
               hub / "checkpoints" / perceptual_scores.INCEPTION_FILE)
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(perceptual_scores.ALEXNET_CHANNELS)}
    torch.save(lin, hub / "checkpoints" / f"lpips-v0.1-{perceptual_scores.LPIPS_LIN_FILE}")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(perceptual_scores.importlib.util, "find_spec", lambda name: None)
    assert available()["missing"] == {}
    lpips = perceptual_scores.LPIPS(available()["alexnet"], available()["lpips_lin"])
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(lpips(x, x), torch.zeros(2)) and (lpips(x, x.flip(0)) > 0).all()
    ctx = make_context(tiny_gzs_run, device="cpu", max_items=4)
    result = run_evaluations(ctx, ["perceptual"])["perceptual"]
    assert result["n"] == 4 and result["not_computed"] == {}
    for protocol in ("strict", "greedy"):
        assert result[protocol]["lpips"] > 0 and np.isfinite(result[protocol]["fid"])
