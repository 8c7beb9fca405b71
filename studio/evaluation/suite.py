"""The evaluation registry and the context every evaluation receives.

An evaluation is a function ``fn(ctx: EvalContext) -> dict`` registered with ``@evaluation(name, applies, order)``.
Every module in ``studio.evaluation`` is imported on first use, so a method adds its own evaluations by adding a
module, and ``studio eval`` runs whatever applies to the loaded method.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from studio.data.dataset import AttributedDataset
from studio.data.spec import open_dataset
from studio.data.splits import ZeroShotSplit
from studio.errors import StudioError
from studio.methods.base import Method
from studio.training.data import to_tensor
from studio.training.model_io import LoadedModel, load_model, pick_device

DEFAULT_MAX_ITEMS = 500
DEFAULT_BATCH = 64
#: ``--protocol`` choices of the zero-shot evaluation: one of them, or both.
ZERO_SHOT_PROTOCOLS = ("strict", "greedy")
_NOT_EVALUATIONS = {"suite", "metrics"}

Formatter = Callable[[dict[str, Any]], str]


class EvaluationSkipped(StudioError):
    """Raised inside an evaluation that cannot run on this model or data; recorded as ``{"skipped": reason}``."""


@dataclass(frozen=True)
class Evaluation:
    name: str
    fn: Callable[[EvalContext], dict[str, Any]]
    applies: Callable[[Method], bool]
    order: int
    title: str
    formatter: Formatter | None


_REGISTRY: dict[str, Evaluation] = {}
_discovered = False


def evaluation(name: str, applies: Callable[[Method], bool] = lambda m: True, order: int = 100, *,
               title: str = "", formatter: Formatter | None = None) -> Callable:
    """Register ``fn(ctx) -> dict`` under ``name``; ``applies(method)`` says whether it makes sense for a model,
    ``order`` sorts the report, ``formatter(result) -> str`` renders it as text (a generic listing otherwise)."""

    def register(fn: Callable[[EvalContext], dict[str, Any]]) -> Callable[[EvalContext], dict[str, Any]]:
        if name in _REGISTRY and _REGISTRY[name].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"two evaluations are named {name!r}")
        _REGISTRY[name] = Evaluation(name, fn, applies, order, title or name.replace("_", " "), formatter)
        return fn

    return register


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import studio.evaluation as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name not in _NOT_EVALUATIONS:
            importlib.import_module(f"{package.__name__}.{info.name}")
    _discovered = True


def registered() -> list[Evaluation]:
    """Every known evaluation, in report order."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda e: (e.order, e.name))


@dataclass
class EvalContext:
    """A loaded model together with the data it is judged on; helpers batch the work and never track gradients."""

    loaded: LoadedModel
    dataset: AttributedDataset
    split: ZeroShotSplit
    device: torch.device
    max_items: int = DEFAULT_MAX_ITEMS
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    batch_size: int = DEFAULT_BATCH
    seed: int = 0
    #: Zero-shot query protocols to run (``strict`` and/or ``greedy``).
    protocols: tuple[str, ...] = ZERO_SHOT_PROTOCOLS
    #: Training steps of the judge (``studio.evaluation.judge``; None: its default).
    judge_steps: int | None = None
    #: Random latent partitionings the exhaustive search (``ae``/``betavae`` baselines) tries.
    es_candidates: int = 32
    #: Things evaluations of one run share (the judge), built on first use.
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> Method:
        return self.loaded.method

    def images(self, indices: Sequence[int] | np.ndarray) -> Tensor:
        """Dataset items as float (B, 3, H, W) in [-1, 1] on the device."""
        return to_tensor(self.dataset.images(np.asarray(indices, dtype=np.int64)), self.device)

    @torch.no_grad()
    def encode(self, indices: Sequence[int] | np.ndarray) -> dict[str, Tensor]:
        """Slots of the given items, encoded in batches: one (N, *slot.shape) tensor per slot, on the device."""
        indices = np.asarray(indices, dtype=np.int64)
        if not self.method.can_encode():
            raise EvaluationSkipped(f"this {self.method.name} model cannot encode images yet")
        parts: dict[str, list[Tensor]] = {}
        for start in range(0, len(indices), self.batch_size):
            latents = self.method.encode(self.images(indices[start:start + self.batch_size]))
            for name, value in latents.items():
                parts.setdefault(name, []).append(value.float())
        if not parts:
            return {s.name: torch.empty((0, *s.shape), device=self.device) for s in self.method.slots}
        return {name: torch.cat(values) for name, values in parts.items()}

    @torch.no_grad()
    def decode(self, latents: dict[str, Tensor]) -> Tensor:
        """Images (N, 3, H, W) in [-1, 1] from slots, decoded in batches."""
        n = next(iter(latents.values())).shape[0]
        out = []
        for start in range(0, n, self.batch_size):
            chunk = {k: v[start:start + self.batch_size] for k, v in latents.items()}
            out.append(self.method.decode(chunk).float().clamp(-1, 1))
        return torch.cat(out) if out else torch.empty(0, 3, self.dataset.resolution, self.dataset.resolution)

    def subsample(self, indices: np.ndarray, limit: int | None = None) -> np.ndarray:
        """At most ``limit`` (default ``max_items``) of ``indices``, drawn at random, in ascending order."""
        limit = self.max_items if limit is None else limit
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) <= limit:
            return indices
        return np.sort(self.rng.choice(indices, size=limit, replace=False))


