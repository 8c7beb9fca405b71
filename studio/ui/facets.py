"""Facet filtering for the dataset browser, in plain numpy: which items pass the chosen attribute values, and how
many items each other value would leave (so a drop-down can say so before it is chosen)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FacetResult:
    """Items that pass every filter, and for each attribute the count of each value among items that pass every
    *other* filter (so a facet shows what choosing another of its values would give)."""

    indices: np.ndarray  # int64, ascending
    counts: list[np.ndarray]  # one int64 array per attribute, length = cardinality


class FacetIndex:
    """Facet filtering over an ``(n, m)`` code table; one contiguous column per attribute for fast compares."""

    def __init__(self, codes: np.ndarray, cardinalities: Sequence[int]) -> None:
        self._columns = [np.ascontiguousarray(codes[:, j]) for j in range(codes.shape[1])]
        self._cardinalities = [int(c) for c in cardinalities]
        self._n = int(codes.shape[0])
        self._all = np.arange(self._n, dtype=np.int64)
        self._unfiltered_counts = [np.bincount(col, minlength=c).astype(np.int64)
                                   for col, c in zip(self._columns, self._cardinalities)]

    def __len__(self) -> int:
        return self._n

    def apply(self, selection: dict[int, int]) -> FacetResult:
        """``selection`` maps attribute position -> chosen value code; absent attributes are unfiltered."""
        active = {j: v for j, v in selection.items() if v is not None and v >= 0}
        if not active:
            return FacetResult(self._all, list(self._unfiltered_counts))
        masks = {j: self._columns[j] == v for j, v in active.items()}
        counts = []
        for j, (col, card) in enumerate(zip(self._columns, self._cardinalities)):
            others = [m for k, m in masks.items() if k != j]
            if not others:
                counts.append(self._unfiltered_counts[j])
                continue
            keep = others[0].copy()
            for m in others[1:]:
                keep &= m
            counts.append(np.bincount(col[keep], minlength=card).astype(np.int64))
        every = None
        for m in masks.values():
            every = m.copy() if every is None else every & m
        assert every is not None
        return FacetResult(np.flatnonzero(every).astype(np.int64), counts)
