"""Save and load a whole method (weights, optimisers, RNG, config, slots, schema, data fingerprint)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.errors import CheckpointError, StudioError
from studio.methods.base import Method, MethodContext
from studio.methods.config import config_fields, config_from_json, config_to_json
from studio.methods.registry import get_method
from studio.training.checkpoint import (
    flatten_optimizer,
    load_tensors,
    resolve_checkpoint,
    save_tensors,
    unflatten_optimizer,
)

MODEL = "model/"
OPTIM = "optim/"


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' takes CUDA, then Apple MPS, then the CPU; an explicit device that is absent is an error."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError("--device cuda was asked for, but no CUDA GPU is visible; use --device auto or cpu")
    try:
        return torch.device(requested)
    except RuntimeError:
        raise StudioError(f"--device {requested!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None


def build_method(name: str, config: Any, context: MethodContext) -> Method:
    return get_method(name)(config, context)


def save_checkpoint(path: str | Path, method: Method, *, step: int, meta: dict[str, Any],
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    rng: np.random.Generator | None = None, half: bool = False,
                    extra_tensors: dict[str, torch.Tensor] | None = None, readable_copy: bool = True) -> Path:
    """Write a checkpoint atomically (one file, see ``studio.training.checkpoint``). ``half`` stores float weights
    as fp16 (small shipped models); ``extra_tensors`` go in as they are (the other training processes' random
    states); ``readable_copy`` also writes its description as JSON beside it."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in method.state_dict().items():
        tensors[MODEL + k] = v.half() if half and v.is_floating_point() else v
    optim_info: dict[str, Any] = {}
    for name, opt in (optimizers or {}).items():
        t, info = flatten_optimizer(OPTIM + name, opt.state_dict())
        tensors.update(t)
        optim_info[name] = info
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    tensors.update(extra_tensors or {})
    full_meta = {
        **meta,
        "method": method.name,
        "config": config_to_json(method.config),
        "context": method.context.to_json(),
        "slots": [s.to_json() for s in method.slots],
        "step": int(step),
        "optimizers": optim_info,
        "numpy_rng": rng.bit_generator.state if rng is not None else None,
        "half": half,
    }
    return save_tensors(Path(path), tensors, full_meta, readable_copy=readable_copy)


@dataclass
class LoadedModel:
    """A method rebuilt from a checkpoint, in eval mode on ``device``, with everything its description said."""

    method: Method
    meta: dict[str, Any]
    path: Path
    tensors: dict[str, torch.Tensor]

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    @property
    def dataset_spec(self) -> str:
        return str(self.meta.get("dataset", {}).get("spec", ""))

    @property
    def dataset_fingerprint(self) -> str:
        return str(self.meta.get("dataset", {}).get("fingerprint", ""))

    @property
    def split(self) -> dict[str, Any]:
        return dict(self.meta.get("split", {"test_fraction": 0.25, "seed": 0}))

    @property
    def device(self) -> torch.device:
        return next(self.method.parameters()).device

    def restore_training_state(self, optimizers: dict[str, torch.optim.Optimizer]) -> np.random.Generator | None:
        """Put optimiser and RNG state back, for an exact resume; returns the numpy generator."""
        for name, opt in optimizers.items():
            info = self.meta.get("optimizers", {}).get(name)
            if info is None:
                raise CheckpointError(f"{self.path}: no state for optimiser {name!r}; cannot resume exactly")
            opt.load_state_dict(unflatten_optimizer(OPTIM + name, self.tensors, info))
        torch.set_rng_state(self.tensors["rng/torch"])
        if "rng/cuda" in self.tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(self.tensors["rng/cuda"])
        state = self.meta.get("numpy_rng")
        if state is None:
            return None
        rng = np.random.default_rng()
        rng.bit_generator.state = state
        return rng


