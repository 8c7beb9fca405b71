"""Data-parallel training across processes: ``torchrun`` starts one process per GPU (or several on a CPU), each
trains on its own batches, and the gradients are averaged before every optimiser step.

Why not ``torch.nn.parallel.DistributedDataParallel``: DDP hooks into a module's ``forward``, but methods call
their sub-networks (encoder, decoder, critic, classifiers) directly, several keep more than one optimiser, and
the adversarial method's gradient penalty calls ``torch.autograd.grad``, which DDP documents as unsupported. What
DDP does to the numbers is simple, though: identical initial weights, and gradients averaged over every process
before each step. Here that averaging happens in :meth:`StepContext.sync_gradients`, which ``ctx.step`` (and
GZS-Net's own ``apply_gradients``) call between ``backward`` and the optimiser step, so every method trains
data-parallel without knowing it. Gradients go in flat buckets, one all-reduce each; unlike DDP they are not
overlapped with the backward pass, which costs a little speed on large models and nothing in results.

Batch-norm running statistics are the only state that depends on a process's own batch, so they are averaged
after every step (DDP would copy rank 0's). Everything else stays identical because every process applies the
same averaged gradients to the same weights.

Outside ``torchrun`` (``WORLD_SIZE`` unset or 1) every helper here is a cheap no-op, so the trainer has one code
path. The process group uses NCCL for CUDA devices and gloo for the CPU.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from studio.errors import StudioError
from studio.training.model_io import pick_device

#: Gradients are all-reduced in flat buckets of about this many bytes (DDP's default is 25 MiB).
BUCKET_BYTES = 25 * 1024**2
#: How long a process waits in a collective for the others (e.g. while rank 0 writes a large checkpoint).
TIMEOUT = timedelta(minutes=30)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

T = TypeVar("T")


# --- who we are -------------------------------------------------------------------------------------
def launched_world_size() -> int:
    """Processes ``torchrun`` (or any launcher that sets the standard variables) started; 1 otherwise."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank; the launcher's ``RANK`` also before the group is joined or after it is left."""
    if active():
        return dist.get_rank()
    if launched_world_size() > 1:
        try:
            return int(os.environ.get("RANK", "0"))
        except ValueError:
            return 0
    return 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 writes files, logs and reports progress; the other ranks only train."""
    return rank() == 0


def local_world_size() -> int:
    """Processes on this machine (they share its CPU cores)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


