"""Many compositions at once: a batch composed in one decoder call, slider frames (interpolations, their
exports) and latent paths. A mixin of ``ModelService``, apart so that the service's entry reads on its own.

Batching matters on a CPU: one decoder call for eight glyphs or frames costs little more than one for a single
image, so a typed line or an exported strip waits on one worker job instead of one per image.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.errors import StudioError
from studio.service.composition import Composition
from studio.service.descriptions import ComposeResult
from studio.service.inference import CancelCheck, Cancelled, is_cancelled
from studio.service.resolve import check_items, composition_items
from studio.service.state import Progress, ServiceState

if TYPE_CHECKING:
    from studio.service.inference import InferenceWorker


class FrameCalls:
    """Batched composing for ``ModelService`` (which provides the state, the worker and latent resolution)."""

    frames_per_job = 4  # interpolation frames per worker job (exports can be cancelled between them)
    #: the most compositions one batched compose decodes in one worker job (a long typed line takes several)
    batch_per_job = 32

    if TYPE_CHECKING:
        _state: ServiceState
        _worker: InferenceWorker

        def _latents_for(self, state: ServiceState, composition: Composition) -> dict[str, np.ndarray]: ...
        def _decode_now(self, state: ServiceState, latents: dict[str, np.ndarray]) -> np.ndarray: ...
        def _encode_dataset_now(self, state: ServiceState, indices: np.ndarray) -> dict[str, np.ndarray]: ...
        def _task(self, fn: Any, channel: str | None) -> Future: ...
        def project_latent(self, slot: str, latent: np.ndarray) -> np.ndarray: ...

    # --- a batch of compositions -------------------------------------------------------------------
    def compose_batch(self, compositions: Sequence[Composition]) -> list[ComposeResult]:
        """Blocking: every composition's image and latents, ``batch_per_job`` at a time: the items they read
        that are not encoded yet in one encoder call, then one decoder call (the same pixels as composing them
        one by one, up to float rounding)."""
        comps = list(compositions)
        state = self._state
        state.need_model()
        out: list[ComposeResult] = []
        for start in range(0, len(comps), self.batch_per_job):
            out += self._worker.call(self._compose_batch_now, state, comps[start:start + self.batch_per_job])
        return out

    def compose_batch_async(self, compositions: Sequence[Composition]) -> Future[list[ComposeResult]]:
        comps = list(compositions)
        return self._task(lambda _cancel: self.compose_batch(comps), None)

    def _compose_batch_now(self, state: ServiceState, comps: list[Composition]) -> list[ComposeResult]:
        if not comps:
            return []
        start = time.perf_counter()
        items = set().union(*(composition_items(state, c) for c in comps))
        if len(items) > 1 and state.dataset is not None:  # every item the cache misses, in one encoder call
            order = np.array(sorted(items), dtype=np.int64)
            check_items(order, len(state.dataset))
            state.need_cache().fetch(order, lambda missing: self._encode_dataset_now(state, missing))
        per_item = [self._latents_for(state, c) for c in comps]
        images = self._decode_now(state, {k: np.stack([f[k] for f in per_item]) for k in per_item[0]})
        seconds = (time.perf_counter() - start) / len(comps)
        return [ComposeResult(image, latents, 0, seconds) for image, latents in zip(images, per_item, strict=True)]

    # --- slider frames ------------------------------------------------------------------------------
    def interpolate(self, composition: Composition, slot: str | None, frames: int, progress: Progress = None,
                    cancel: CancelCheck = None) -> list[np.ndarray]:
        """Frames from t=0 to t=1: along one slot's A->B, or (``slot`` None) every unlocked slot with a second
        source together, as the global slider moves them. Decoded ``frames_per_job`` at a time, checking
        ``cancel`` and reporting ``progress`` between them."""
        if frames < 1:
            raise StudioError(f"frames must be at least 1, got {frames}")
        state = self._state
        _, info = state.need_model()
        if slot is not None:
            info.slot(slot)
            if composition.slot(slot).b is None:
                raise StudioError(f"slot {slot} has no second source to interpolate toward; give it one first")
        elif not any(v.b is not None and not v.locked for k, v in composition.slots.items() if k in info.slot_names):
            raise StudioError("no unlocked slot has a second source, so there is nothing to interpolate")
        ts = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
        comps = [composition.with_global_t(float(t)) if slot is None
                 else composition.with_slot(slot, composition.slot(slot).with_t(float(t))) for t in ts]
        out: list[np.ndarray] = []
        for start in range(0, len(comps), self.frames_per_job):
            if is_cancelled(cancel):
                raise Cancelled("cancelled")
            batch = self._worker.call(self._compose_batch_now, state, comps[start:start + self.frames_per_job])
            out += [r.image for r in batch]
            if progress is not None:
                progress(len(out) / len(comps))
        return out

    def interpolate_async(self, composition: Composition, slot: str | None, frames: int,
                          progress: Progress = None, channel: str | None = None) -> Future[list[np.ndarray]]:
        return self._task(lambda cancel: self.interpolate(composition, slot, frames, progress, cancel), channel)

    def export_interpolation_async(self, composition: Composition, path: str | Path, kind: str, frames: int,
                                   scale: int = 1, frame_ms: int = 80, progress: Progress = None) -> Future[Path]:
        """Compose the A->B frames of every unlocked slot with a second source and write them as a ``strip``
        (one row) or a looping ``gif``; the future holds the written path. Cancelling stops between frames."""
        from studio.service import exports

        if kind not in exports.KINDS:
            raise StudioError(f"unknown export {kind!r}; choose one of {', '.join(exports.KINDS)}")

        def work(cancel: threading.Event) -> Path:
            images = self.interpolate(composition, None, frames, progress, cancel)
            if kind == "strip":
                return exports.write_strip(path, images, scale)
            return exports.write_gif(path, images, scale, frame_ms)

        return self._task(work, None)

    # --- latent paths -------------------------------------------------------------------------------
    def slot_path(self, composition: Composition, slot: str, steps: int = 9) -> np.ndarray:
        """Where ``slot`` goes from its source A (t=0) to B (t=1), as ``(steps, 2)`` points in the slot's fitted
        projection: latents only, nothing is decoded."""
        if steps < 2:
            raise StudioError(f"a path needs at least 2 steps, got {steps}")
        state = self._state
        state.need_model()[1].slot(slot)
        value = composition.slot(slot)
        comps = [composition.with_slot(slot, value.with_t(float(t))) for t in np.linspace(0.0, 1.0, steps)]
        latents = self._worker.call(lambda: np.stack([self._latents_for(state, c)[slot] for c in comps]))
        return self.project_latent(slot, latents)

    def slot_path_async(self, composition: Composition, slot: str, steps: int = 9,
                        channel: str | None = None) -> Future[np.ndarray]:
        return self._task(lambda _cancel: self.slot_path(composition, slot, steps), channel)
