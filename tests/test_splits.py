"""Zero-shot splits: whole combinations on one side, the asked fraction, and the same split for the same seed."""

import numpy as np
import pytest

from studio.data.dataset import row_keys
from studio.data.splits import ZeroShotSplit


def combos(codes: np.ndarray, items: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in row) for row in codes[items]}


def repeated_codes() -> np.ndarray:
    """300 items over 60 combinations, each combination repeated and the rows shuffled."""
    rng = np.random.default_rng(5)
    base = np.stack(np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij"), -1).reshape(-1, 3)
    return base[rng.integers(len(base), size=300)]


def test_no_combination_on_both_sides(tiny_fonts):
    for codes in (tiny_fonts.codes, repeated_codes()):
        split = ZeroShotSplit.make(codes, 0.25, seed=1)
        assert not combos(codes, split.train) & combos(codes, split.test)
        assert np.array_equal(np.sort(np.concatenate([split.train, split.test])), np.arange(len(codes)))


def test_fraction_counts_combinations_not_items():
    codes = repeated_codes()
    n_combos = len(combos(codes, np.arange(len(codes))))
    for fraction in (0.1, 0.25, 0.5):
        split = ZeroShotSplit.make(codes, fraction, seed=0)
        assert len(combos(codes, split.test)) == round(fraction * n_combos)


def test_same_seed_same_split_other_seed_other_split(tiny_fonts):
    a = ZeroShotSplit.make(tiny_fonts.codes, 0.25, seed=7)
    b = ZeroShotSplit.make(tiny_fonts.codes, 0.25, seed=7)
    c = ZeroShotSplit.make(tiny_fonts.codes, 0.25, seed=8)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train)
    assert not np.array_equal(a.test, c.test)
    assert a.to_json() == {"test_fraction": 0.25, "seed": 7}


def test_vocabularies_too_large_to_pack_still_split_by_combination():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 5000, size=(40, 6))
    codes = base[rng.integers(40, size=200)]
    assert row_keys(codes) is None  # 5000**6 does not fit in 63 bits: the row-wise path is taken
    split = ZeroShotSplit.make(codes, 0.25, seed=0)
    assert not combos(codes, split.train) & combos(codes, split.test)
    assert len(combos(codes, split.test)) == round(0.25 * len(combos(codes, np.arange(200))))


def test_unlabelled_items_split_at_random():
    codes = np.zeros((40, 0), dtype=np.int16)
    split = ZeroShotSplit.make(codes, 0.25, seed=3)
    assert len(split.test) == 10 and len(split.train) == 30
    assert not set(split.train) & set(split.test)
    assert not np.array_equal(split.test, ZeroShotSplit.make(codes, 0.25, seed=4).test)


def test_probe_halves_partition_the_test_items(tiny_fonts):
    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, seed=0)
    fit, score = split.probe_halves(seed=1)
    assert not set(fit) & set(score)
    assert sorted([*fit, *score]) == sorted(split.test.tolist())


def test_fraction_must_be_a_proper_fraction(tiny_fonts):
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="test fraction"):
            ZeroShotSplit.make(tiny_fonts.codes, bad)