def make_context(checkpoint: str | Path, *, dataset: str | None = None, device: str = "auto",
                 max_items: int = DEFAULT_MAX_ITEMS, seed: int = 0, protocol: str = "both",
                 judge_steps: int | None = None) -> EvalContext:
    """Load a checkpoint (or a run directory's newest) and open the data it was trained on, or ``dataset``;
    ``protocol`` is the zero-shot query protocol: ``strict``, ``greedy`` or ``both``."""
    if max_items < 2:
        raise StudioError(f"--max-items must be at least 2, got {max_items}")
    protocols = protocols_of(protocol)
    if judge_steps is not None and judge_steps < 1:
        raise StudioError(f"--judge-steps must be at least 1, got {judge_steps}")
    dev = pick_device(device)
    loaded = load_model(checkpoint, dev)
    spec = dataset or loaded.dataset_spec
    if not spec:
        raise StudioError(f"{loaded.path}: the checkpoint does not name its dataset; pass --dataset SPEC")
    data = open_dataset(spec)
    _check_compatible(loaded, data)
    split_meta = loaded.split
    split = ZeroShotSplit.make(data.codes, float(split_meta.get("test_fraction", 0.25)),
                               int(split_meta.get("seed", 0)))
    return EvalContext(loaded, data, split, dev, max_items, np.random.default_rng(seed), seed=seed,
                       protocols=protocols, judge_steps=judge_steps)


def protocols_of(protocol: str) -> tuple[str, ...]:
    """``strict``/``greedy``/``both`` -> the zero-shot protocols to run."""
    if protocol == "both":
        return ZERO_SHOT_PROTOCOLS
    if protocol not in ZERO_SHOT_PROTOCOLS:
        raise StudioError(f"--protocol must be strict, greedy or both, got {protocol!r}")
    return (protocol,)


def _check_compatible(loaded: LoadedModel, data: AttributedDataset) -> None:
    context = loaded.method.context
    if data.resolution != context.resolution:
        raise StudioError(f"dataset {data.spec!r} is {data.resolution} px but the model in {loaded.path} was trained "
                          f"at {context.resolution} px; add ',res={context.resolution}' to the dataset spec")
    if not loaded.method.needs_labels:
        return  # labels never reached training: the same pixels with labels only add what the probes can read
    if data.schema.names != context.schema.names or data.schema.cardinalities != context.schema.cardinalities:
        raise StudioError(f"dataset {data.spec!r} has attributes {data.schema.names} "
                          f"{data.schema.cardinalities} but the model in {loaded.path} was trained on "
                          f"{context.schema.names} {context.schema.cardinalities}; evaluate it on its own dataset")


