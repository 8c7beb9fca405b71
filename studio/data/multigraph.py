"""The group-supervised multigraph of paper 000 (section 3), kept implicit: per attribute, items sorted by value.

Memory is one int32 per item and attribute plus offsets; sampling is vectorised over a whole batch, so building
the index and drawing groups stays in seconds even for the full Fonts set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.data.schema import AttributeSchema
from studio.errors import StudioError


@dataclass
class GroupBatch:
    """``groups[b, 0]`` is a centre item, ``groups[b, 1 + j]`` its partner for attribute j; ``fallback[b, j]``
    marks partners that share attribute j but could not be made to differ in every other attribute."""

    groups: np.ndarray
    fallback: np.ndarray


class GroupSampler:
    """Samples centre items and, per attribute, a partner that shares exactly that attribute.

    A batch first draws ``tries`` random candidates per centre and attribute among the items sharing that value
    (vectorised; enough for large, dense sets). Where none of them differs in every other attribute, the items
    sharing the value are searched (all of them, or ``search_limit`` random ones in very large groups): an exact
    partner is taken if one exists, else the item that differs in the most other attributes, counted as a fallback.
    """

    def __init__(self, codes: np.ndarray, items: np.ndarray, tries: int = 24, search_limit: int = 4096) -> None:
        self.codes = codes
        self.items = np.asarray(items, dtype=np.int64)
        if len(self.items) < 2:
            raise StudioError("group sampling needs at least two training items")
        self.tries = tries
        self.search_limit = search_limit
        sub = codes[self.items]
        self.num_attributes = codes.shape[1]
        index_dtype = np.int32 if len(codes) < 2**31 else np.int64
        self._order: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        for j in range(self.num_attributes):
            order = np.argsort(sub[:, j], kind="stable")
            counts = np.bincount(sub[:, j], minlength=int(codes[:, j].max()) + 1)
            self._order.append(self.items[order].astype(index_dtype))
            self._offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        self.fallbacks = 0
        self.partners_drawn = 0

    def partners(self, centres: np.ndarray, rng: np.random.Generator) -> GroupBatch:
        centres = np.asarray(centres, dtype=np.int64)
        b, m, k = len(centres), self.num_attributes, self.tries
        cc = self.codes[centres].astype(np.int64)  # (b, m)
        partners = np.empty((b, m), dtype=np.int64)
        fallback = np.zeros((b, m), dtype=bool)
        rows = np.arange(b)
        for j in range(m):
            order = self._order[j]
            v = cc[:, j]
            start, stop = self._offsets[j][v], self._offsets[j][v + 1]
            count = stop - start
            draws = start[:, None] + (rng.random((b, k)) * count[:, None]).astype(np.int64)
            cand = order[np.minimum(draws, len(order) - 1)].astype(np.int64)  # (b, k)
            differs = self.codes[cand] != cc[:, None, :]  # (b, k, m)
            differs[:, :, j] = True
            exact = differs.all(axis=2) & (cand != centres[:, None])
            found = exact.any(axis=1) & (count > 0)
            partners[:, j] = cand[rows, exact.argmax(axis=1)]
            for r in np.flatnonzero(~found):
                partners[r, j], is_exact = self._search(int(centres[r]), cc[r], j, int(start[r]), int(stop[r]), rng)
                fallback[r, j] = not is_exact
        self.fallbacks += int(fallback.sum())
        self.partners_drawn += b * m
        return GroupBatch(np.concatenate([centres[:, None], partners], axis=1), fallback)

    def _search(self, centre: int, centre_codes: np.ndarray, j: int, start: int, stop: int,
                rng: np.random.Generator) -> tuple[int, bool]:
        """The partner for attribute ``j`` that differs from the centre in the most other attributes, and
        whether it differs in all of them (an exact partner)."""
        block = self._order[j][start:stop]
        if len(block) > self.search_limit:
            block = block[rng.integers(0, len(block), size=self.search_limit)]
        block = block.astype(np.int64)
        differs = self.codes[block] != centre_codes
        differs[:, j] = False
        score = differs.sum(axis=1)
        score[block == centre] = -1
        if len(block) == 0 or score.max() < 0:
            return centre, False  # nothing else shows this value: the centre stands in for itself
        best = int(score.max())
        pick = int(block[rng.choice(np.flatnonzero(score == best))])
        return pick, best == self.num_attributes - 1

    def sample(self, batch_size: int, rng: np.random.Generator) -> GroupBatch:
        return self.partners(rng.choice(self.items, size=batch_size), rng)

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / max(1, self.partners_drawn)


def cover(codes: np.ndarray, items: np.ndarray, wanted: np.ndarray | list[int],
          rng: np.random.Generator | None = None, schema: AttributeSchema | None = None) -> dict[int, int]:
    """COVER(S, x) of paper 000, eq. 1: a small set of ``items`` that together show every wanted value.

    Greedy set cover: repeatedly take the item matching the most still-uncovered attributes. Returns
    ``{attribute position: item index}`` (several attributes may share an item). Ties are broken at random when
    ``rng`` is given, else by the lowest index. With ``schema``, errors name the attribute and value.
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
            if schema is not None and 0 <= wanted[j] < schema[j].cardinality:
                what = f"{schema[j].name}={schema[j].values[wanted[j]]}"
            else:
                what = f"value #{wanted[j]} of attribute #{j}"
            raise StudioError(f"no item in the given set has {what}, so it cannot be covered; pick another value "
                              "or include items that show it")
        top = np.flatnonzero(score == best)
        pick = int(top[rng.integers(len(top))]) if rng is not None else int(top[0])
        for j, hit in zip(list(remaining), match[pick]):
            if hit:
                chosen[j] = int(items[pick])
                remaining.remove(j)
    return chosen


