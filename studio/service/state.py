"""What the model service has open, as one immutable snapshot, with the events that announce changes to it and
the checks that an opened dataset fits the loaded model.

Apart from ``model_service`` so that the snapshot and the rules for what may be opened with what read on their
own; ``ServiceParts`` names what the service's helpers (``data_survey``, ``slot_fits``) may use of the service,
so that they never import it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from psygnal import Signal, SignalGroup

from studio.data.dataset import AttributedDataset
from studio.errors import DatasetError, StudioError
from studio.service.descriptions import DatasetInfo, ModelInfo
from studio.service.latent_cache import LatentCache

if TYPE_CHECKING:
    from studio.service.inference import CancelCheck, InferenceWorker
    from studio.training.model_io import LoadedModel

Progress = Callable[[float], None] | None
#: Trims each chunk of encoded items (one slot, pooled) while long encodes run.
Keep = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


class ServiceEvents(SignalGroup):
    model_changed = Signal(object)  # ModelInfo | None
    dataset_changed = Signal(object)  # DatasetInfo | None
    busy = Signal(str)  # what runs now; '' when idle
    error = Signal(str)  # failures of work nobody waits on (coalesced composes)


@dataclass(frozen=True, eq=False)
class ServiceState:
    """One consistent snapshot of what is open; a job keeps its snapshot even if the user opens something else."""

    loaded: LoadedModel | None = None
    model: ModelInfo | None = None
    dataset: AttributedDataset | None = None
    dataset_info: DatasetInfo | None = None
    cache: LatentCache | None = None

    def need_model(self) -> tuple[LoadedModel, ModelInfo]:
        if self.loaded is None or self.model is None:
            raise StudioError("no model is loaded; open a checkpoint first")
        return self.loaded, self.model

    def need_dataset(self) -> tuple[AttributedDataset, DatasetInfo]:
        if self.dataset is None or self.dataset_info is None:
            raise StudioError("no dataset is open; open one (e.g. fonts:small) first")
        return self.dataset, self.dataset_info

    def need_cache(self) -> LatentCache:
        self.need_model()
        self.need_dataset()
        assert self.cache is not None
        return self.cache

    def with_open(self, loaded: LoadedModel | None, model: ModelInfo | None, dataset: AttributedDataset | None,
               dataset_info: DatasetInfo | None, cache_dir: Path) -> ServiceState:
        """The snapshot after opening these; the latent cache is kept when model and dataset are the same."""
        cache = None
        if model is not None and dataset is not None and dataset_info is not None:
            same = (self.cache is not None and self.model is not None and self.dataset_info is not None
                    and self.model.fingerprint == model.fingerprint
                    and self.dataset_info.fingerprint == dataset_info.fingerprint)
            cache = self.cache if same else LatentCache(
                cache_dir / "latents", model.fingerprint, dataset_info.fingerprint, len(dataset),
                {s.name: s.size for s in model.slots})
        return ServiceState(loaded, model, dataset, dataset_info, cache)


class ServiceParts(Protocol):
    """What ``data_survey`` and ``slot_fits`` use of the model service (``ModelService`` is one): its settings,
    its cache folder, its inference worker and the worker-side steps everything else is built from."""

    cache_dir: Path
    manifold_items: int
    opening_sample: int
    direction_items: int
    preview_points: int
    _worker: InferenceWorker

    def _busy(self, text: str) -> AbstractContextManager[None]: ...

    def _train_items(self, state: ServiceState) -> np.ndarray: ...

    def _encode_items(self, state: ServiceState, indices: np.ndarray, progress: Progress = None,
                      cancel: CancelCheck = None, keep: Keep | None = None) -> dict[str, np.ndarray]: ...

    def _encode_dataset_now(self, state: ServiceState, indices: np.ndarray) -> dict[str, np.ndarray]: ...

    def _decode_now(self, state: ServiceState, latents: dict[str, np.ndarray]) -> np.ndarray: ...

    def _file_latents_now(self, state: ServiceState, path: str) -> dict[str, np.ndarray]: ...


def default_cache_dir() -> Path:
    """$STUDIO_CACHE_DIR if set (tests, shared machines), else the platform's user cache folder."""
    env = os.environ.get("STUDIO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from studio.paths import cache_dir

    return cache_dir()


def open_spec(spec: str) -> AttributedDataset:
    from studio.data.spec import open_dataset

    return open_dataset(spec)


def dataset_to_open(model: ModelInfo, dataset_spec: str | None,
                    open_now: AttributedDataset | None) -> tuple[AttributedDataset | None, str]:
    """The dataset to open with a model just loaded (``dataset_spec``; with none open, the model's own) and a
    warning when the model's own cannot be opened."""
    if dataset_spec is not None:
        return open_spec(dataset_spec), ""
    if open_now is None and model.dataset_spec:
        try:
            return open_spec(model.dataset_spec), ""
        except DatasetError as e:
            return None, f"the dataset it was trained on cannot be opened ({e}); open one with the same attributes"
    return None, ""


def dataset_info_for(dataset: AttributedDataset) -> DatasetInfo:
    return DatasetInfo(dataset.spec, len(dataset), dataset.resolution, dataset.schema, dataset.fingerprint)


def model_name(path: Path) -> str:
    """What to call a checkpoint: its run for a run's checkpoint, its folder for a shipped model's generic
    ``model.safetensors`` (models/fonts-gzs), else the file's own name."""
    if path.parent.name == "checkpoints":
        return path.parent.parent.name
    if path.stem == "model" and path.parent.name:
        return path.parent.name
    return path.stem


def model_info_for(loaded: LoadedModel, fingerprint: str, device: str) -> ModelInfo:
    method = loaded.method
    path = loaded.path
    run = model_name(path)
    title = f"{method.title or method.name} · {run} · step {loaded.step}"
    return ModelInfo(path, method.name, title, list(method.slots), method.context.resolution, method.context.schema,
                     loaded.step, loaded.dataset_spec, loaded.dataset_fingerprint, bool(method.can_encode()),
                     fingerprint, "", device)


def compatibility(model: ModelInfo, dataset: AttributedDataset, dataset_fp: str) -> str:
    """'' when the dataset is the model's own; a warning when it differs but fits; StudioError when the
    attribute names differ (slots would stand for the wrong things)."""
    from studio.methods.registry import get_method

    needs_labels = get_method(model.method).needs_labels
    ours, theirs = model.schema.names, dataset.schema.names
    if needs_labels and sorted(ours) != sorted(theirs):
        raise StudioError(
            f"checkpoint {model.path} was trained on {model.dataset_spec or 'a dataset'} with attributes "
            f"({', '.join(ours)}); the dataset {dataset.spec} has ({', '.join(theirs)}). Open a dataset with the "
            f"same attributes{f', e.g. {model.dataset_spec}' if model.dataset_spec else ''}, or another model.")
    notes = []
    if model.dataset_fingerprint and dataset_fp and model.dataset_fingerprint != dataset_fp:
        notes.append(f"the model was trained on {model.dataset_spec} (fingerprint {model.dataset_fingerprint}); "
                     f"the open dataset is {dataset.spec} ({dataset_fp})")
    if needs_labels:
        differ = [n for n in ours if model.schema[n].values != dataset.schema[n].values]
        if differ:
            notes.append(f"the values of {', '.join(differ)} differ from the model's")
    if dataset.resolution != model.resolution:
        notes.append(f"items are resized from {dataset.resolution} to {model.resolution} px")
    return "; ".join(notes)
