"""What the model service fits to a slot's encoded items: an attribute's directions (for steps toward a value)
and the 2-D PCA of the latent plot, each fitted once per (model, dataset, slot) and kept.

Apart from ``model_service`` so that choosing the items, encoding them in short worker jobs and fitting read in
one place; the encoding is the service's own (see ``ServiceParts``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from studio.errors import StudioError
from studio.service.directions import SlotDirections, fit_directions
from studio.service.inference import CancelCheck
from studio.service.projection import PcaStore, Projection, described_projection, pool_features, sample_indices
from studio.service.state import Progress, ServiceParts, ServiceState


class SlotFits:
    """Directions and projections of the open model's slots over the open dataset, with the PCAs behind them."""

    def __init__(self, service: ServiceParts) -> None:
        self._service = service
        self._pca = PcaStore()
        self._projections: dict[tuple[str, str, str, int], Projection] = {}
        self._directions: dict[tuple[str, str, str, str], SlotDirections] = {}

    def directions(self, state: ServiceState, slot: str, attribute: str | None, progress: Progress,
                   cancel: CancelCheck) -> SlotDirections:
        """``attribute``'s (default: the slot's own) directions in ``slot``, fitted on encoded training items."""
        service = self._service
        _, info = state.need_model()
        dataset, dinfo = state.need_dataset()
        spec = info.slot(slot)
        attribute = attribute or spec.attribute
        if attribute is None:
            raise StudioError(f"slot {slot} stands for no attribute; name one of: {', '.join(dataset.schema.names)}")
        try:
            position = dataset.schema.position(attribute)
        except KeyError as e:
            raise StudioError(str(e.args[0])) from None
        key = (info.fingerprint, dinfo.fingerprint, slot, attribute)
        hit = self._directions.get(key)
        if hit is not None:
            return hit
        with service._busy(f"fitting {attribute} directions in slot {slot}"):
            train = service._train_items(state)
            labels = dataset.codes[train, position]
            chosen = train[sample_indices(len(train), service.direction_items, seed=0, labels=labels)]
            latents = service._encode_items(state, chosen, progress, cancel, keep=lambda d: {slot: d[slot]})[slot]
            fitted = fit_directions(latents, dataset.codes[chosen, position], dataset.schema[attribute].values,
                                    slot=slot, attribute=attribute)
        self._directions[key] = fitted
        return fitted

    def project(self, state: ServiceState, slot: str, max_points: int, progress: Progress, cancel: CancelCheck,
                preview: Callable[[Projection], None] | None) -> Projection:
        """2-D PCA of ``slot`` over up to ``max_points`` items, ``preview`` first (see ``ModelService.project``)."""
        service = self._service
        _, info = state.need_model()
        dataset, dinfo = state.need_dataset()
        spec = info.slot(slot)
        key = (info.fingerprint, dinfo.fingerprint, slot, int(max_points))
        hit = self._projections.get(key)
        if hit is not None:
            if progress is not None:
                progress(1.0)
            return hit
        labels = None
        if spec.attribute is not None and spec.attribute in dataset.schema.names:
            labels = dataset.codes[:, dataset.schema.position(spec.attribute)]
        indices = sample_indices(len(dataset), int(max_points), seed=0, labels=labels)
        first = np.arange(len(indices))
        if preview is not None and len(indices) > service.preview_points:
            first = sample_indices(len(indices), service.preview_points, seed=0,
                                   labels=None if labels is None else labels[indices])
        rest = np.setdiff1d(np.arange(len(indices)), first)
        share_first = len(first) / max(1, len(indices))

        def encode(positions: np.ndarray, start: float, share: float) -> np.ndarray:
            scaled = None if progress is None else (lambda f: progress(start + share * float(f)))
            return service._encode_items(state, indices[positions], scaled, cancel,
                                         keep=lambda d: {slot: pool_features(d[slot], spec.shape)[0]})[slot]

        pooled = spec.spatial
        with service._busy(f"projecting slot {slot}"):
            features = encode(first, 0.0, share_first)
            fit = self._pca.fit(service.cache_dir, info.fingerprint, dinfo.fingerprint, slot, features)
            if len(rest):
                preview(described_projection(indices[first], fit.transform(features), fit, pooled, len(dataset),
                                             slot))
                features = np.concatenate([features, encode(rest, share_first, 1.0 - share_first)])
                order = np.argsort(np.concatenate([first, rest]), kind="stable")  # back to the sorted items
                features = features[order]
            xy = fit.transform(features)
        projection = described_projection(indices, xy, fit, pooled, len(dataset), slot)
        self._projections[key] = projection
        return projection

    def project_latent(self, state: ServiceState, slot: str, latent: np.ndarray) -> np.ndarray:
        """``(k, size)`` (or one ``(size,)``) latents -> ``(k, 2)`` with the slot's fitted PCA."""
        _, info = state.need_model()
        _, dinfo = state.need_dataset()
        spec = info.slot(slot)
        fit = self._pca.get(self._service.cache_dir, info.fingerprint, dinfo.fingerprint, slot)
        if fit is None:
            raise StudioError(f"slot {slot} has no projection yet; call project({slot!r}) first")
        latent = np.asarray(latent, np.float32)
        if latent.shape[-1] != spec.size:
            raise StudioError(f"slot {slot} holds {spec.size} values, got latents of shape {latent.shape}")
        features, _ = pool_features(latent.reshape(-1, spec.size), spec.shape)
        return fit.transform(features)
