"""Encoded latents of dataset items, kept in memory (LRU) and on disk, so browsing and plotting never re-encode.

Items are grouped in blocks of consecutive indices. A block holds every slot of its items plus a "filled" mask,
and is stored as one safetensors file under ``ROOT/<checkpoint fingerprint>/<dataset fingerprint>/`` (the slot is
the tensor name inside the file), written to a temporary name and renamed. Nothing is pickled. A damaged or
foreign block file is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

FILLED = "__filled__"
Encoder = Callable[[np.ndarray], dict[str, np.ndarray]]
_FINGERPRINTS: dict[tuple[str, int, int], str] = {}
_FP_LOCK = threading.Lock()


def checkpoint_fingerprint(path: str | Path) -> str:
    """SHA-256 of the checkpoint file's bytes (16 hex digits), memoised by path, size and mtime.

    Hashing the content (not the path) lets a copied or renamed checkpoint share its cache; the memo keeps
    repeated loads cheap.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _FP_LOCK:
        hit = _FINGERPRINTS.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()[:16]
    with _FP_LOCK:
        _FINGERPRINTS[key] = digest
    return digest


@dataclass
class _Block:
    arrays: dict[str, np.ndarray]
    filled: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values()) + self.filled.nbytes


class LatentCache:
    """Latents of one (checkpoint, dataset) pair. ``fetch`` returns cached rows and encodes only the missing ones.

    ``root`` None keeps everything in memory only.
    """

    def __init__(self, root: Path | None, checkpoint_fp: str, dataset_fp: str, dataset_size: int,
                 slot_sizes: dict[str, int], block_items: int = 1024, memory_bytes: int = 256 * 1024**2) -> None:
        self.folder = None if root is None else Path(root) / checkpoint_fp / dataset_fp
        self.dataset_size = int(dataset_size)
        self.slot_sizes = dict(slot_sizes)
        self.block_items = int(block_items)
        self.memory_bytes = int(memory_bytes)
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self._lock = threading.RLock()
        self.disk_reads = 0
        self.disk_writes = 0

    # --- public -------------------------------------------------------------------------------
    def fetch(self, indices: np.ndarray, encode: Encoder) -> dict[str, np.ndarray]:
        """Rows ``indices`` of every slot, ``(n, size)`` float32; ``encode(missing indices)`` fills the gaps."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and (indices.min() < 0 or indices.max() >= self.dataset_size):
            raise IndexError(f"item indices must lie in 0..{self.dataset_size - 1}")
        with self._lock:
            # Hold the touched blocks for the whole call: eviction may drop them from the LRU meanwhile.
            blocks = {int(b): self._block(int(b)) for b in np.unique(indices // self.block_items)}
            missing = self._missing(indices, blocks)
            if len(missing):
                self._store(missing, encode(missing), blocks)
            return self._gather(indices, blocks)

    def cached_count(self) -> int:
        with self._lock:
            return int(sum(b.filled.sum() for b in self._blocks.values()))

    def clear_memory(self) -> None:
        with self._lock:
            self._blocks.clear()

    # --- blocks -------------------------------------------------------------------------------
    def _block_len(self, b: int) -> int:
        return min(self.block_items, self.dataset_size - b * self.block_items)

    def _path(self, b: int) -> Path | None:
        return None if self.folder is None else self.folder / f"block-{b:07d}.safetensors"

    def _block(self, b: int) -> _Block:
        hit = self._blocks.get(b)
        if hit is not None:
            self._blocks.move_to_end(b)
            return hit
        block = self._read(b) or self._empty(b)
        self._blocks[b] = block
        self._evict()
        return block

    def _empty(self, b: int) -> _Block:
        n = self._block_len(b)
        return _Block({s: np.zeros((n, d), np.float32) for s, d in self.slot_sizes.items()}, np.zeros(n, bool))

    def _read(self, b: int) -> _Block | None:
        path = self._path(b)
        if path is None or not path.exists():
            return None
        try:
            data = load_file(str(path))
        except Exception:  # a truncated or foreign file: treat as absent, it will be rewritten
            return None
        n = self._block_len(b)
        filled = data.get(FILLED)
        if filled is None or filled.shape != (n,):
            return None
        arrays = {}
        for slot, d in self.slot_sizes.items():
            a = data.get(slot)
            if a is None or a.shape != (n, d) or a.dtype != np.float32:
                return None
            arrays[slot] = np.array(a)
        self.disk_reads += 1
        return _Block(arrays, filled.astype(bool))

    def _write(self, b: int, block: _Block) -> None:
        path = self._path(b)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            try:
                save_file({**block.arrays, FILLED: block.filled.astype(np.uint8)}, tmp,
                          metadata={"format": "attribute-studio-latents"})
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.disk_writes += 1
        except OSError:  # a full or read-only cache disk only costs speed
            self.folder = None

    def _evict(self) -> None:
        total = sum(b.nbytes for b in self._blocks.values())
        while len(self._blocks) > 1 and total > self.memory_bytes:
            _, old = self._blocks.popitem(last=False)
            total -= old.nbytes

    def _missing(self, indices: np.ndarray, blocks: dict[int, _Block]) -> np.ndarray:
        block_of = indices // self.block_items
        out = [indices[block_of == b][~blk.filled[indices[block_of == b] - b * self.block_items]]
               for b, blk in blocks.items()]
        return np.unique(np.concatenate(out)) if out else np.empty(0, np.int64)

    def _store(self, indices: np.ndarray, latents: dict[str, np.ndarray], blocks: dict[int, _Block]) -> None:
        for slot in self.slot_sizes:
            if slot not in latents or latents[slot].shape != (len(indices), self.slot_sizes[slot]):
                raise ValueError(f"encoder returned no (n, {self.slot_sizes[slot]}) array for slot {slot!r}")
        block_of = indices // self.block_items
        for b in np.unique(block_of):
            block = blocks[int(b)]
            rows = np.flatnonzero(block_of == b)
            local = indices[rows] - int(b) * self.block_items
            for slot in self.slot_sizes:
                block.arrays[slot][local] = latents[slot][rows]
            block.filled[local] = True
            self._write(int(b), block)

    def _gather(self, indices: np.ndarray, blocks: dict[int, _Block]) -> dict[str, np.ndarray]:
        out = {s: np.empty((len(indices), d), np.float32) for s, d in self.slot_sizes.items()}
        block_of = indices // self.block_items
        for b, block in blocks.items():
            rows = np.flatnonzero(block_of == b)
            local = indices[rows] - b * self.block_items
            for slot in self.slot_sizes:
                out[slot][rows] = block.arrays[slot][local]
        return out
