"""Where things live: shipped resources and models (source tree or a frozen bundle) and the user's data dirs."""

from __future__ import annotations

import sys
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

APP_NAME = "AttributeStudio"


def install_root() -> Path:
    """The repository root, or the unpacked bundle when frozen by PyInstaller."""
    frozen = getattr(sys, "_MEIPASS", None)
    return Path(frozen) if frozen else Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    return install_root() / "resources"


def icon_path(size: int | None = None) -> Path:
    icons = resources_dir() / "icons"
    return icons / (f"attribute-studio-{size}.png" if size else "attribute-studio.svg")


def shipped_models_dir() -> Path:
    return install_root() / "models"


def user_runs_dir() -> Path:
    return Path(user_data_dir(APP_NAME, appauthor=False)) / "runs"


def cache_dir() -> Path:
    return Path(user_cache_dir(APP_NAME, appauthor=False))


def shipped_models() -> list[Path]:
    """Checkpoints shipped in models/ (each a .safetensors with its .json sidecar and a model card)."""
    root = shipped_models_dir()
    return sorted(p for p in root.glob("*/*.safetensors") if p.with_suffix(".json").exists())


def default_model(dataset_kind: str = "fonts") -> Path | None:
    """The model the app opens with: the shipped one for the dataset kind, else the user's newest run."""
    for p in shipped_models():
        if p.parent.name.startswith(dataset_kind):
            return p
    runs = user_runs_dir()
    found = runs.glob("*/checkpoints/last.safetensors") if runs.exists() else []
    newest = sorted(found, key=lambda p: p.stat().st_mtime)
    return newest[-1] if newest else None
