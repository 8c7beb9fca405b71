"""Probe splits (issue 14): probes are fitted and scored on an 80:20 split by item, apart from the zero-shot split,
so a folder with a single label column, whose zero-shot split holds out whole classes, still probes every class;
and co-prediction's normalised off-diagonal figure."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from studio.data.spec import open_dataset
from studio.data.splits import ProbeSplit, ZeroShotSplit, values_missing
from studio.evaluation.coprediction import coprediction, normalise
from studio.evaluation.probes import probe_items
from studio.evaluation.suite import EvalContext, EvaluationSkipped, make_context, run_evaluations


def test_stratified_probe_split_puts_every_value_on_both_sides():
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, 7, 300), rng.integers(0, 3, 300)], axis=1)
    items = np.arange(0, 300, 2)
    split = ProbeSplit.make(codes, items, 0.8, seed=3)
    assert split.stratified_by == 0  # the attribute with the most values
    assert not set(split.fit) & set(split.score)
    assert sorted({*split.fit, *split.score}) == items.tolist()
    for part in (split.fit, split.score):
        assert set(codes[part, 0]) == set(codes[items, 0])
    assert abs(len(split.fit) / len(items) - 0.8) < 0.05
    again = ProbeSplit.make(codes, items, 0.8, seed=3)
    assert np.array_equal(again.fit, split.fit)
    plain = ProbeSplit.make(codes, items, 0.8, seed=3, stratify=False)
    assert plain.stratified_by is None and len(plain.fit) == 120 and len(plain.score) == 30


def test_values_missing_names_what_a_part_lacks():
    codes = np.array([[0, 0], [1, 1], [2, 0]])
    assert values_missing(codes, np.array([0, 1])) == [(0, [2])]
    assert values_missing(codes, np.array([0, 1, 2])) == []


@pytest.fixture
def single_label_folder(tmp_folder_dataset: Path) -> Path:
    """fonts:tiny exported as a folder, relabelled with one column of 10 classes (letter x size)."""
    table = tmp_folder_dataset / "attributes.csv"
    rows = list(csv.DictReader(table.open()))
    letters = sorted({r["letter"] for r in rows})
    sizes = sorted({r["size"] for r in rows})
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "kind"])
        for r in rows:
            writer.writerow([r["file"], f"k{letters.index(r['letter']) * len(sizes) + sizes.index(r['size'])}"])
    return tmp_folder_dataset


def _context(model_run: Path, folder: Path) -> EvalContext:
    """The tiny GZS-Net (it encodes any 32 px image) judged on the single-label folder."""
    base = make_context(model_run, device="cpu")
    data = open_dataset(f"{folder},res=32")
    return EvalContext(base.loaded, data, ZeroShotSplit.make(data.codes, 0.25, 0), base.device, max_items=500)


def test_single_label_folder_probes_see_every_class(tiny_gzs_run, single_label_folder):
    ctx = _context(tiny_gzs_run, single_label_folder)
    classes = set(range(10))
    assert ctx.dataset.schema.cardinalities == [10]
    assert set(ctx.dataset.codes[ctx.split.test, 0]) < classes  # the zero-shot split holds whole classes out
    assert len(set(ctx.dataset.codes[ctx.split.test, 0])) <= 3
    probes = probe_items(ctx, prefer="test")
    assert probes.pool.startswith("all items (the test items lack kind")
    assert set(ctx.dataset.codes[probes.fit, 0]) == classes
    assert set(ctx.dataset.codes[probes.score, 0]) == classes
    train_probes = probe_items(ctx, prefer="train")
    assert set(ctx.dataset.codes[train_probes.score, 0]) == classes
    result = coprediction(ctx)
    assert result["chance"] == [0.1]
    assert result["probe_pool"].startswith("all items")
    assert result["n_fit"] + result["n_score"] == len(ctx.dataset)
    assert "stratified by kind" in result["probe_split"]


def test_probes_that_cannot_be_fitted_say_why(tiny_gzs_run, single_label_folder):
    ctx = _context(tiny_gzs_run, single_label_folder)
    ctx.max_items = 3
    with pytest.raises(EvaluationSkipped, match=r"cannot fit probes: .* needs at least 8 and 4; evaluate on a larger"):
        probe_items(ctx)


def test_coprediction_uses_training_vectors_and_reports_the_normalised_excess(tiny_gzs_run):
    ctx = make_context(tiny_gzs_run, device="cpu")
    c = run_evaluations(ctx, ["coprediction"])["coprediction"]
    assert c["probe_pool"] == "train items"
    assert c["n_fit"] + c["n_score"] == len(ctx.split.train)  # fonts:tiny is below the item cap
    assert abs(c["n_fit"] - 0.8 * len(ctx.split.train)) <= 5  # 80:20 within one item per letter
    matrix, chance = np.asarray(c["matrix"]), np.asarray(c["chance"])
    off = ~np.eye(len(chance), dtype=bool)  # GZS-Net: slot r carries attribute r
    assert c["off_diagonal_excess"] == pytest.approx((matrix - chance[None, :])[off].mean())
    assert c["off_diagonal_normalised"] == pytest.approx(((matrix - chance) / (1 - chance))[off].mean())
    assert c["diagonal_normalised"] == pytest.approx(((np.diag(matrix) - chance) / (1 - chance)).tolist())


def test_normalised_accuracy_is_zero_at_chance_and_one_when_perfect():
    assert normalise(0.1, 0.1) == 0.0 and normalise(1.0, 1 / 3) == 1.0
    assert normalise(0.55, 0.1) == pytest.approx(0.5)