def checkpoint_info(ctx: EvalContext) -> dict[str, Any]:
    """Which model was judged on which data, for the report's header."""
    expected = ctx.loaded.dataset_fingerprint
    return {
        "path": str(ctx.loaded.path),
        "method": ctx.method.name,
        "step": ctx.loaded.step,
        "dataset": ctx.dataset.spec,
        "dataset_fingerprint": ctx.dataset.fingerprint,
        "fingerprint_matches": (expected == ctx.dataset.fingerprint) if expected else None,
        "train_items": len(ctx.split.train),
        "test_items": len(ctx.split.test),
        "max_items": ctx.max_items,
        "device": str(ctx.device),
    }


def applicable(method: Method) -> list[Evaluation]:
    return [e for e in registered() if e.applies(method)]


def run_evaluations(ctx: EvalContext, only: list[str] | None = None,
                    on_start: Callable[[Evaluation], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run every evaluation that applies to the model (or just ``only``): name -> result dict.

    Each evaluation draws from its own generator seeded by ``ctx.seed`` and its name, so running one alone with
    ``only`` gives the same figures as running it among all the others.
    """
    known = {e.name: e for e in registered()}
    if only:
        unknown = [n for n in only if n not in known]
        if unknown:
            raise StudioError(f"unknown evaluation(s) {', '.join(unknown)}; known: {', '.join(known)}")
        chosen = [known[n] for n in dict.fromkeys(only)]
        misfits = [e.name for e in chosen if not e.applies(ctx.method)]
        if misfits:
            fits = ", ".join(e.name for e in applicable(ctx.method)) or "none"
            raise StudioError(f"evaluation(s) {', '.join(misfits)} do not apply to a {ctx.method.name} model; "
                              f"these do: {fits}")
    else:
        chosen = applicable(ctx.method)
    results: dict[str, dict[str, Any]] = {}
    was_training = ctx.method.training
    ctx.method.eval()
    try:
        for e in chosen:
            if on_start is not None:
                on_start(e)
            ctx.rng = np.random.default_rng([ctx.seed, zlib.crc32(e.name.encode())])
            began = time.perf_counter()
            try:
                result = dict(e.fn(ctx))
            except EvaluationSkipped as skip:
                result = {"skipped": str(skip)}
            result["seconds"] = round(time.perf_counter() - began, 3)
            results[e.name] = result
    finally:
        ctx.method.train(was_training)
    return results


def jsonable(value: Any) -> Any:
    """Plain JSON types only: numpy and torch scalars become numbers, non-finite floats become null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, Tensor):
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- text rendering ----------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    """A number as a short fixed-point string; missing values as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}"
    return str(value)


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """Left-aligned first column, right-aligned numbers, every column as wide as its widest cell."""
    cells = [[str(h) for h in header], *[[fmt(c, digits) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for r in cells:
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _generic(result: dict[str, Any]) -> str:
    lines = []
    for key, value in result.items():
        if isinstance(value, (dict, list)):
            value = jsonable(value)
        lines.append(f"{key:<24} {fmt(value)}")
    return "\n".join(lines)


def format_report(info: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    """The readable report ``studio eval`` prints without ``--json``."""
    match = {True: "matches the checkpoint", False: "DIFFERS from the checkpoint's", None: "not recorded"}
    lines = [
        f"checkpoint  {info['path']}",
        f"model       {info['method']}, step {info['step']}",
        f"dataset     {info['dataset']} (fingerprint {info['dataset_fingerprint']}: "
        f"{match[info['fingerprint_matches']]})",
        f"split       {info['train_items']} train / {info['test_items']} test items; at most {info['max_items']} "
        "items per evaluation",
    ]
    known = {e.name: e for e in registered()}
    for name, result in results.items():
        e = known.get(name)
        title = e.title if e else name
        lines += ["", f"== {title} ({result.get('seconds', 0):.1f} s)"]
        if "skipped" in result:
            lines.append(f"skipped: {result['skipped']}")
        elif e is not None and e.formatter is not None:
            lines.append(e.formatter(result))
        else:
            lines.append(_generic(result))
    return "\n".join(lines)
