"""Where things live: shipped resources and models (installed package data, or a frozen bundle) and the user's
data dirs.

The checkout keeps them in its top-level ``models/`` and ``resources/`` folders; an install (wheel or editable)
maps those to the packages ``studio.shipped_models`` and ``studio.resources`` (see pyproject.toml), which
importlib.resources finds wherever the package went.
"""

from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

APP_NAME = "AttributeStudio"


def install_root() -> Path:
    """The folder above the ``studio`` package (a checkout's root, or site-packages), or the unpacked bundle when
    frozen by PyInstaller."""
    frozen = getattr(sys, "_MEIPASS", None)
    return Path(frozen) if frozen else Path(__file__).resolve().parent.parent


def _package_data(package: str, folder: str) -> Path:
    """The folder that holds ``package``'s files; a frozen bundle has ``folder`` in it, and a checkout that an
    older editable install (made before the mapping) points at has ``folder`` at its root."""
    if getattr(sys, "_MEIPASS", None):
        return install_root() / folder
    try:
        return Path(str(importlib.resources.files(package)))
    except ModuleNotFoundError:
        return install_root() / folder


def resources_dir() -> Path:
    return _package_data("studio.resources", "resources")


def icon_path(size: int | None = None) -> Path:
    icons = resources_dir() / "icons"
    return icons / (f"attribute-studio-{size}.png" if size else "attribute-studio.svg")


def shipped_models_dir() -> Path:
    return _package_data("studio.shipped_models", "models")


def user_runs_dir() -> Path:
    return Path(user_data_dir(APP_NAME, appauthor=False)) / "runs"


def cache_dir() -> Path:
    return Path(user_cache_dir(APP_NAME, appauthor=False))


def shipped_models() -> list[Path]:
    """Checkpoints shipped in models/ (each folder: a .safetensors checkpoint and a model card)."""
    from studio.errors import CheckpointError
    from studio.training.checkpoint import read_checkpoint_meta

    found = []
    for path in sorted(shipped_models_dir().glob("*/*.safetensors")):
        try:
            read_checkpoint_meta(path)  # torch-free; a broken file is left for "Open Model" to report
        except CheckpointError:
            continue
        found.append(path)
    return found


def default_model(dataset_kind: str = "fonts") -> Path | None:
    """The model the app opens with: the shipped one for the dataset kind, else the user's newest run."""
    for p in shipped_models():
        if p.parent.name.startswith(dataset_kind):
            return p
    runs = user_runs_dir()
    found = runs.glob("*/checkpoints/last.safetensors") if runs.exists() else []
    newest = sorted(found, key=lambda p: p.stat().st_mtime)
    return newest[-1] if newest else None
