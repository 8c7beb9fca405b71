"""What the Training tab and the CLI learn before a run starts: the methods one can train, what a checkpoint was
made from, run settings from plain values, and a head start on the imports the first job needs.

Apart from ``model_service`` because none of it needs a loaded model: ``ModelService``'s static methods of the
same names hand these out.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import StudioError
from studio.service.descriptions import (
    CheckpointDescription,
    ConfigField,
    MethodDescription,
    RecipeDescription,
    checkpoint_description,
    describe_config,
)

if TYPE_CHECKING:
    from studio.training.settings import TrainSettings

#: The run settings a method's recipes fill in, and its ``run_defaults`` therefore hold.
RECIPE_SETTINGS = ("steps", "batch", "lr_decay", "budget_minutes")


def methods() -> list[MethodDescription]:
    """Every method one can train, in the registry's order, as plain data for forms."""
    from studio.methods.registry import get_method, method_names
    from studio.training.settings import TrainSettings

    new_run = {f.name: f.new_run_value for f in describe_config(TrainSettings)}
    out = []
    for name in method_names():
        cls = get_method(name)
        recipes = {k: RecipeDescription(k, r.summary, dict(r.settings), dict(r.options))
                   for k, r in cls.recipes.items()}
        # what the recipes set, so that choosing none puts it back (the rest of the form is the person's)
        defaults = {**{k: new_run[k] for k in RECIPE_SETTINGS}, **getattr(cls, "train_defaults", {})}
        out.append(MethodDescription(name, cls.title or "", bool(cls.needs_labels),
                                     describe_config(cls.config_class), recipes, defaults))
    return out


def run_setting_fields() -> tuple[ConfigField, ...]:
    """The run settings a form shows (those ``TrainSettings`` declares with ``FormHints``), in declaration order,
    as plain data: the Training tab builds its rows from these, as ``studio train`` builds its flags."""
    from studio.training.settings import TrainSettings

    return tuple(f for f in describe_config(TrainSettings) if f.form is not None)


def describe_checkpoint(path: str | Path) -> CheckpointDescription:
    """What a checkpoint (file, sidecar or run folder) was made from: method, options, dataset, step."""
    from studio.training.checkpoint import read_checkpoint_meta, resolve_checkpoint

    return checkpoint_description(resolve_checkpoint(path), read_checkpoint_meta(path))


def train_settings(**values: Any) -> TrainSettings:
    """Run settings from plain values (the Training tab's form); unknown names are a StudioError."""
    from studio.training.settings import TrainSettings

    known = {f.name for f in dataclass_fields(TrainSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise StudioError(f"unknown run settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return TrainSettings(**values)


def warm_up_training() -> threading.Thread:
    """Import what the first training job would import lazily (torch.optim pulls in torch._dynamo, seconds of
    module loading that hold the GIL in long stretches) on a thread, while the app starts, not when the user
    presses Start."""

    def work() -> None:
        with contextlib.suppress(Exception):  # only a head start; the job imports it again if this failed
            import torch._dynamo  # noqa: F401

    thread = threading.Thread(target=work, name="studio-warm-up", daemon=True)
    thread.start()
    return thread