#: Fields of a checkpoint description and the JSON types they must have (the optional ones when present).
META_FIELDS: dict[str, type | tuple[type, ...]] = {
    "method": str, "context": dict, "config": dict, "slots": list, "step": int, "dataset": dict, "split": dict,
    "settings": dict, "optimizers": dict, "metrics": dict, "numpy_rng": (dict, type(None)), "half": bool,
    "trained_seconds": (int, float), "ranks": dict,
}
REQUIRED_META = ("method", "context")


def check_meta(path: Path, meta: dict[str, Any]) -> None:
    """Refuse a description whose fields have the wrong JSON types, naming the field (before anything reads it)."""
    for name in REQUIRED_META:
        if name not in meta:
            raise CheckpointError(f"{path}: its description lacks the field {name!r}; not a checkpoint of a method")
    for name, kind in META_FIELDS.items():
        if name in meta and (not isinstance(meta[name], kind) or (kind is int and isinstance(meta[name], bool))):
            raise CheckpointError(f"{path}: field {name!r} of its description is {type(meta[name]).__name__}, not "
                                  f"{kind.__name__ if isinstance(kind, type) else kind[0].__name__}")


def _checked_config(path: Path, cls: type[Method], data: dict[str, Any]) -> dict[str, Any]:
    """The stored config with every known field of the right type, choice and range (the name in the message)."""
    for f in config_fields(cls.config_class):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.type is tuple:
            ok = isinstance(value, (list, tuple)) and all(type(v) is int for v in value)
        elif f.type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = type(value) is f.type
        if ok and f.choices and value not in f.choices:
            ok = False
        if ok and f.type in (int, float) and ((f.low is not None and value < f.low)
                                              or (f.high is not None and value > f.high)):
            ok = False
        if not ok:
            raise CheckpointError(f"{path}: {cls.name} option {f.name!r} is {value!r} in its description, not a valid "
                                  f"{f.type.__name__}; the checkpoint is damaged")
    return data


def _check_shapes(path: Path, name: str, skeleton: Method, state: dict[str, torch.Tensor]) -> None:
    """Names of every entry, shapes of the parameters (a buffer may take the checkpoint's size, e.g. mixing's
    candidate table)."""
    names = set(skeleton.state_dict())
    missing = sorted(names - set(state))
    unexpected = sorted(set(state) - names)
    expected = {k: tuple(v.shape) for k, v in skeleton.named_parameters()}
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
            ", ".join(f"{k} is {tuple(state[k].shape)}, the network's {expected[k]}" for k in wrong[:3]))
            if part)
        raise CheckpointError(f"{path}: weights do not fit the {name} network its description builds ({detail})")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the method a checkpoint describes; errors name the file and what is wrong with it."""
    resolved = resolve_checkpoint(path)
    tensors, meta = load_tensors(resolved)
    check_meta(resolved, meta)
    try:
        cls = get_method(meta["method"])
    except KeyError:
        raise CheckpointError(f"{resolved}: made by method {meta['method']!r}, which this version does not "
                              "know") from None
    state = {k[len(MODEL):]: v.float() if v.is_floating_point() else v
             for k, v in tensors.items() if k.startswith(MODEL)}
    try:
        config = config_from_json(cls.config_class, _checked_config(resolved, cls, meta.get("config", {})))
        context = MethodContext.from_json(meta["context"])
        # First without memory (torch's meta device): a description that asks for another network than the
        # weights in the file (e.g. a damaged width) is refused before anything is allocated for it.
        with torch.device("meta"):
            skeleton = cls(config, context)
        _check_shapes(resolved, cls.name, skeleton, state)
        method = cls(config, context)
    except StudioError:
        raise
    except Exception as e:  # whatever the damaged description makes the constructor trip over
        raise CheckpointError(f"{resolved}: its description does not build a {cls.name} network "
                              f"({type(e).__name__}: {e})") from None
    try:
        method.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{resolved}: weights do not fit the {cls.name} network "
                              f"({str(e).splitlines()[-1].strip()})") from None
    dev = torch.device(device) if not isinstance(device, str) or device != "auto" else pick_device("auto")
    method.to(dev).eval()
    return LoadedModel(method, meta, resolved, tensors)
