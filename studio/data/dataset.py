"""The dataset contract every source (procedural or folder) fulfils: images plus an integer code table."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from threading import Lock

import numpy as np

from studio.data.schema import AttributeSchema


def row_keys(codes: np.ndarray, radices: Sequence[int] | np.ndarray | None = None) -> np.ndarray | None:
    """One int64 per row that is equal exactly when the rows are equal (mixed-radix packing), so whole-row
    comparisons become fast 1-D sorts and searches; None when the radices' product does not fit in 63 bits."""
    codes = np.asarray(codes)
    if radices is None:
        radices = codes.max(axis=0, initial=0).astype(np.int64) + 1 if len(codes) else np.ones(codes.shape[1])
    radices = [max(1, int(r)) for r in radices]
    total = 1
    for r in radices:
        total *= r
    if total >= 2**63:
        return None
    keys = np.zeros(len(codes), dtype=np.int64)
    for j, r in enumerate(radices):
        keys *= r
        keys += codes[:, j]
    return keys


class AttributedDataset:
    """A sequence of RGB images with an ``(n, m)`` integer code table over ``schema``.

    Subclasses implement ``_render(i)``; this base class adds a bounded, thread-safe LRU of rendered images
    (browsing and sampling revisit items) and the lookups every consumer needs.
    """

    cache_bytes = 256 * 1024 * 1024

    def __init__(self, spec: str, schema: AttributeSchema, codes: np.ndarray, resolution: int) -> None:
        codes = np.ascontiguousarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(schema):
            raise ValueError(f"code table must be (n, {len(schema)}), got {codes.shape}")
        self.spec = spec
        self.schema = schema
        self.codes = codes.astype(np.int32 if codes.max(initial=0) > 32000 else np.int16, copy=False)
        self.resolution = int(resolution)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_lock = Lock()
        self._dense: np.ndarray | None = None
        self._row_index: dict[bytes, int] | tuple[np.ndarray, np.ndarray] | None = None
        self._row_cards = np.zeros(0, dtype=np.int64)
        self._row_strides = np.zeros(0, dtype=np.int64)

    # --- what subclasses provide -------------------------------------------------------------
    def _render(self, index: int) -> np.ndarray:
        """Return item ``index`` as ``uint8 (resolution, resolution, 3)``."""
        raise NotImplementedError

    def _fingerprint_parts(self) -> list[str]:
        """Strings that, together, pin down every pixel this dataset produces."""
        raise NotImplementedError

    def render_values(self, row: Sequence[int]) -> np.ndarray | None:
        """Ground-truth image for an arbitrary code tuple, or None if the source cannot make one."""
        index = self.index_of(row)
        return None if index is None else self.image(index)

    # --- shared behaviour --------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def name(self) -> str:
        return self.spec

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for part in [type(self).__name__, str(self.resolution), *self._fingerprint_parts()]:
            h.update(part.encode())
            h.update(b"\0")
        h.update(np.ascontiguousarray(self.codes, dtype=np.int32).tobytes())
        return h.hexdigest()[:16]

    def image(self, index: int) -> np.ndarray:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} is outside 0..{len(self) - 1}")
        if self._dense is not None:
            return self._dense[index]
        with self._cache_lock:
            hit = self._cache.get(index)
            if hit is not None:
                self._cache.move_to_end(index)
                return hit
        img = self._render(index)
        with self._cache_lock:
            self._cache[index] = img
            limit = max(1, self.cache_bytes // max(1, img.nbytes))
            while len(self._cache) > limit:
                self._cache.popitem(last=False)
        return img

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self._dense is not None:
            return self._dense[indices]
        out = np.empty((len(indices), self.resolution, self.resolution, 3), dtype=np.uint8)
        for k, i in enumerate(indices):
            out[k] = self.image(int(i))
        return out

    def materialize(self, max_bytes: int = 2 * 1024**3) -> bool:
        """Render every item once into one array (fast training on small sets); False if it would not fit."""
        if self._dense is not None:
            return True
        need = len(self) * self.resolution * self.resolution * 3
        if need > max_bytes:
            return False
        dense = np.empty((len(self), self.resolution, self.resolution, 3), dtype=np.uint8)
        for i in range(len(self)):
            dense[i] = self.image(i)
        self._dense = dense
        with self._cache_lock:
            self._cache.clear()
        return True

    def values(self, index: int) -> dict[str, str]:
        return self.schema.decode_row(self.codes[int(index)])

    def index_of(self, row: Sequence[int]) -> int | None:
        """The first item whose codes equal ``row``: binary search over packed row keys (16 bytes per item, built
        once), or a dict of rows when the vocabularies are too large to pack into 64 bits."""
        if self._row_index is None:
            self._row_index = self._build_row_index()
        row = np.asarray(row, dtype=np.int64).reshape(-1)
        cards = self._row_cards
        if len(row) != len(cards) or ((row < 0) | (row >= cards)).any():
            return None
        if isinstance(self._row_index, dict):
            return self._row_index.get(row.astype(np.int32).tobytes())
        sorted_keys, order = self._row_index
        key = int(row @ self._row_strides)
        pos = int(np.searchsorted(sorted_keys, key))
        if pos < len(sorted_keys) and sorted_keys[pos] == key:
            return int(order[pos])
        return None

    def _build_row_index(self) -> dict[bytes, int] | tuple[np.ndarray, np.ndarray]:
        cards = np.asarray(self.schema.cardinalities, dtype=np.int64)
        self._row_cards = cards
        keys = row_keys(self.codes, cards)
        if keys is None:
            c = np.ascontiguousarray(self.codes, dtype=np.int32)
            index: dict[bytes, int] = {}
            for i in range(len(c) - 1, -1, -1):
                index[c[i].tobytes()] = i
            return index
        self._row_strides = np.concatenate([np.cumprod(cards[::-1])[::-1][1:], [1]]).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        return keys[order], order

    def describe(self) -> str:
        lines = [f"dataset      {self.spec}", f"items        {len(self)}",
                 f"resolution   {self.resolution} px", f"fingerprint  {self.fingerprint}", "attributes"]
        for a in self.schema:
            vals = ", ".join(a.values[:10]) + (f", ... ({a.cardinality} in all)" if a.cardinality > 10 else "")
            lines.append(f"  {a.name:<18} {a.cardinality:>4}  {vals}")
        return "\n".join(lines)
