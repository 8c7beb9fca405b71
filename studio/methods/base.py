"""The contract every method fulfils: images map to named slots and back, and the method knows how to train.

Nothing outside a method's own module needs to know which method is behind the slots: the trainer, the service,
the evaluation and the GUI only use what is declared here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from studio.data.schema import AttributeSchema
from studio.slots import SlotSpec

if TYPE_CHECKING:
    from studio.training.data import TrainingData

Latents = dict[str, Tensor]
Batch = dict[str, Any]


@dataclass(frozen=True)
class TrainingRecipe:
    """A measured set of run settings and method options for one situation (e.g. a short run on a CPU): the
    command line fills in, from it, every value the user left unset (``studio train --recipe``)."""

    summary: str
    #: TrainSettings fields (steps, batch, lr_decay, budget_minutes, ...)
    settings: dict[str, Any] = field(default_factory=dict)
    #: the method's config options
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodContext:
    """What a method is built for: the data's schema and resolution, and how many training items there are.

    Saved with every checkpoint so the same network can be rebuilt without the data.
    """

    schema: AttributeSchema
    resolution: int
    num_train_items: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema.to_json(), "resolution": self.resolution,
                "num_train_items": self.num_train_items, "extra": self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MethodContext:
        return cls(AttributeSchema.from_json(data["schema"]), int(data["resolution"]),
                   int(data.get("num_train_items", 0)), dict(data.get("extra", {})))


class StepContext:
    """Device, mixed-precision and multi-process plumbing handed to ``training_step``: methods call
    ``ctx.autocast()`` and ``ctx.step(loss, optimizer)`` and stay free of AMP and data-parallel details.

    ``gradient_sync`` (set by the trainer under ``torchrun``) averages an optimiser's gradients across processes;
    a method that steps an optimiser itself calls :meth:`sync_gradients` between backward and the step.
    """

    def __init__(self, device: torch.device, amp: bool = False,
                 gradient_sync: Callable[[torch.optim.Optimizer], None] | None = None) -> None:
        self.device = device
        self._gradient_sync = gradient_sync
        self.amp = bool(amp and device.type == "cuda")
        # bfloat16 has float32's range, so it needs no loss scaling and cannot overflow to inf; GPUs without it
        # (before Ampere) get float16 with a GradScaler, which skips the steps whose gradients overflowed.
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)

    @property
    def skips_overflow(self) -> bool:
        """True when a non-finite gradient norm means "this step was skipped" rather than "training diverged"."""
        return self.scaler.is_enabled()

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def sync_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Average ``optimizer``'s gradients over the training processes (a no-op in a single process); call it
        after backward and before unscaling, clipping or stepping, so every process takes the same step."""
        if self._gradient_sync is not None:
            self._gradient_sync(optimizer)

    def step(self, loss: Tensor, optimizer: torch.optim.Optimizer, *, retain_graph: bool = False) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward(retain_graph=retain_graph)
        self.sync_gradients(optimizer)
        self.scaler.step(optimizer)
        self.scaler.update()


class Method(nn.Module):
    """Base class of every method. Subclasses set ``name`` and ``config_class`` and implement the hooks."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    config_class: ClassVar[type]
    #: True for methods that need attribute labels to train (everything but unsupervised mixing).
    needs_labels: ClassVar[bool] = True
    #: Train with channels-last weights on the CPU, where oneDNN's convolutions run faster that way (measured
    #: per method with benchmarks/memory_format.py; GPUs are not measured yet, so they keep the default layout).
    channels_last_on_cpu: ClassVar[bool] = False
    #: Named recipes (``studio train --recipe NAME``); "cpu" is taken by default when training on a CPU.
    recipes: ClassVar[dict[str, TrainingRecipe]] = {}

    def __init__(self, config: Any, context: MethodContext) -> None:
        super().__init__()
        self.config = config
        self.context = context

    # --- the slot interface ------------------------------------------------------------------
    @property
    def slots(self) -> list[SlotSpec]:
        raise NotImplementedError

    def encode(self, images: Tensor) -> Latents:
        """``images`` (B, 3, H, W) in [-1, 1] -> one tensor (B, *slot.shape) per slot."""
        raise NotImplementedError

    def decode(self, latents: Latents) -> Tensor:
        """Slots -> images (B, 3, H, W) in [-1, 1]."""
        raise NotImplementedError

    def can_encode(self) -> bool:
        """False while a method cannot yet encode new images (LORD before its amortisation stage)."""
        return True

    # --- training ------------------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def sample_batch(self, data: TrainingData, rng: np.random.Generator, batch_size: int) -> Batch:
        """Draw one training batch (tensors already on ``data.device``)."""
        raise NotImplementedError

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], step: int,
                      ctx: StepContext) -> dict[str, float]:
        """One optimisation step; returns the scalar losses to log (``loss`` is the headline figure)."""
        raise NotImplementedError

    def on_train_start(self, data: TrainingData) -> None:
        """Hook for methods that precompute from the training data (nearest neighbours, class counts)."""

    def sample_grid(self, data: TrainingData, rng: np.random.Generator) -> Tensor:
        """Images (rows x cols, 3, H, W) in [-1, 1] that show progress; default: inputs over reconstructions."""
        idx = rng.choice(data.train_indices, size=min(8, len(data.train_indices)), replace=False)
        x = data.images(idx)
        with torch.no_grad():
            y = self.decode(self.encode(x))
        return torch.cat([x, y.clamp(-1, 1)])

    # --- helpers shared by methods ------------------------------------------------------------
    def reconstruct(self, images: Tensor) -> Tensor:
        return self.decode(self.encode(images))


def split_chunks(z: Tensor, slots: list[SlotSpec]) -> Latents:
    """Split a flat (B, sum(d)) latent into vector slots, in order."""
    parts = torch.split(z, [s.size for s in slots], dim=1)
    return {s.name: p for s, p in zip(slots, parts)}


def join_chunks(latents: Latents, slots: list[SlotSpec]) -> Tensor:
    return torch.cat([latents[s.name].reshape(latents[s.name].shape[0], -1) for s in slots], dim=1)
