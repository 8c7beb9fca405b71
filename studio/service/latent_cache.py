"""Encoded latents of dataset items, kept in memory (LRU) and on disk, so browsing and plotting never re-encode.

On disk the cache of one (checkpoint, dataset) pair is a folder ``ROOT/<checkpoint fp>/<dataset fp>/`` of
safetensors *segments*: each holds the item indices it covers and one ``(k, size)`` float32 tensor per slot (the
slot is the tensor name). Every call that encodes new items appends one segment, written to a temporary name and
renamed, so sparse access (a 20,000-point plot over 1.4 M items, one dropped item at a time) writes only what is
new. Many small segments are merged now and then, and past ``disk_bytes`` per pair (large spatial codes) new
latents stay in memory only. Nothing is pickled; a damaged or foreign file is ignored.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from studio.atomic import atomic_path

INDICES = "__indices__"
Encoder = Callable[[np.ndarray], dict[str, np.ndarray]]
_FINGERPRINTS: dict[tuple[str, int, int], str] = {}
_FP_LOCK = threading.Lock()
_SEGMENT_IDS = itertools.count()


def checkpoint_fingerprint(path: str | Path) -> str:
    """SHA-256 of the checkpoint file's bytes (16 hex digits), memoised by path, size and mtime.

    Hashing the content (not the path) lets a copied or renamed checkpoint share its cache, and a checkpoint
    overwritten in place (``last.safetensors``) never reuses stale latents; the memo keeps repeated loads cheap.
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


