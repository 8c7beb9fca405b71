"""What the service tells its clients, as plain data: the loaded model, the open dataset, a composed result, the
methods one can train (their options, with help, bounds, choices and defaults, and their recipes), the run settings
a training form shows (``ConfigField`` with ``FormHints``) and what a checkpoint file holds.

This module imports no torch and no method module, so the GUI can name these types without loading PyTorch;
the service fills them in (``ModelService.methods()``, ``ModelService.describe_checkpoint()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.data.schema import AttributeSchema
from studio.errors import StudioError
from studio.methods.config import ConfigField, FormHints, config_fields, parse_value
from studio.slots import SlotSpec

__all__ = ["CheckpointDescription", "ComposeResult", "ConfigField", "DatasetInfo", "FormHints", "MethodDescription",
           "ModelInfo", "RecipeDescription", "SlotSpec", "describe_config", "parse_field"]


@dataclass(frozen=True, eq=False)
class ModelInfo:
    """A loaded checkpoint as the UI sees it. ``dataset_warning`` is non-empty when the open dataset is not the
    one the model was trained on (it still works, because the attribute names match)."""

    path: Path
    method: str
    title: str
    slots: list[SlotSpec]
    resolution: int
    schema: AttributeSchema
    step: int
    dataset_spec: str
    dataset_fingerprint: str
    can_encode: bool
    fingerprint: str = ""
    dataset_warning: str = ""
    device: str = "cpu"

    def slot(self, name: str) -> SlotSpec:
        for s in self.slots:
            if s.name == name:
                return s
        raise StudioError(f"the {self.method} model has no slot {name!r}; its slots are: "
                          f"{', '.join(s.name for s in self.slots)}")

    @property
    def slot_names(self) -> list[str]:
        return [s.name for s in self.slots]


@dataclass(frozen=True, eq=False)
class DatasetInfo:
    spec: str
    size: int
    resolution: int
    schema: AttributeSchema
    fingerprint: str


@dataclass(frozen=True, eq=False)
class ComposeResult:
    """``latents``: the composed value of every slot, flattened ``(size,)`` float32."""

    image: np.ndarray
    latents: dict[str, np.ndarray]
    request_id: int
    seconds: float


@dataclass(frozen=True)
class RecipeDescription:
    """A method's measured settings for one situation: run settings (steps, batch, lr_decay, budget_minutes, ...)
    and method options."""

    name: str
    summary: str
    settings: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodDescription:
    """A method one can train, as forms need it: its options (``ConfigField``: name, type, default, help,
    choices, bounds), its recipes, and the run settings a new run of it starts from."""

    name: str
    title: str
    needs_labels: bool
    fields: tuple[ConfigField, ...]
    recipes: dict[str, RecipeDescription]
    run_defaults: dict[str, Any]

    @property
    def label(self) -> str:
        return self.title or self.name

    def run_settings(self, recipe: str | None = None) -> dict[str, Any]:
        """The run settings of a new run: the defaults, then the recipe's (None: no recipe)."""
        chosen = self.recipes[recipe].settings if recipe is not None else {}
        return {**self.run_defaults, **chosen}


@dataclass(frozen=True)
class CheckpointDescription:
    """What a checkpoint was made from: enough to fill a form that continues or fine-tunes it."""

    path: Path
    method: str
    config: dict[str, Any]
    dataset_spec: str
    step: int


def describe_config(config_class: type) -> tuple[ConfigField, ...]:
    """The fields of a method's config dataclass, in declaration order."""
    return tuple(config_fields(config_class))


def parse_field(f: ConfigField, text: str) -> Any:
    """Parse a text-box value as the command line would; ``ValueError`` names the option."""
    return parse_value(f, text)


def checkpoint_description(path: Path, meta: dict[str, Any]) -> CheckpointDescription:
    """A checkpoint's description from its metadata (``read_checkpoint_meta``); errors name the file."""
    try:
        method, config = str(meta["method"]), dict(meta.get("config", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise StudioError(f"{path}: not a readable checkpoint (no {e} in its description)") from None
    dataset = meta.get("dataset", {})
    spec = str(dataset.get("spec", "")) if isinstance(dataset, dict) else ""
    try:
        step = int(meta.get("step", 0) or 0)
    except (TypeError, ValueError):
        raise StudioError(f"{path}: its description has a step that is not a number ({meta.get('step')!r})") from None
    return CheckpointDescription(Path(path), method, config, spec, step)
