"""Zero-shot query protocols: ``strict`` (each attribute from its own training image, sharing only that attribute
with the target, paper 000 Fig. 4) next to ``greedy`` (the set cover), in the library, the CLI and the card."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from studio.cli.main import main
from studio.data.multigraph import StrictCover
from studio.errors import StudioError
from studio.evaluation.suite import make_context, run_evaluations
from studio.evaluation.zero_shot import _queries, query_statistics, zero_shot_targets


def _factorial(*cards: int) -> np.ndarray:
    return np.array(list(itertools.product(*[range(c) for c in cards])), dtype=np.int64)


def test_strict_cover_takes_one_item_per_attribute_sharing_only_that_attribute():
    codes = _factorial(4, 3, 5)
    target = 17
    train = np.array([i for i in range(len(codes)) if i != target])
    cover = StrictCover(codes, train)
    rng = np.random.default_rng(0)
    for _ in range(20):
        query = cover.query(codes[target], rng)
        assert list(query) == [0, 1, 2]
        assert len(set(query.values())) == 3
        for j, item in query.items():
            assert item != target
            assert codes[item, j] == codes[target, j]
            assert (codes[item] == codes[target]).sum() == 1  # a full factorial always allows an exact source
        assert cover.shares_only_its_attribute(query, codes[target]).all()


def test_strict_cover_falls_back_to_the_least_overlapping_and_then_to_reuse():
    # Attribute 1 value 1 is shown only by item 1, which also shares attribute 0 with the target (0, 1).
    codes = np.array([[0, 1], [0, 1], [1, 0], [0, 0]], dtype=np.int64)
    cover = StrictCover(codes, np.array([1, 2, 3]))
    query = cover.query(codes[0], np.random.default_rng(0))
    assert query[1] == 1  # the only item with the value, though it shares more
    assert query[0] == 3  # attribute 0 takes another item rather than reusing item 1
    assert cover.shares_only_its_attribute(query, codes[0]).tolist() == [True, False]
    # With item 3 gone, attribute 0's only candidate is item 1, already used: reused rather than failing.
    query = StrictCover(codes, np.array([1, 2])).query(codes[0], np.random.default_rng(0))
    assert query == {0: 1, 1: 1}


def test_strict_cover_names_a_value_no_item_shows():
    codes = np.array([[0, 0], [1, 1], [0, 1]], dtype=np.int64)
    with pytest.raises(StudioError, match="value #1 of attribute #0"):
        StrictCover(codes, np.array([0, 2])).query(codes[1], np.random.default_rng(0))


@pytest.fixture(scope="module")
def ctx(tiny_gzs_run: Path):
    return make_context(tiny_gzs_run, device="cpu")


def test_strict_queries_use_more_and_less_overlapping_sources_than_greedy(ctx):
    codes = ctx.dataset.codes
    train = set(ctx.split.train.tolist())
    targets = zero_shot_targets(ctx)
    strict, greedy = _queries(ctx, targets, "strict"), _queries(ctx, targets, "greedy")
    for t, q in zip(targets, strict):
        assert sorted(q) == list(range(codes.shape[1]))
        for j, item in q.items():
            assert item in train and codes[item, j] == codes[t, j]
    s, g = query_statistics(ctx, targets, strict), query_statistics(ctx, targets, greedy)
    assert s["sources_per_query"] > g["sources_per_query"]
    assert s["exact_fraction"] > g["exact_fraction"]
    # the statistics, recomputed by hand for the strict queries
    shared = [(codes[q[j]] == codes[t]).sum() for t, q in zip(targets, strict) for j in q]
    assert s["exact_fraction"] == pytest.approx(np.mean(np.array(shared) == 1))
    assert s["sources_per_query"] == pytest.approx(np.mean([len(set(q.values())) for q in strict]))


def test_report_carries_both_protocols_and_keeps_greedy_at_the_top(ctx):
    z = run_evaluations(ctx, ["zero_shot"])["zero_shot"]
    assert z["protocol"] == "greedy"
    for protocol in ("strict", "greedy"):
        for key in ("mse", "psnr", "ssim", "sources_per_query", "exact_fraction", "n"):
            assert np.isfinite(z[protocol][key])
    assert z["psnr"] == z["greedy"]["psnr"] and z["sources_per_query"] == z["greedy"]["sources_per_query"]
    assert z["strict"]["psnr"] != z["greedy"]["psnr"]


def test_cli_protocol_strict_runs_only_strict_with_the_same_figures(tiny_gzs_run, ctx, capsys):
    both = run_evaluations(ctx, ["zero_shot"])["zero_shot"]
    assert main(["eval", str(tiny_gzs_run), "--json", "--device", "cpu", "--only", "zero_shot",
                 "--protocol", "strict"]) == 0
    z = json.loads(capsys.readouterr().out)["zero_shot"]
    assert "greedy" not in z and z["protocol"] == "strict"
    assert z["strict"]["psnr"] == pytest.approx(both["strict"]["psnr"])
    assert z["psnr"] == pytest.approx(both["strict"]["psnr"])
    assert main(["eval", str(tiny_gzs_run), "--device", "cpu", "--only", "zero_shot"]) == 0
    text = capsys.readouterr().out
    assert "strict query" in text and "greedy query" in text and "share only their own attribute" in text


def test_model_card_carries_both_protocols(tiny_gzs_run, tmp_path, capsys):
    out = tmp_path / "card-model"
    assert main(["ship-model", str(tiny_gzs_run), str(out), "--max-items", "30", "--only", "zero_shot"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert {"strict", "greedy"} <= set(card["evaluation"]["zero_shot"])
    assert "strict query" in (out / "README.md").read_text()
