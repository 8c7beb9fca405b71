"""Checkpoints: one safetensors file whose header carries the description (method, config, slots, step, ...).

A checkpoint is written to a temporary name and renamed into place once, so a crash at any moment leaves either
the old file or the new one, each complete in itself (the older format kept the description in a JSON sidecar,
a second file with its own rename; such checkpoints still load). A readable JSON copy of the description may be
written next to the file afterwards, for people and scripts; the loader never trusts it over the header.

Nothing here unpickles: a checkpoint a user hands us is read as tensors and JSON only, and its header is checked
(size, tensor shapes against the bytes present) before anything is allocated for it. This module imports torch
only when tensors are saved or loaded, so reading a description is cheap.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio import atomic
from studio.errors import CheckpointError

if TYPE_CHECKING:
    import torch

#: 1: tensors + JSON sidecar; 2: the description in the safetensors header (``META_KEY``)
FORMAT_VERSION = 2
FORMAT_NAME = "attribute-studio"
META_KEY = "attribute_studio"
SUFFIX = ".safetensors"
#: safetensors itself refuses larger headers; ours hold a few kilobytes of JSON
HEADER_LIMIT = 100 * 2**20
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "U64": 8, "U32": 4, "U16": 2, "C64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


# --- atomic files ---------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic.atomic_write_bytes(path, data)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=False) + "\n").encode())


def sync_directory(folder: Path) -> None:
    """Make a rename durable (POSIX); where directories cannot be opened (Windows) the rename is all we have."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sidecar(path: Path) -> Path:
    """The JSON next to a checkpoint: the description of a format-1 checkpoint, a readable copy of a newer one."""
    return Path(path).with_suffix(".json")


# --- the header -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    """A checked safetensors header: tensor entries (name -> dtype, shape, offsets) and the metadata strings."""

    tensors: dict[str, dict[str, Any]]
    metadata: dict[str, str]


def read_header(path: str | Path) -> Header:
    """Parse and check the header of a safetensors file without reading (or allocating for) its tensors."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path}: {size} bytes is too short for a safetensors file; was the copy cut "
                                      "short?")
            length = int.from_bytes(prefix, "little")
            if length > HEADER_LIMIT or length > size - 8:
                raise CheckpointError(f"{path}: its header claims {length:,} bytes, but the file has {size:,} (and "
                                      f"headers are at most {HEADER_LIMIT:,}); it is damaged or not a checkpoint")
            raw = f.read(length)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({e.strerror or e})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{path}: its header is not JSON; the file is damaged or not a safetensors "
                              "checkpoint") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: its header is not a JSON object; not a safetensors checkpoint")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise CheckpointError(f"{path}: its header metadata is not a table of strings; the file is damaged")
    data_bytes = size - 8 - length
    for name, entry in header.items():
        _check_entry(path, name, entry, data_bytes)
    return Header(header, metadata)


def _check_entry(path: Path, name: str, entry: Any, data_bytes: int) -> None:
    problem = ""
    if not isinstance(entry, dict):
        problem = "is not a table"
    elif entry.get("dtype") not in DTYPE_BYTES:
        problem = f"has an unknown dtype {entry.get('dtype')!r}"
    else:
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            problem = f"has a bad shape {shape!r}"
        elif (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(n) is int for n in offsets)
              or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
            problem = f"has data offsets {offsets!r} outside the {data_bytes:,} data bytes the file holds"
        elif math.prod(shape) * DTYPE_BYTES[entry["dtype"]] != offsets[1] - offsets[0]:
            problem = (f"claims shape {shape} ({math.prod(shape) * DTYPE_BYTES[entry['dtype']]:,} bytes) but spans "
                       f"{offsets[1] - offsets[0]:,} bytes")
    if problem:
        raise CheckpointError(f"{path}: tensor {name!r} {problem}; the file is damaged or was cut short")


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The description of a checkpoint (file, its JSON, or a run folder): from the header, or a format-1 sidecar."""
    path = resolve_checkpoint(path)
    return _meta(path, read_header(path))


def _meta(path: Path, header: Header) -> dict[str, Any]:
    text = header.metadata.get(META_KEY)
    if text is not None:
        try:
            meta = json.loads(text)
        except ValueError:
            raise CheckpointError(f"{path}: the description in its header is not JSON; the file is damaged") from None
        where = path
    else:
        side = sidecar(path)
        if not side.exists():
            raise CheckpointError(f"{path}: has no description in its header and no JSON sidecar ({side.name}); it "
                                  "was not written by Attribute Studio, or the sidecar of an older checkpoint is lost")
        try:
            meta = json.loads(side.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise CheckpointError(f"{side}: cannot read the checkpoint description ({e})") from None
        where = side
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: the checkpoint description is not a JSON object")
    version = meta.get("format_version", 0)
    if not isinstance(version, int):
        raise CheckpointError(f"{where}: format_version {version!r} is not a number")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{where}: made by a newer Attribute Studio (format {version}); update")
    return meta


# --- saving and loading ---------------------------------------------------------------------------
def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], *,
                 readable_copy: bool = False) -> Path:
    """Write ``path`` (.safetensors) with ``meta`` in its header: one file, one rename. ``readable_copy`` then
    writes the same description as JSON next to it (for people; a crash before it costs nothing)."""
    from safetensors.torch import save_file

    path = Path(path).with_suffix(SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    record = {"format_version": FORMAT_VERSION, **meta}
    header = {"format": FORMAT_NAME, "version": str(FORMAT_VERSION), META_KEY: json.dumps(record)}
    with atomic.atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata=header)
    sync_directory(path.parent)
    if readable_copy:
        atomic_write_json(sidecar(path), record)
    return path


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors.torch import load_file

    path = resolve_checkpoint(path)
    meta = _meta(path, read_header(path))  # checked before safetensors maps the file
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for malformed files
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); was the copy cut short?") from None
    return tensors, meta


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, its JSON, or a run directory (its ``last``, else its newest checkpoint) -> the file."""
    from studio.training.run_directory import RunDirectory

    p = Path(path).expanduser()
    if p.is_dir():
        newest = RunDirectory(p).newest_checkpoint()
        if newest is not None:
            return newest
        found = sorted(p.glob(f"**/*{SUFFIX}"), key=lambda f: f.stat().st_mtime)
        if not found:
            raise CheckpointError(f"{p}: no checkpoint (*.safetensors) in this folder; train one with `studio train`")
        return found[-1]
    if p.suffix == ".json":
        p = p.with_suffix(SUFFIX)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint")
    return p


# --- optimiser and RNG state ----------------------------------------------------------------------
def flatten_optimizer(prefix: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    import torch

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
