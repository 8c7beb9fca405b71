"""Paper 000's Table 2 baselines: a plain autoencoder and a beta-VAE with one flat latent, and the exhaustive
search of the latent partitioning that lets them synthesise the zero-shot targets (AE+ES, beta-VAE+ES)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.evaluation.exhaustive_search import random_partitions, score_partitions
from studio.evaluation.suite import applicable, make_context, run_evaluations
from studio.methods.base import MethodContext
from studio.methods.registry import get_method


def test_random_partitions_share_the_dimensions_evenly():
    parts = random_partitions(11, 5, 7, np.random.default_rng(0))
    assert parts.shape == (7, 11)
    for p in parts:
        assert sorted(np.bincount(p, minlength=5).tolist()) == [2, 2, 2, 2, 3]
    assert len({tuple(p) for p in parts}) > 1


def test_search_scores_the_partition_that_holds_the_attributes_highest():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.integers(0, 4, (400, 2)))
    z = torch.randn(400, 4)
    z[:, 1] += 6 * y[:, 0]  # attribute 0 lives in dimension 1
    z[:, 3] += 6 * y[:, 1]  # attribute 1 lives in dimension 3
    good = np.array([0, 0, 1, 1])  # dims 0, 1 -> attribute 0; dims 2, 3 -> attribute 1
    bad = np.array([0, 1, 0, 1])  # dims 0, 2 -> attribute 0 (pure noise)
    accuracy = score_partitions(z[:320], z[320:], y[:320], y[320:], np.stack([good, bad]), [4, 4], 0)
    assert accuracy[0].mean() > 0.9 and accuracy[1, 0] < 0.5


@pytest.mark.parametrize("name", ["ae", "betavae"])
def test_baselines_have_one_flat_latent_and_learn_to_reconstruct(name, tiny_fonts):
    cls = get_method(name)
    config = cls.config_class(latent_dim=10, width=8, hidden=32, residual_blocks=0, norm="batch")
    method = cls(config, MethodContext(tiny_fonts.schema, 32, 180))
    assert [(s.name, s.shape, s.attribute) for s in method.slots] == [("z", (10,), None)]
    assert not cls.needs_labels
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    method.eval()
    assert method.encode(x)["z"].shape == (4, 10) and method.decode(method.encode(x)).shape == x.shape
    losses = method.compute_losses({"images": x})
    assert torch.isfinite(losses["loss"]) and ("kl" in losses) == (name == "betavae")


@pytest.mark.parametrize("name", ["ae", "betavae"])
def test_exhaustive_search_synthesises_the_strict_targets(name, tiny_method_run):
    run = tiny_method_run(name)
    ctx = make_context(run, device="cpu")
    names = [e.name for e in applicable(ctx.method)]
    assert "exhaustive_search" in names and "zero_shot" not in names and "judge" not in names
    ctx.es_candidates = 6
    result = run_evaluations(ctx, ["exhaustive_search"])["exhaustive_search"]
    k = len(ctx.dataset.schema)
    assert result["candidates"] == 6 and len(result["partition"]) == k
    assert sorted(d for dims in result["partition"] for d in dims) == list(range(10))
    assert result["partition_score"] >= result["worst_partition_score"]
    for protocol in ("strict", "greedy"):
        r = result[protocol]
        assert np.isfinite(r["psnr"]) and len(r["judge"]) == k and r["n"] == len(ctx.split.test)
    assert result["strict"]["sources_per_query"] > result["greedy"]["sources_per_query"]
