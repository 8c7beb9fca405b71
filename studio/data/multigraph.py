"""The group-supervised multigraph of paper 000 (section 3), kept implicit: per attribute, items sorted by value.

Memory is one int32 per item and attribute plus offsets; sampling is vectorised over a whole batch, so building
the index and drawing groups stays in seconds even for the full Fonts set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.errors import StudioError


@dataclass
class GroupBatch:
    """``groups[b, 0]`` is a centre item, ``groups[b, 1 + j]`` its partner for attribute j; ``fallback[b, j]``
    marks partners that share attribute j but could not be made to differ in every other attribute."""

    groups: np.ndarray
    fallback: np.ndarray


class GroupSampler:
    """Samples centre items and, per attribute, a partner that shares exactly that attribute."""

    def __init__(self, codes: np.ndarray, items: np.ndarray, tries: int = 24) -> None:
        self.codes = codes
        self.items = np.asarray(items, dtype=np.int64)
        if len(self.items) < 2:
            raise StudioError("group sampling needs at least two training items")
        self.tries = tries
        sub = codes[self.items]
        self.num_attributes = codes.shape[1]
        self._order: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        for j in range(self.num_attributes):
            order = np.argsort(sub[:, j], kind="stable")
            counts = np.bincount(sub[:, j], minlength=int(codes[:, j].max()) + 1)
            self._order.append(self.items[order].astype(np.int64))
            self._offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        self.fallbacks = 0
        self.partners_drawn = 0

    def partners(self, centres: np.ndarray, rng: np.random.Generator) -> GroupBatch:
        centres = np.asarray(centres, dtype=np.int64)
        b, m, k = len(centres), self.num_attributes, self.tries
        cc = self.codes[centres].astype(np.int64)  # (b, m)
        partners = np.empty((b, m), dtype=np.int64)
        fallback = np.zeros((b, m), dtype=bool)
        for j in range(m):
            v = cc[:, j]
            start, stop = self._offsets[j][v], self._offsets[j][v + 1]
            count = stop - start
            draws = start[:, None] + (rng.random((b, k)) * count[:, None]).astype(np.int64)
            cand = self._order[j][draws]  # (b, k)
            cand_codes = self.codes[cand].astype(np.int64)  # (b, k, m)
            differs = cand_codes != cc[:, None, :]
            others = np.delete(differs, j, axis=2).all(axis=2)  # differs in every other attribute
            ok = others.any(axis=1)
            first = others.argmax(axis=1)
            chosen = cand[np.arange(b), first]
            # Fallback: any item sharing attribute j, preferring one that is not the centre itself.
            not_self = cand != centres[:, None]
            alt = cand[np.arange(b), not_self.argmax(axis=1)]
            partners[:, j] = np.where(ok, chosen, alt)
            fallback[:, j] = ~ok
        self.fallbacks += int(fallback.sum())
        self.partners_drawn += b * m
        return GroupBatch(np.concatenate([centres[:, None], partners], axis=1), fallback)

    def sample(self, batch_size: int, rng: np.random.Generator) -> GroupBatch:
        return self.partners(rng.choice(self.items, size=batch_size), rng)

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / max(1, self.partners_drawn)


def cover(codes: np.ndarray, items: np.ndarray, wanted: np.ndarray | list[int],
          rng: np.random.Generator | None = None) -> dict[int, int]:
    """COVER(S, x) of paper 000, eq. 1: a small set of ``items`` that together show every wanted value.

    Greedy set cover: repeatedly take the item matching the most still-uncovered attributes. Returns
    ``{attribute position: item index}`` (several attributes may share an item). Ties are broken at random when
    ``rng`` is given, else by the lowest index.
    """
    wanted = np.asarray(wanted, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    sub = codes[items]
    remaining = list(range(len(wanted)))
    chosen: dict[int, int] = {}
    while remaining:
        match = sub[:, remaining] == wanted[remaining]
        score = match.sum(axis=1)
        best = int(score.max(initial=0))
        if best == 0:
            j = remaining[0]
            raise StudioError(f"no training item has value #{wanted[j]} of attribute #{j}: it cannot be covered")
        top = np.flatnonzero(score == best)
        pick = int(top[rng.integers(len(top))]) if rng is not None else int(top[0])
        for j, hit in zip(list(remaining), match[pick]):
            if hit:
                chosen[j] = int(items[pick])
                remaining.remove(j)
    return chosen
