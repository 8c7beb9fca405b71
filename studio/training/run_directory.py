"""A training run's folder: the one place that knows its file names.

    OUT/config.json                      the run's settings, method and config (rewritten by every invocation)
    OUT/metrics.jsonl                    one line of losses per logged step
    OUT/checkpoints/step-00000500.safetensors   numbered checkpoints (the newest ``keep`` stay)
    OUT/checkpoints/last.safetensors     the newest checkpoint (a hard link to the numbered one, or a copy)
    OUT/samples/step-00000250.png        sample grids
    OUT/tensorboard/                     optional TensorBoard logs

Each ``.safetensors`` may have a readable ``.json`` copy of its description beside it. Nothing here imports torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from studio.training.checkpoint import SUFFIX, atomic_write_bytes, sidecar, sync_directory

LAST = "last"
_NUMBERED = re.compile(r"^step-(\d{8,})$")


class RunDirectory:
    """Names, ``last``, pruning, logs and samples of one run folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.root)!r})"

    @classmethod
    def of_checkpoint(cls, path: str | Path) -> RunDirectory | None:
        """The run a checkpoint file belongs to (``OUT/checkpoints/NAME.safetensors``), if it is in one."""
        p = Path(path)
        return cls(p.parent.parent) if p.parent.name == "checkpoints" else None

    # --- names ---------------------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / f"{LAST}{SUFFIX}"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @staticmethod
    def step_name(step: int) -> str:
        return f"step-{int(step):08d}"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"{self.step_name(step)}{SUFFIX}"

    def sample(self, step: int) -> Path:
        return self.samples / f"{self.step_name(step)}.png"

    @staticmethod
    def step_of(path: str | Path) -> int | None:
        """The step a numbered checkpoint or sample is named after (None for ``last`` and other names)."""
        match = _NUMBERED.match(Path(path).stem)
        return int(match.group(1)) if match else None

    # --- what is there ---------------------------------------------------------------------------------
    def has_run(self) -> bool:
        return self.last.exists()

    def numbered_checkpoints(self) -> list[Path]:
        """The numbered checkpoints present, oldest step first."""
        if not self.checkpoints.is_dir():
            return []
        found = [(self.step_of(p), p) for p in self.checkpoints.glob(f"step-*{SUFFIX}")]
        return [p for step, p in sorted((s, p) for s, p in found if s is not None)]

    def kept_checkpoint(self, step: int) -> Path | None:
        """The numbered checkpoint of ``step``, when pruning kept it."""
        path = self.checkpoint(step)
        return path if path.exists() else None

    def newest_checkpoint(self) -> Path | None:
        """``last``, else the newest numbered checkpoint (a run killed between the two renames), else None."""
        if self.last.exists():
            return self.last
        numbered = self.numbered_checkpoints()
        return numbered[-1] if numbered else None

    # --- changes -------------------------------------------------------------------------------------
    def remove_partial_files(self) -> list[Path]:
        """Delete the temporary files a killed process left half-written (``.NAME.*.tmp``; never renamed, so
        never read); returns what went."""
        gone = []
        for folder in (self.root, self.checkpoints, self.samples):
            for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
                tmp.unlink(missing_ok=True)
                gone.append(tmp)
        return gone

    def publish_last(self, checkpoint: Path) -> Path:
        """Make ``last`` the same file as ``checkpoint`` with one rename (a hard link, or a copy where links are
        not supported); the readable JSON copy follows it the same way."""
        _replace_with_link(checkpoint, self.last)
        sync_directory(self.checkpoints)
        if sidecar(checkpoint).exists():
            _replace_with_link(sidecar(checkpoint), sidecar(self.last))
        return self.last

    def prune(self, keep: int) -> None:
        """Delete all but the newest ``keep`` numbered checkpoints (``last`` always stays), and what a killed
        process left half-written. Called by the one process that writes the run, after a complete save."""
        self.remove_partial_files()
        numbered = self.numbered_checkpoints()
        for old in numbered[: max(0, len(numbered) - max(0, keep))]:
            old.unlink(missing_ok=True)  # the checkpoint first: a JSON copy without its file misleads no loader
            sidecar(old).unlink(missing_ok=True)


def _replace_with_link(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        atomic_write_bytes(target, source.read_bytes())
        return
    os.replace(tmp, target)
