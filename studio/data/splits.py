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
