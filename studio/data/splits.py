"""Zero-shot splits: hold out attribute *combinations*, so no test target is ever seen in training (paper 000)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.data.dataset import row_keys


@dataclass(frozen=True)
class ZeroShotSplit:
    """Train/test item indices, where every combination of attribute values lands wholly on one side.

    ``probe`` is a fixed part of ``test`` kept aside for fitting probes (co-prediction) so that probes are
    fitted and scored on different items.
    """

    train: np.ndarray
    test: np.ndarray
    test_fraction: float
    seed: int

    @classmethod
    def make(cls, codes: np.ndarray, test_fraction: float = 0.25, seed: int = 0) -> ZeroShotSplit:
        """Hold out ``test_fraction`` of the distinct combinations (all their items go to test).

        A dataset without attributes has no combinations to hold out: its items are split at random instead.
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test fraction must be in (0, 1), got {test_fraction}")
        codes = np.asarray(codes)
        rng = np.random.default_rng(seed)
        if codes.ndim == 2 and codes.shape[1] == 0:
            test_mask = np.zeros(len(codes), dtype=bool)
            test_mask[rng.permutation(len(codes))[: round(test_fraction * len(codes))]] = True
            return cls(np.flatnonzero(~test_mask), np.flatnonzero(test_mask), test_fraction, seed)
        keys = row_keys(codes)
        if keys is None:
            _, combo = np.unique(np.ascontiguousarray(codes), axis=0, return_inverse=True)
        else:
            _, combo = np.unique(keys, return_inverse=True)
        combo = combo.reshape(-1)
        n_combos = int(combo.max()) + 1 if len(combo) else 0
        held = np.zeros(n_combos, dtype=bool)
        held[rng.permutation(n_combos)[: round(test_fraction * n_combos)]] = True
        test_mask = held[combo]
        return cls(np.flatnonzero(~test_mask), np.flatnonzero(test_mask), test_fraction, seed)

    def probe_halves(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Split the test items in two: one half to fit a probe, the other to score it."""
        perm = np.random.default_rng(seed).permutation(self.test)
        half = len(perm) // 2
        return np.sort(perm[:half]), np.sort(perm[half:])

    def to_json(self) -> dict[str, Any]:
        return {"test_fraction": self.test_fraction, "seed": self.seed}


@dataclass(frozen=True)
class ProbeSplit:
    """Items to fit probes on and items to score them on, drawn from one pool by item, not by combination.

    The zero-shot split holds out whole attribute combinations; with one label column that means whole classes,
    so probes fitted and scored on its test part would see only a few classes while chance is quoted for all of
    them. Probes get their own split: ``fit_fraction`` of the pool to fit (paper 000: 80:20), the rest to score,
    at random or stratified by the attribute with the most values (every value with at least two items then lands
    on both sides).
    """

    fit: np.ndarray
    score: np.ndarray
    fit_fraction: float
    seed: int
    stratified_by: int | None

    @classmethod
    def make(cls, codes: np.ndarray, items: np.ndarray, fit_fraction: float = 0.8, seed: int = 0,
             stratify: bool = True) -> ProbeSplit:
        if not 0.0 < fit_fraction < 1.0:
            raise ValueError(f"fit fraction must be in (0, 1), got {fit_fraction}")
        items = np.asarray(items, dtype=np.int64)
        rng = np.random.default_rng(seed)
        codes = np.asarray(codes)
        column = None
        if stratify and codes.ndim == 2 and codes.shape[1] > 0 and len(items):
            column = int(np.argmax([len(np.unique(codes[items, j])) for j in range(codes.shape[1])]))
        if column is None:
            perm = rng.permutation(items)
            cut = round(fit_fraction * len(perm))
            return cls(np.sort(perm[:cut]), np.sort(perm[cut:]), fit_fraction, seed, None)
        fit, score = [], []
        for value in np.unique(codes[items, column]):
            group = rng.permutation(items[codes[items, column] == value])
            cut = round(fit_fraction * len(group))
            cut = min(max(cut, 1), len(group) - 1) if len(group) >= 2 else len(group)
            fit.append(group[:cut])
            score.append(group[cut:])
        return cls(np.sort(np.concatenate(fit)), np.sort(np.concatenate(score)), fit_fraction, seed, column)


def values_missing(codes: np.ndarray, items: np.ndarray) -> list[tuple[int, list[int]]]:
    """(attribute position, values) that some item of the dataset shows but none of ``items`` does."""
    codes = np.asarray(codes)
    items = np.asarray(items, dtype=np.int64)
    missing = []
    for j in range(codes.shape[1] if codes.ndim == 2 else 0):
        lacking = sorted(set(np.unique(codes[:, j]).tolist()) - set(np.unique(codes[items, j]).tolist()))
        if lacking:
            missing.append((j, lacking))
    return missing
