"""Where the training data lies, as the model service sees it: per slot a sample of training latents (slider
paths stay on the data, dropped images far from it are noticed), the items the model draws back best (the
opening composition), how familiar an image file is, and the training items' typical reconstruction error.

Apart from ``model_service`` so that these views of the data, and their caches per (model, dataset), are in one
place; they are built from the service's own encode and decode steps (see ``ServiceParts``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.service.codec import load_image_file, load_pixels_at
from studio.service.data_manifold import Familiarity, SlotManifold
from studio.service.inference import CancelCheck
from studio.service.projection import sample_indices
from studio.service.state import Progress, ServiceParts, ServiceState


class DataSurvey:
    """The service's views of where its open dataset's training items lie, each computed once per model and
    dataset and kept."""

    def __init__(self, service: ServiceParts) -> None:
        self._service = service
        self._manifolds: dict[tuple[str, str, str], SlotManifold] = {}
        self._typical_errors: dict[tuple[str, str], float] = {}
        self._openings: dict[tuple[str, str], int] = {}

    def manifold(self, state: ServiceState, slot: str, progress: Progress = None,
                 cancel: CancelCheck = None) -> SlotManifold:
        """A sample of ``slot``'s training latents (stratified by its attribute), encoded once."""
        service = self._service
        _, info = state.need_model()
        dataset, dinfo = state.need_dataset()
        spec = info.slot(slot)
        key = (info.fingerprint, dinfo.fingerprint, slot)
        hit = self._manifolds.get(key)
        if hit is not None:
            return hit
        train = service._train_items(state)
        labels = None
        if spec.attribute is not None and spec.attribute in dataset.schema.names:
            labels = dataset.codes[train, dataset.schema.position(spec.attribute)]
        count = min(service.manifold_items, max(256, 8_000_000 // max(1, spec.size)))  # about 32 MB at most
        chosen = train[sample_indices(len(train), count, seed=1, labels=labels)]
        with service._busy(f"sampling the data of slot {slot}"):
            latents = service._encode_items(state, chosen, progress, cancel, keep=lambda d: {slot: d[slot]})[slot]
        fitted = SlotManifold.fit(slot, latents)
        self._manifolds[key] = fitted
        return fitted

    def opening_item(self, state: ServiceState) -> int | None:
        """The item chosen by ``choose_opening`` for the open model and dataset, or None."""
        if state.model is None or state.dataset_info is None:
            return None
        return self._openings.get((state.model.fingerprint, state.dataset_info.fingerprint))

    def choose_opening(self, state: ServiceState) -> None:
        """Pick the opening item for the open model and dataset: the one remembered from an earlier start, else
        the most legible of a small sample (remembered for the next start)."""
        service = self._service
        if state.model is None or state.dataset is None or not state.model.can_encode or len(state.dataset) == 0:
            return
        key = (state.model.fingerprint, state.dataset_info.fingerprint)
        if key in self._openings:
            return
        remembered = service.cache_dir / "latents" / key[0] / key[1] / "opening-v5.json"
        with contextlib.suppress(OSError, ValueError, TypeError):  # chosen at an earlier start: no work now
            item = int(json.loads(remembered.read_text())["item"])
            if 0 <= item < len(state.dataset):
                self._openings[key] = item
                return
        try:
            chosen = sample_indices(len(state.dataset), service.opening_sample, seed=3)
            self._openings[key] = service._worker.call(self.legible_now, state, chosen)[0]
        except StudioError:  # a model that cannot encode yet, a damaged item: the composer picks its own
            return
        from studio.training.checkpoint import atomic_write_json

        with contextlib.suppress(OSError):  # only saves the next start a moment
            atomic_write_json(remembered, {"item": self._openings[key]})

    def legible_items(self, state: ServiceState, count: int, sample: int) -> list[int]:
        """The ``count`` most legible of a seeded sample of ``sample`` items (see ``legible_now``)."""
        state.need_model()
        dataset, _ = state.need_dataset()
        chosen = sample_indices(len(dataset), int(sample), seed=3)
        return self._service._worker.call(self.legible_now, state, chosen)[: int(count)]

    def legible_now(self, state: ServiceState, chosen: np.ndarray) -> list[int]:
        """``chosen`` items, those the model draws back best first (on the worker)."""
        service = self._service
        _, info = state.need_model()
        dataset, _ = state.need_dataset()
        pixels = dataset.images(chosen)
        if pixels.shape[1] != info.resolution:
            pixels = np.stack([load_pixels_at(p, info.resolution) for p in pixels])
        encoded = state.need_cache().fetch(chosen, lambda missing: service._encode_dataset_now(state, missing))
        recon = service._decode_now(state, encoded).astype(np.float32) / 255.0
        target = pixels.astype(np.float32) / 255.0
        squared = ((recon - target) ** 2).mean(axis=-1).reshape(len(chosen), -1)
        errors = squared.mean(axis=1)
        # the worst 1% of pixels: a few stray dots or a blot hardly move the mean, yet catch the eye
        worst = np.sort(squared, axis=1)[:, -max(1, squared.shape[1] // 100):].mean(axis=1)
        contrast = target.reshape(len(chosen), -1).std(axis=1)
        # against the image's own variance: a thin letter with little ink is drawn back with a small error, yet
        # shows little; what counts is how much of the picture the model gets right
        unexplained = (errors + worst) / np.maximum(contrast ** 2, 1e-6)
        legible = contrast >= np.percentile(contrast, 25)
        order = np.lexsort((unexplained, ~legible))  # legible ones first, each group best drawn first
        return [int(chosen[k]) for k in order]

    def familiarity(self, state: ServiceState, path: str | Path) -> Familiarity:
        """How familiar the image file at ``path`` is to the model (see ``familiarity_now``)."""
        state.need_model()
        state.need_dataset()
        return self._service._worker.call(self.familiarity_now, state, str(path))

    def familiarity_now(self, state: ServiceState, path: str) -> Familiarity:
        """The image's reconstruction error and each slot's distance to the data (on the worker)."""
        service = self._service
        _, info = state.need_model()
        pixels = load_image_file(Path(path).expanduser(), info.resolution)
        latents = service._file_latents_now(state, path)
        recon = service._decode_now(state, {k: v[None] for k, v in latents.items()})[0]
        error = float(np.mean((recon.astype(np.float32) / 255.0 - pixels.astype(np.float32) / 255.0) ** 2))
        distances = {s.name: float(self.manifold(state, s.name).distance(latents[s.name])[0])
                     for s in info.slots}
        return Familiarity(distances, error, self.typical_reconstruction(state))

    def typical_reconstruction(self, state: ServiceState) -> float:
        """The 95th percentile of the reconstruction error (MSE, pixels in [0, 1]) over training items."""
        service = self._service
        _, info = state.need_model()
        dataset, dinfo = state.need_dataset()
        key = (info.fingerprint, dinfo.fingerprint)
        hit = self._typical_errors.get(key)
        if hit is not None:
            return hit
        train = service._train_items(state)
        chosen = train[sample_indices(len(train), 128, seed=2)]
        pixels = dataset.images(chosen)
        encoded = state.need_cache().fetch(chosen, lambda missing: service._encode_dataset_now(state, missing))
        recon = service._decode_now(state, encoded).astype(np.float32) / 255.0
        if recon.shape[1:3] != pixels.shape[1:3]:
            pixels = np.stack([load_pixels_at(p, info.resolution) for p in pixels])
        errors = ((recon - pixels.astype(np.float32) / 255.0) ** 2).reshape(len(recon), -1).mean(axis=1)
        typical = float(np.percentile(errors, 95))
        self._typical_errors[key] = typical
        return typical
