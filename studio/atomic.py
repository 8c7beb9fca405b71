"""Atomic file writes: a temporary file in the target's folder, flushed, then renamed over the target, so a crash
or a full disk never leaves half a checkpoint, project, export or cache file.

One place for it: the writers (checkpoints, latent caches, exports, mined values, folder tables) differ only in
what they put into the temporary file. New files get the mode a plain ``open()`` would give them (0o666 less the
umask), not ``mkstemp``'s private 0o600, which hid exported images and projects from other users and tools.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def new_file_mode() -> int:
    """0o666 less the process umask (read without changing it where /proc says it; else the usual 0o022)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    return 0o644


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; write it inside the block. On success it is given the usual file
    mode, synced to disk (``durable``) and renamed over ``path``; on any error it is removed and ``path`` is as
    it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with contextlib.suppress(OSError):  # a file system without modes keeps its own
            os.chmod(tmp, new_file_mode())
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)