class LatentCache:
    """Latents of one (checkpoint, dataset) pair. ``fetch`` returns cached rows and encodes only the missing ones.

    Memory holds one row (every slot, concatenated) per item in an LRU bounded by ``memory_bytes``; ``root``
    None keeps everything in memory only.
    """

    merge_above = 64  # segments; more are merged into one

    def __init__(self, root: Path | None, checkpoint_fp: str, dataset_fp: str, dataset_size: int,
                 slot_sizes: dict[str, int], memory_bytes: int = 256 * 1024**2,
                 disk_bytes: int = 2 * 1024**3) -> None:
        self.folder = None if root is None else Path(root) / checkpoint_fp / dataset_fp
        self.dataset_size = int(dataset_size)
        self.slot_sizes = dict(slot_sizes)
        self._offsets = np.cumsum([0, *self.slot_sizes.values()])
        self._row_bytes = max(4, int(self._offsets[-1]) * 4)
        self.memory_items = max(1, int(memory_bytes) // self._row_bytes)
        self._memory: OrderedDict[int, np.ndarray] = OrderedDict()
        self._disk: dict[int, Path] | None = None  # item -> segment holding it, read on first use
        self._segment_count = 0
        self.disk_bytes = int(disk_bytes)  # past this, new latents stay in memory (spatial codes are large)
        self._disk_used = 0
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
            found: dict[int, np.ndarray] = {}
            for i in np.unique(indices).tolist():
                row = self._memory.get(i)
                if row is not None:
                    self._memory.move_to_end(i)
                    found[i] = row
            rest = [i for i in np.unique(indices).tolist() if i not in found]
            if rest:
                found.update(self._read_disk(rest))
                missing = np.array([i for i in rest if i not in found], dtype=np.int64)
                if len(missing):
                    fresh = self._rows(missing, encode(missing))
                    self._write_segment(missing, fresh)
                    found.update(zip(missing.tolist(), fresh))
                for i in rest:
                    self._remember(i, found[i])
            table = np.stack([found[i] for i in indices.tolist()]) if len(indices) else \
                np.zeros((0, int(self._offsets[-1])), np.float32)
        return {s: np.ascontiguousarray(table[:, self._offsets[k]:self._offsets[k + 1]])
                for k, s in enumerate(self.slot_sizes)}

    def cached_count(self) -> int:
        """Items in memory."""
        with self._lock:
            return len(self._memory)

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    # --- memory -------------------------------------------------------------------------------
    def _remember(self, index: int, row: np.ndarray) -> None:
        self._memory[index] = row
        self._memory.move_to_end(index)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    def _rows(self, indices: np.ndarray, latents: dict[str, np.ndarray]) -> np.ndarray:
        for slot, size in self.slot_sizes.items():
            got = latents.get(slot)
            if got is None or got.shape != (len(indices), size):
                raise ValueError(f"encoder returned no ({len(indices)}, {size}) array for slot {slot!r}")
        return np.concatenate([np.asarray(latents[s], np.float32) for s in self.slot_sizes], axis=1)

    # --- disk ---------------------------------------------------------------------------------
    def _segments(self) -> list[Path]:
        if self.folder is None or not self.folder.exists():
            return []
        return sorted(self.folder.glob("seg-*.safetensors"))

    def _disk_index(self) -> dict[int, Path]:
        if self._disk is None:
            self._disk = {}
            for path in self._segments():
                idx = self._segment_indices(path)
                if idx is not None:
                    self._disk.update(dict.fromkeys(idx.tolist(), path))
            segments = set(self._disk.values())
            self._segment_count = len(segments)
            self._disk_used = sum(p.stat().st_size for p in segments if p.exists())
        return self._disk

    def _segment_indices(self, path: Path) -> np.ndarray | None:
        """The items a segment covers, or None for a file that is not a segment of this cache."""
        try:
            with safe_open(str(path), framework="np") as f:
                keys = set(f.keys())
                if keys != {INDICES, *self.slot_sizes}:
                    return None
                idx = f.get_tensor(INDICES)
                for slot, size in self.slot_sizes.items():
                    shape = f.get_slice(slot).get_shape()
                    if list(shape) != [len(idx), size]:
                        return None
        except Exception:  # truncated or foreign: ignore, the items are encoded again
            return None
        if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= self.dataset_size)):
            return None
        return idx.astype(np.int64)

    def _read_disk(self, items: list[int]) -> dict[int, np.ndarray]:
        index = self._disk_index()
        by_segment: dict[Path, list[int]] = {}
        for i in items:
            seg = index.get(i)
            if seg is not None:
                by_segment.setdefault(seg, []).append(i)
        out: dict[int, np.ndarray] = {}
        for seg, wanted in by_segment.items():
            try:
                data = load_file(str(seg))
            except Exception:  # vanished (merged by another process) or damaged: encode again
                for i in wanted:
                    index.pop(i, None)
                continue
            self.disk_reads += 1
            pos = {int(v): k for k, v in enumerate(data[INDICES].tolist())}
            rows = np.concatenate([np.asarray(data[s], np.float32) for s in self.slot_sizes], axis=1)
            for i in wanted:
                if i in pos:
                    out[i] = rows[pos[i]].copy()
        return out

    def _write_segment(self, indices: np.ndarray, rows: np.ndarray) -> None:
        if self.folder is None:
            return
        index = self._disk_index()
        if self._disk_used + rows.nbytes > self.disk_bytes:
            return
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{next(_SEGMENT_IDS)}.safetensors"
        try:
            path = self._save(self.folder / name, indices, rows)
        except OSError:  # a full or read-only cache disk only costs speed
            self.folder = None
            return
        self.disk_writes += 1
        self._disk_used += rows.nbytes + indices.nbytes
        index.update(dict.fromkeys(indices.tolist(), path))
        self._segment_count += 1
        if self._segment_count > self.merge_above:
            self._merge()
            self._segment_count = len(set(index.values()))

    def _save(self, path: Path, indices: np.ndarray, rows: np.ndarray) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {INDICES: np.ascontiguousarray(indices, dtype=np.int64)}
        for k, s in enumerate(self.slot_sizes):
            tensors[s] = np.ascontiguousarray(rows[:, self._offsets[k]:self._offsets[k + 1]])
        with atomic_path(path, durable=False) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "attribute-studio-latents"})
        return path

    def _merge(self) -> None:
        """Rewrite the smaller half of the segments as one and delete them; big segments are left alone, so a
        merge never rewrites the whole cache of a large dataset."""
        index = self._disk_index()
        counts: dict[Path, int] = {}
        for path in index.values():
            counts[path] = counts.get(path, 0) + 1
        chosen = set(sorted(counts, key=lambda p: (counts[p], p.name))[: max(2, len(counts) // 2)])
        items = sorted(i for i, p in index.items() if p in chosen)
        found = self._read_disk(items)
        keep = np.array([i for i in items if i in found], dtype=np.int64)
        if self.folder is None or not len(keep):
            return
        rows = np.stack([found[i] for i in keep.tolist()])
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{next(_SEGMENT_IDS)}.safetensors"
        try:
            merged = self._save(self.folder / name, keep, rows)
        except OSError:
            return
        index.update(dict.fromkeys(keep.tolist(), merged))
        for path in chosen:
            path.unlink(missing_ok=True)
        self._disk_used = sum(p.stat().st_size for p in set(index.values()) if p.exists())
