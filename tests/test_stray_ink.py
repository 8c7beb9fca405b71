"""Stray ink: marks a synthesis draws on plain ground, away from the true image's ink."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.evaluation.stray_ink import MARGIN, stray_pixels
from studio.evaluation.suite import make_context, run_evaluations


def glyph_on_ground() -> torch.Tensor:
    """One 32x32 image: a grey ground with a red 6x6 square in the middle."""
    truth = torch.full((1, 3, 32, 32), 0.5)
    truth[:, :, 13:19, 13:19] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    return truth


def test_marks_far_from_ink_count_and_edges_next_to_it_do_not():
    truth = glyph_on_ground()
    made = truth.clone()
    made[:, :, 2, 4:7] = torch.tensor([1.0, 0.0, 0.0])[:, None]  # three red pixels far above the square
    made[:, :, 13:19, 19:19 + MARGIN] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # a stroke a little too wide
    count, plain = stray_pixels(made, truth, [0.2])
    assert plain.tolist() == [True]
    assert count.tolist() == [[3]]
    made[:, :, 25, 25] = 0.6  # 0.1 off the ground: under the 0.2 threshold, over 0.05
    assert stray_pixels(made, truth, [0.2, 0.05])[0].tolist() == [[3], [4]]
    assert stray_pixels(truth, truth, [0.05])[0].tolist() == [[0]]


def test_a_target_without_a_plain_ground_is_marked_as_such():
    truth = torch.rand(2, 3, 32, 32)  # noise: no border colour to call the ground
    truth[1] = glyph_on_ground()[0]
    _, plain = stray_pixels(truth, truth, [0.1])
    assert plain.tolist() == [False, True]


@pytest.fixture(scope="module")
def report(tiny_gzs_run: Path):
    ctx = make_context(tiny_gzs_run, device="cpu", max_items=24, protocol="strict")
    return run_evaluations(ctx, ["stray_ink"])["stray_ink"]


def test_stray_ink_reports_syntheses_and_reconstructions_per_threshold(report):
    assert report["protocol"] == "strict" and report["n"] > 0 and report["n"] + report["n_skipped"] <= 24
    for key in ("synthesis", "reconstruction"):
        low, high = report[key]["0.1"], report[key]["0.2"]
        for part in (low, high):
            assert part["mean_pixels"] >= 0 and 0 <= part["many"] <= part["visible"] <= 1
        assert high["mean_pixels"] <= low["mean_pixels"]  # a higher threshold never finds more
