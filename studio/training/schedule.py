"""The learning-rate schedule of a run, and the test that tells a diverged run from a skipped step."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from studio.errors import StudioError
from studio.training.settings import LR_DECAYS

if TYPE_CHECKING:
    import torch


def lr_factor(decay: str, step: float, steps: float) -> float:
    """Multiplier of every optimiser's initial learning rate at ``step`` of ``steps`` (or at a fraction of 1).

    A short run gains most from ending at a small learning rate: the last steps average out the noise that a
    constant rate keeps injecting. By steps it depends on the step alone, so a resumed run continues the same
    curve exactly; a budgeted run passes the share of its time spent.
    """
    if decay == "none" or steps <= 0:
        return 1.0
    progress = min(max(step / steps, 0.0), 1.0)
    if decay == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if decay == "linear":
        return 1.0 - progress
    raise StudioError(f"unknown --lr-decay {decay!r}; choose one of {', '.join(LR_DECAYS)}")


def set_learning_rates(optimizers: dict[str, torch.optim.Optimizer], factor: float) -> None:
    """Scale each parameter group's rate from the one it started with (kept in the group, so checkpoints hold it)."""
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def diverged(losses: dict[str, float], skips_overflow: bool) -> bool:
    """A non-finite loss means training diverged. A non-finite gradient norm means the same, except under float16
    loss scaling, where it marks a step the scaler skipped (it lowers the scale and goes on)."""
    for name, value in losses.items():
        if math.isfinite(value):
            continue
        if skips_overflow and name.startswith("grad_norm"):
            continue
        return True
    return False