# --- starting and ending ----------------------------------------------------------------------------
def setup(requested_device: str) -> tuple[torch.device, bool]:
    """The device to train on, after joining the process group when launched by ``torchrun``.

    Returns ``(device, owns_group)``: ``owns_group`` is True when this call created the group, so the caller
    tears it down with :func:`shutdown`. A group someone else created (a test, a notebook) is used as it is.
    """
    if active():
        return _device_for_rank(requested_device, int(os.environ.get("LOCAL_RANK", "0"))), False
    if launched_world_size() <= 1:
        return pick_device(requested_device), False
    if not dist.is_available():
        raise StudioError("this torch build has no torch.distributed; train with one process")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device_for_rank(requested_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # device_id (torch >= 2.3) binds the group to this GPU up front; older versions use the current device
        bind = {"device_id": device} if "device_id" in inspect.signature(dist.init_process_group).parameters else {}
        dist.init_process_group("nccl", timeout=TIMEOUT, **bind)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return device, True


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _device_for_rank(requested: str, local_rank: int) -> torch.device:
    """One GPU per process (``cuda:LOCAL_RANK``) or the CPU; MPS has no collective backend."""
    wanted = requested.split(":")[0]
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cpu":
        return torch.device("cpu")
    if wanted == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise StudioError(f"process {local_rank} on this machine has no GPU of its own ({count} visible); "
                              "start at most one process per GPU (--nproc_per_node)")
        return torch.device("cuda", local_rank)
    raise StudioError(f"--device {requested} cannot train with several processes; use cuda or cpu")


# --- agreeing ---------------------------------------------------------------------------------------
def barrier() -> None:
    if active():
        dist.barrier()


def from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank: for decisions that must not differ (e.g. whether to save)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order, on every rank."""
    if not active():
        return [value]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def max_over_ranks(values: list[float], device: torch.device) -> list[float]:
    """Each value's maximum over all ranks, on every rank (one collective for several figures): a stop flag
    that is 1 on any rank stops all of them at one step."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def check_started(error: BaseException | None) -> None:
    """Every rank says whether it could set up; where one could not, the others raise too instead of waiting for
    it in the first collective. The failing rank re-raises its own error itself."""
    failures = gather(None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        return
    for where, message in enumerate(failures):
        if message is not None:
            raise StudioError(f"training process {where} could not start: {message}")


def average_scalars(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Mean of each figure over the ranks (every rank logs the same keys): losses of the global batch."""
    if not active() or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / world_size()).tolist()))


# --- tensors ----------------------------------------------------------------------------------------
def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and floating-point buffers to every rank, so training starts from one set of
    weights (integer buffers are counters and masks that follow from the config)."""
    if active():
        tensors = [t.data for t in (*module.parameters(), *module.buffers())]
        for bucket in _buckets(t for t in tensors if t.is_floating_point() and t.numel() > 0):
            flat = torch.cat([t.reshape(-1) for t in bucket])
            dist.broadcast(flat, src=0)
            _unflatten(flat, bucket)


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Average the gradients of ``optimizer``'s parameters over the ranks (all-reduce SUM, then divide).

    Every rank runs the same code, so the same parameters have gradients everywhere; those without one are
    skipped on every rank alike.
    """
    if not active():
        return
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if any(g.is_sparse for g in grads):
        raise StudioError("sparse gradients cannot be averaged across processes; train with one process")
    pending = []
    for bucket in _buckets(grads):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        pending.append((dist.all_reduce(flat, async_op=True), flat, bucket))
    size = world_size()
    for work, flat, bucket in pending:
        work.wait()
        _unflatten(flat.div_(size), bucket)


def average_batch_statistics(module: nn.Module) -> None:
    """Average batch-norm running means and variances, the only state that follows a rank's own batches."""
    if not active():
        return
    stats = [t for m in module.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats
             for t in (m.running_mean, m.running_var) if t is not None]
    size = world_size()
    for bucket in _buckets(stats):
        flat = torch.cat([t.reshape(-1) for t in bucket])
        dist.all_reduce(flat)
        _unflatten(flat.div_(size), bucket)


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of the state dict, to check that every rank holds the same weights."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _buckets(tensors: Iterable[Tensor]) -> list[list[Tensor]]:
    """Tensors grouped by device and dtype into runs of about ``BUCKET_BYTES`` (one collective each)."""
    out: list[list[Tensor]] = []
    open_: dict[tuple[torch.device, torch.dtype], tuple[list[Tensor], list[int]]] = {}
    for t in tensors:
        key = (t.device, t.dtype)
        if key not in open_:
            open_[key] = ([], [0])
        bucket, size = open_[key]
        bucket.append(t)
        size[0] += t.numel() * t.element_size()
        if size[0] >= BUCKET_BYTES:
            out.append(bucket)
            del open_[key]
    out.extend(bucket for bucket, _ in open_.values())
    return out


def _unflatten(flat: Tensor, bucket: list[Tensor]) -> None:
    for t, part in zip(bucket, flat.split([t.numel() for t in bucket])):
        t.copy_(part.view_as(t))


# --- random streams ---------------------------------------------------------------------------------
def rank_seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """A seed of its own for this rank (and ``key``), so ranks draw different batches from one ``--seed``."""
    return np.random.SeedSequence(seed, spawn_key=(rank(), *key))


def batch_rng(seed: int) -> np.random.Generator:
    """The batch sampler's generator: ``--seed`` itself in one process (as before), one stream per rank else."""
    if not active():
        return np.random.default_rng(seed)
    return np.random.default_rng(rank_seed_sequence(seed, 0))


def seed_torch_per_rank(seed: int, *key: int) -> None:
    """Different torch noise per rank (noise injections, penalties) once the shared weights are built."""
    if active():
        torch.manual_seed(int(rank_seed_sequence(seed, 1, *key).generate_state(1, np.uint64)[0] >> 1))
