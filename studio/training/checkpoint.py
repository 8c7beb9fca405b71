"""Checkpoints: safetensors tensors + a JSON sidecar, each written to a temporary name and renamed.

Nothing here unpickles: a checkpoint a user hands us is read as tensors and JSON only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from studio.errors import CheckpointError

FORMAT_VERSION = 1
SUFFIX = ".safetensors"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=False) + "\n").encode())


def sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``path`` (.safetensors) and its .json sidecar; the sidecar goes last, so its presence marks a
    complete checkpoint."""
    path = Path(path).with_suffix(SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(flat, tmp, metadata={"format": "attribute-studio", "version": str(FORMAT_VERSION)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_json(sidecar(path), {"format_version": FORMAT_VERSION, **meta})


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = resolve_checkpoint(path)
    side = sidecar(path)
    if not side.exists():
        raise CheckpointError(f"{path}: its JSON sidecar {side.name} is missing, so the checkpoint is incomplete")
    try:
        meta = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{side}: cannot read the checkpoint description ({e})") from None
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{side}: made by a newer Attribute Studio (format {meta['format_version']}); update")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated files
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); was the copy cut short?") from None
    return tensors, meta


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, its sidecar, or a run directory (its newest checkpoint) -> the .safetensors path."""
    p = Path(path).expanduser()
    if p.is_dir():
        last = p / "checkpoints" / f"last{SUFFIX}"
        if last.exists():
            return last
        found = sorted(p.glob(f"**/*{SUFFIX}"), key=lambda f: f.stat().st_mtime)
        if not found:
            raise CheckpointError(f"{p}: no checkpoint (*.safetensors) in this folder; train one with `studio train`")
        return found[-1]
    if p.suffix == ".json":
        p = p.with_suffix(SUFFIX)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint")
    return p


# --- optimiser and RNG state ----------------------------------------------------------------------
def flatten_optimizer(prefix: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            name = f"{prefix}/{idx}/{key}"
            if torch.is_tensor(value):
                tensors[name] = value
            else:
                scalars[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in [*tensors.items(), *info["scalars"].items()]:
        if not name.startswith(prefix + "/"):
            continue
        idx, key = name[len(prefix) + 1:].split("/", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": info["param_groups"]}