class StrictCover:
    """The query of paper 000, Fig. 4: every attribute's value from its own training item, each item sharing with
    the target only that attribute where the data allow.

    ``cover`` (greedy) takes the item matching the most attributes, so a query often needs only one or two sources
    and is closer to a one-slot swap than to synthesis from parts. Here, per attribute, the candidates are the
    items showing the wanted value (all of them, or ``search_limit`` random ones in a large group); the one
    sharing the fewest other attributes with the target and not yet used by this query is taken. Attributes with
    the fewest candidates pick first, so scarce values still find an unused item.
    """

    def __init__(self, codes: np.ndarray, items: np.ndarray, search_limit: int = 4096,
                 schema: AttributeSchema | None = None) -> None:
        self.codes = codes
        self.items = np.asarray(items, dtype=np.int64)
        self.search_limit = search_limit
        self.schema = schema
        sub = codes[self.items]
        self._order: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        for j in range(codes.shape[1]):
            order = np.argsort(sub[:, j], kind="stable")
            counts = np.bincount(sub[:, j], minlength=int(codes[:, j].max(initial=0)) + 1)
            self._order.append(self.items[order])
            self._offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    def _block(self, j: int, value: int) -> np.ndarray:
        offsets = self._offsets[j]
        if not 0 <= value < len(offsets) - 1 or offsets[value] == offsets[value + 1]:
            if self.schema is not None and 0 <= value < self.schema[j].cardinality:
                what = f"{self.schema[j].name}={self.schema[j].values[value]}"
            else:
                what = f"value #{value} of attribute #{j}"
            raise StudioError(f"no item in the given set has {what}, so it cannot be covered; pick another value "
                              "or include items that show it")
        return self._order[j][offsets[value]:offsets[value + 1]]

    def query(self, wanted: np.ndarray | list[int], rng: np.random.Generator) -> dict[int, int]:
        """``{attribute position: item index}`` in attribute order, one item per attribute (reused only when a
        value is shown by items this query already took)."""
        wanted = np.asarray(wanted, dtype=np.int64)
        blocks = [self._block(j, int(v)) for j, v in enumerate(wanted)]
        chosen: dict[int, int] = {}
        used: set[int] = set()
        for j in sorted(range(len(wanted)), key=lambda j: len(blocks[j])):
            block = blocks[j]
            if len(block) > self.search_limit:
                block = block[rng.choice(len(block), size=self.search_limit, replace=False)]
            overlap = (self.codes[block] == wanted).sum(axis=1) - 1  # other attributes shared with the target
            if used:
                overlap = overlap + np.isin(block, list(used)) * (len(wanted) + 1)  # an unused item always wins
            best = np.flatnonzero(overlap == overlap.min())
            pick = int(block[best[rng.integers(len(best))]])
            chosen[j] = pick
            used.add(pick)
        return {j: chosen[j] for j in range(len(wanted))}

    def shares_only_its_attribute(self, query: dict[int, int], wanted: np.ndarray | list[int]) -> np.ndarray:
        """Per attribute of the query: does its source share exactly that one attribute with the target?"""
        wanted = np.asarray(wanted, dtype=np.int64)
        sources = np.array([query[j] for j in range(len(wanted))], dtype=np.int64)
        return (self.codes[sources] == wanted).sum(axis=1) == 1
