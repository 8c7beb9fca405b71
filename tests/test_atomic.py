"""Atomic writes: the target is whole or untouched, no temporary file is left, and new files get the usual mode
(exports and projects readable as any file the user saves), not mkstemp's private 0o600."""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pytest
from PIL import Image

from studio.atomic import atomic_path, atomic_write_bytes, new_file_mode
from studio.service.exports import save_image_atomically

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="Windows files have no POSIX modes")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@posix_only
def test_new_files_get_the_mode_open_would_give(tmp_path) -> None:
    assert new_file_mode() == 0o666 & ~_umask()
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~_umask()
    out = save_image_atomically(tmp_path / "word.png", Image.fromarray(np.zeros((4, 4, 3), np.uint8)))
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "project.json"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project.json"]
    atomic_write_bytes(tmp_path / "new" / "deeper.bin", b"x")  # folders are made
    assert (tmp_path / "new" / "deeper.bin").read_bytes() == b"x"
