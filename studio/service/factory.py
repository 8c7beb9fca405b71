"""The one place a front end gets a model service from, without importing PyTorch until it asks for one.

The GUI's modules import only torch-free types (``studio.service.descriptions``, ``studio.service.composition``);
``create_service`` loads the torch-backed ``ModelService`` when the app, having shown its window or splash,
really needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def create_service(device: str = "auto", cache_dir: Path | None = None) -> Any:
    """A new ``ModelService`` on ``device`` (auto, cpu, cuda, mps); StudioError names a device that is missing."""
    from studio.service.model_service import ModelService

    return ModelService(device=device, cache_dir=cache_dir)
