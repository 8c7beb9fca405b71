"""The model service: one loaded checkpoint and one open dataset, turned into pixels for the UI, the CLI and tests.

Plain Python, no Qt. Every torch call runs on the single inference worker thread the service owns; results are
numpy only (uint8 images, float32 latents). Long work (projections, direction fits, encoding many items) is cut
into short worker jobs, so a slider's compose waits behind at most one of them. Events are psygnal signals fired
from worker threads; Qt code hops to the GUI thread before touching widgets.

``ModelService`` is the entry; its parts live beside it: what is open (``state``), torch encode and decode
(``codec``), compositions into latents (``resolve``), batches and slider frames (``frames``), futures
(``calls``), where the data lies (``data_survey``), directions and projections (``slot_fits``), the training
forms (``training_door``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.data.dataset import AttributedDataset
from studio.data.splits import ZeroShotSplit
from studio.errors import CheckpointError, StudioError
from studio.service import training_door
from studio.service.calls import BusySpans, cancellable, in_thread, message
from studio.service.codec import FileLatents, decode_latents, encode_pixels, load_image_file
from studio.service.codec import load_pixels_at as load_pixels_at  # importable from here, as before the split
from studio.service.composition import Composition, DirectionStep, LatentSource, SlotValue
from studio.service.data_manifold import Familiarity, SlotManifold
from studio.service.data_survey import DataSurvey
from studio.service.descriptions import (
    CheckpointDescription,
    ComposeResult,
    ConfigField,
    DatasetInfo,
    MethodDescription,
    ModelInfo,
)
from studio.service.directions import SlotDirections
from studio.service.encode_pacing import EncodePacer
from studio.service.frames import FrameCalls
from studio.service.inference import CancelCheck, Cancelled, Coalescer, InferenceWorker, TaskThreads, is_cancelled
from studio.service.items import DatasetItems
from studio.service.jobs import TrainingJob
from studio.service.latent_cache import checkpoint_fingerprint
from studio.service.projection import Projection
from studio.service.query import QueryResult, cover_query
from studio.service.resolve import latents_for
from studio.service.slot_fits import SlotFits
from studio.service.state import (
    Keep,
    Progress,
    ServiceEvents,
    ServiceState,
    compatibility,
    dataset_info_for,
    dataset_to_open,
    default_cache_dir,
    model_info_for,
    open_spec,
)

if TYPE_CHECKING:
    from studio.training.model_io import LoadedModel
    from studio.training.trainer import TrainSettings


class ModelService(FrameCalls):
    """Loads a checkpoint and a dataset, encodes (cached), composes, interpolates, projects, fits directions and
    runs training jobs. Thread-safe: call it from any thread; torch work is serialised on the inference worker."""

    encode_batch = 256  # items per encoder call
    job_items = 512  # the most items per worker job in long loops
    #: seconds one worker job of a long encode aims at (fewer items when encoding is slow: the most a slider's
    #: compose can wait behind one); None: always ``job_items``
    job_seconds: float | None = 0.05
    direction_items = 4000  # items per attribute-direction fit
    manifold_items = 2000  # training items whose latents tell where a slot's data lies
    opening_sample = 96  # items tried for the opening composition (encoded and drawn back while a model opens)
    preview_points = 1000  # items of a first, quick projection shown while the rest encode
    #: Interpolations (slot and global sliders, strips, GIFs) stay on the data (see data_manifold); False: the
    #: plain straight line A->B.
    follow_data = True
    file_cache_items = 64

    def __init__(self, device: str = "auto", cache_dir: Path | None = None) -> None:
        from studio.training.model_io import pick_device

        self._torch_device = pick_device(device)
        self.device = str(self._torch_device)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.events = ServiceEvents()
        self._worker = InferenceWorker()
        self._coalescer = Coalescer(self._worker)
        self._tasks = TaskThreads(2)
        self._latest_tasks = Coalescer(self._tasks)
        self._lock = threading.RLock()
        self._state = ServiceState()
        self._items_view: DatasetItems | None = None
        self._pacer = EncodePacer()  # sizes long encodes' worker jobs by time
        self._survey = DataSurvey(self)  # manifolds, the opening item, the typical reconstruction error
        self._fits = SlotFits(self)  # directions and projections (with their PCAs)
        self._splits: dict[tuple[str, float, int], np.ndarray] = {}
        self._file_latents = FileLatents()
        self._jobs: list[TrainingJob] = []
        self._busy_spans = BusySpans(lambda text: self.events.busy.emit(text), self._lock)
        # Counters for tests and benchmarks (touched on the worker only).
        self.encoder_calls = 0
        self.encoded_items = 0
        self.decoder_calls = 0

    # --- what is open -----------------------------------------------------------------------------
    @property
    def model(self) -> ModelInfo | None:
        return self._state.model

    @property
    def dataset(self) -> AttributedDataset | None:
        return self._state.dataset

    @property
    def dataset_info(self) -> DatasetInfo | None:
        return self._state.dataset_info

    @property
    def items(self) -> DatasetItems | None:
        """The open dataset's items as numpy and plain data (what the GUI reads), or None."""
        dataset = self._state.dataset
        if dataset is None:
            return None
        view = self._items_view
        if view is None or not view.views(dataset):
            view = self._items_view = DatasetItems(dataset)
        return view

    @property
    def jobs(self) -> list[TrainingJob]:
        return list(self._jobs)

    def load_checkpoint(self, path: str | Path, dataset_spec: str | None = None) -> ModelInfo:
        """Load a checkpoint (file, sidecar or run folder). ``dataset_spec`` opens that dataset with it (switching both
        at once, e.g. from Fonts to Shapes); with no dataset open, the model's own dataset is opened too; an open
        dataset with other attribute names is an error that names both."""
        from studio.training.checkpoint import resolve_checkpoint
        from studio.training.model_io import load_model

        resolved = resolve_checkpoint(path)
        with self._busy(f"loading {resolved.name}"):
            fp = checkpoint_fingerprint(resolved)
            loaded = self._worker.call(load_model, resolved, self._torch_device)
            loaded.tensors = {}  # optimiser state and a second copy of the weights: only resuming needs them
            info = model_info_for(loaded, fp, self.device)
            with self._lock:
                dataset = self._state.dataset
            opened, warning = dataset_to_open(info, dataset_spec, dataset)
            with self._lock:
                dataset = opened or self._state.dataset
                dataset_info = dataset_info_for(opened) if opened is not None else self._state.dataset_info
                if dataset is not None:
                    warning = compatibility(info, dataset, dataset_info.fingerprint if dataset_info else "")
                info = replace(info, dataset_warning=warning)
                self._set_state(loaded, info, dataset, dataset_info)
            self._survey.choose_opening(self._state)
        self.events.model_changed.emit(info)
        if opened is not None:
            self.events.dataset_changed.emit(self._state.dataset_info)
        return info

    def open_dataset(self, spec: str) -> DatasetInfo:
        """Open a dataset by spec; with a model loaded, its attribute names must match the model's."""
        with self._busy(f"opening {spec}"):
            dataset = open_spec(spec)
            info = dataset_info_for(dataset)
            with self._lock:
                model = self._state.model
                if model is not None:
                    model = replace(model, dataset_warning=compatibility(model, dataset, info.fingerprint))
                self._set_state(self._state.loaded, model, dataset, info)
            self._survey.choose_opening(self._state)
        self.events.dataset_changed.emit(info)
        return info

    def load_checkpoint_async(self, path: str | Path, dataset_spec: str | None = None) -> Future[ModelInfo]:
        return in_thread(self.load_checkpoint, path, dataset_spec)

    def open_dataset_async(self, spec: str) -> Future[DatasetInfo]:
        return in_thread(self.open_dataset, spec)

    def _set_state(self, loaded: LoadedModel | None, model: ModelInfo | None, dataset: AttributedDataset | None,
                   dataset_info: DatasetInfo | None) -> None:
        self._state = self._state.with_open(loaded, model, dataset, dataset_info, self.cache_dir)
        self._pacer.reset()

    def _train_items(self, state: ServiceState) -> np.ndarray:
        """The training split the model saw (rebuilt from its checkpoint's split settings on the open dataset);
        computed on first use, since splitting a 1.4 M item table takes a moment."""
        dataset, dinfo = state.need_dataset()
        split = state.loaded.split if state.loaded is not None else {}
        key = (dinfo.fingerprint, float(split.get("test_fraction", 0.25)), int(split.get("seed", 0)))
        hit = self._splits.get(key)
        if hit is None:
            hit = ZeroShotSplit.make(dataset.codes, key[1], key[2]).train
            self._splits[key] = hit
        return hit

    # --- encoding ---------------------------------------------------------------------------------
    def encode_items(self, indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Latents of dataset items, ``(n, size)`` float32 per slot; memory and disk cached."""
        state = self._state
        state.need_cache()
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return self._encode_items(state, indices)

    def encode_image(self, path: str | Path) -> dict[str, np.ndarray]:
        """An image file from disk -> ``(size,)`` float32 per slot. The picture is made RGB, centre-cropped to a
        square and resized to the model's resolution; errors name the file."""
        state = self._state
        state.need_model()
        return self._worker.call(self._file_latents_now, state, str(path))

    def encode_pixels(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 ``(n, H, W, 3)`` images (any square size) -> ``(n, size)`` float32 per slot; not cached."""
        state = self._state
        state.need_model()
        return self._worker.call(self._encode_pixels_now, state, np.asarray(images))

    def _encode_items(self, state: ServiceState, indices: np.ndarray, progress: Progress = None,
                      cancel: CancelCheck = None, keep: Keep | None = None) -> dict[str, np.ndarray]:
        """Encode as background worker jobs (``call_when_idle``: they give way to composes) of at most
        ``job_items`` items, fewer where encoding would take longer than ``job_seconds``, checking ``cancel``
        between them. ``keep`` trims each chunk (one slot, pooled) so that large spatial latents never pile up."""
        cache = state.need_cache()
        parts: list[dict[str, np.ndarray]] = []
        encode = self._pacer.timed(lambda missing: self._encode_dataset_now(state, missing))
        start = 0
        while start < len(indices):
            if is_cancelled(cancel):
                raise Cancelled("cancelled")
            chunk = indices[start:start + self._pacer.job_size(self.job_items, self.job_seconds)]
            got = self._worker.call_when_idle(cache.fetch, chunk, encode, cancel=cancel)
            parts.append(keep(got) if keep is not None else got)
            start += len(chunk)
            if progress is not None:
                progress(min(1.0, start / max(1, len(indices))))
        if not parts:
            empty = {s.name: np.zeros((0, s.size), np.float32) for s in state.need_model()[1].slots}
            return keep(empty) if keep is not None else empty
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _encode_dataset_now(self, state: ServiceState, indices: np.ndarray) -> dict[str, np.ndarray]:
        dataset, _ = state.need_dataset()
        return self._encode_pixels_now(state, dataset.images(indices))

    def _encode_pixels_now(self, state: ServiceState, images: np.ndarray) -> dict[str, np.ndarray]:
        return encode_pixels(state, images, self._torch_device, self.encode_batch, self)

    def _decode_now(self, state: ServiceState, latents: dict[str, np.ndarray]) -> np.ndarray:
        return decode_latents(state, latents, self._torch_device, self.encode_batch, self)

    def _file_latents_now(self, state: ServiceState, path: str) -> dict[str, np.ndarray]:
        return self._file_latents.get(state, path, lambda images: self._encode_pixels_now(state, images),
                                      self.file_cache_items)

    # --- composing --------------------------------------------------------------------------------
    def compose(self, composition: Composition) -> ComposeResult:
        """Blocking compose; runs on the inference worker."""
        return self.compose_async(composition).result()

    def compose_async(self, composition: Composition) -> Future[ComposeResult]:
        state = self._state
        request_id = self._coalescer.next_id()
        return self._worker.submit(self._compose_now, state, composition, request_id)

    async def acompose(self, composition: Composition) -> ComposeResult:
        """Awaitable compose for asyncio code (notebooks, scripts); the torch work stays on the worker thread."""
        return await asyncio.wrap_future(self.compose_async(composition))

    def request_compose(self, composition: Composition, callback: Callable[[ComposeResult], None],
                        channel: str = "composer",
                        on_error: Callable[[BaseException], None] | None = None) -> int:
        """Latest wins per channel: a newer request replaces the queued one, and a result whose request was
        superseded is dropped. ``callback`` (and ``on_error``, else ``events.error``) run on the worker thread."""

        def work(request_id: int) -> ComposeResult:
            return self._compose_now(self._state, composition, request_id)

        def fail(e: BaseException) -> None:
            if on_error is not None:
                on_error(e)
            else:
                self.events.error.emit(message(e))

        return self._coalescer.request(channel, work, callback, fail)

    def compose_latest(self, composition: Composition, channel: str = "composer") -> Future[ComposeResult]:
        """Latest wins per channel, as a future: while one compose of the channel runs, a newer request replaces
        the queued one, whose future is cancelled (so is a result older than one already delivered)."""
        return self._coalescer.submit(channel, lambda rid, _cancel: self._compose_now(self._state, composition, rid))

    def coalescing_stats(self, channel: str = "composer") -> dict[str, int]:
        return self._coalescer.stats(channel)

    # --- long calls as futures ----------------------------------------------------------------------
    def _task(self, fn: Callable[[threading.Event], Any], channel: str | None) -> Future:
        """Run ``fn(cancel)`` on the task threads. With a ``channel``, a newer call of the channel interrupts it
        and cancels its future; cancelling the future sets ``cancel`` (long work stops between worker jobs)."""
        if channel is not None:
            return self._latest_tasks.submit(channel, lambda _rid, cancel: fn(cancel), interrupt=True)
        return cancellable(self._tasks, fn)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)``, a function that calls this service (several steps, say), on the service's
        task threads; its outcome is the future's."""
        return self._task(lambda _cancel: fn(*args, **kwargs), None)

    def project_async(self, slot: str, max_points: int = 20000, progress: Progress = None,
                      channel: str | None = None,
                      preview: Callable[[Projection], None] | None = None) -> Future[Projection]:
        return self._task(lambda cancel: self.project(slot, max_points, progress, cancel, preview), channel)

    def directions_async(self, slot: str, attribute: str | None = None,
                         channel: str | None = None) -> Future[SlotDirections]:
        return self._task(lambda cancel: self.directions(slot, attribute, None, cancel), channel)

    def query_async(self, values: dict[str, str], channel: str | None = None) -> Future[QueryResult]:
        return self._task(lambda _cancel: self.query(dict(values)), channel)

    def encode_image_async(self, path: str | Path) -> Future[dict[str, np.ndarray]]:
        return self._task(lambda _cancel: self.encode_image(path), None)

    def _compose_now(self, state: ServiceState, composition: Composition, request_id: int) -> ComposeResult:
        start = time.perf_counter()
        latents = self._latents_for(state, composition)
        image = self._decode_now(state, {k: v[None] for k, v in latents.items()})[0]
        return ComposeResult(image, latents, request_id, time.perf_counter() - start)

    def _latents_for(self, state: ServiceState, composition: Composition) -> dict[str, np.ndarray]:
        """Resolve every slot: source a (else the base, else item 0), the lerp toward b, then direction steps."""
        return latents_for(state, composition,
                           encode_dataset=lambda missing: self._encode_dataset_now(state, missing),
                           file_latents=lambda path: self._file_latents_now(state, path),
                           manifold=lambda slot: self._survey.manifold(state, slot),
                           directions=lambda slot, attribute: self._directions_now(state, slot, attribute),
                           follow_data=self.follow_data)

    # --- where the data lies -----------------------------------------------------------------------
    def manifold(self, slot: str, progress: Progress = None, cancel: CancelCheck = None) -> SlotManifold:
        """A sample of ``slot``'s training latents (stratified by its attribute) for on-data interpolation and
        far-from-data warnings; encoded once per model and dataset (call it off the GUI thread to prepare)."""
        return self._survey.manifold(self._state, slot, progress, cancel)

    @property
    def opening_item(self) -> int | None:
        """The item a fresh composition starts from: the one of a small sample the model draws back best (see
        ``legible_items``), chosen while a model and its dataset open; None before, or when it could not be."""
        return self._survey.opening_item(self._state)

    def legible_items(self, count: int = 8, sample: int = 96) -> list[int]:
        """Items the model draws back best (the least of their own variance left unexplained by the reconstruction)
        among the more contrasted three quarters of a seeded sample: an opening that shows what the model can do."""
        return self._survey.legible_items(self._state, count, sample)

    def image_familiarity(self, path: str | Path) -> Familiarity:
        """How well the model can represent an image file: its reconstruction error against the training items'
        typical one, and each slot's latent distance to the nearest training latent in typical spacings."""
        return self._survey.familiarity(self._state, path)

    # --- directions ---------------------------------------------------------------------------------
    def directions(self, slot: str, attribute: str | None = None, progress: Progress = None,
                   cancel: CancelCheck = None) -> SlotDirections:
        """Per value of ``attribute`` (default: the slot's own): the unit normal of a one-vs-rest linear SVM in the
        slot's space (UDV) and a k-means centre, fitted on encoded training items; fitted once and reused."""
        return self._fits.directions(self._state, slot, attribute, progress, cancel)

    def _directions_now(self, state: ServiceState, slot: str, attribute: str | None) -> SlotDirections:
        return self._fits.directions(state, slot, attribute or None, None, None)

    def toward_value(self, composition: Composition, slot: str, value: str, amount: float,
                     attribute: str | None = None, combine: tuple[tuple[str, float], ...] = ()) -> Composition:
        """A composition whose ``slot`` moves ``amount`` further along the direction of ``value`` (steps on the
        same value and combination add up)."""
        spec = self._state.need_model()[1].slot(slot)
        attribute = attribute or spec.attribute
        if attribute is None:
            raise StudioError(f"slot {slot} stands for no attribute; say which attribute's value to move toward")
        current = composition.slot(slot)
        steps = list(current.steps)
        for k, s in enumerate(steps):
            if (s.attribute, s.value, s.combine) == (attribute, value, tuple(combine)):
                steps[k] = replace(s, amount=s.amount + float(amount))
                break
        else:
            steps.append(DirectionStep(attribute, value, float(amount), tuple(combine)))
        return composition.with_slot(slot, replace(current, steps=tuple(steps)))

    def jump_to_centre(self, composition: Composition, slot: str, value: str,
                       attribute: str | None = None) -> Composition:
        """A composition whose ``slot`` is the centre of ``value``'s cluster (a stored latent), steps cleared."""
        centre = self.directions(slot, attribute).centre(value)
        spec = self._state.need_model()[1].slot(slot)
        source = LatentSource(tuple(float(v) for v in centre), tuple(spec.shape))
        return composition.with_slot(slot, SlotValue(a=source, locked=composition.slot(slot).locked))

    # --- projections ------------------------------------------------------------------------------
    def project(self, slot: str, max_points: int = 20000, progress: Progress = None,
                cancel: CancelCheck = None, preview: Callable[[Projection], None] | None = None) -> Projection:
        """2-D PCA of a slot's latents over up to ``max_points`` items (seeded, stratified by the slot's
        attribute). The PCA is fitted once per (model, dataset, slot), kept on disk too, and reused.

        ``preview`` is called first with a projection of a stratified ``preview_points`` of those items when the
        whole set is larger: on a first start encoding thousands of items takes half a minute on a CPU, and a plot
        that fills in beats an empty one. The preview's PCA is the one kept, so its points do not move after."""
        return self._fits.project(self._state, slot, max_points, progress, cancel, preview)

    def project_latent(self, slot: str, latent: np.ndarray) -> np.ndarray:
        """``(k, size)`` (or one ``(size,)``) latents -> ``(k, 2)`` with the slot's fitted PCA."""
        return self._fits.project_latent(self._state, slot, latent)

    # --- queries ----------------------------------------------------------------------------------
    def slot_for_attribute(self, attribute: str) -> str | None:
        model = self._state.model
        if model is None:
            return None
        for s in model.slots:
            if s.attribute == attribute:
                return s.name
        return attribute if attribute in model.slot_names else None

    def query(self, values: dict[str, str]) -> QueryResult:
        """Cover query over the training split: each wanted value's slot gets a training item that shows it."""
        state = self._state
        state.need_model()
        dataset, _ = state.need_dataset()
        return cover_query(dataset, self._train_items(state), values, self.slot_for_attribute)

    # --- training ---------------------------------------------------------------------------------
    @staticmethod
    def methods() -> list[MethodDescription]:
        """Every method one can train, in the registry's order, as plain data for forms."""
        return training_door.methods()

    @staticmethod
    def run_setting_fields() -> tuple[ConfigField, ...]:
        """The run settings a form shows (name, type, default, help, bounds, choices, form hints), as plain data."""
        return training_door.run_setting_fields()

    @staticmethod
    def describe_checkpoint(path: str | Path) -> CheckpointDescription:
        """What a checkpoint (file, sidecar or run folder) was made from: method, options, dataset, step."""
        return training_door.describe_checkpoint(path)

    @staticmethod
    def train_settings(**values: Any) -> TrainSettings:
        """Run settings from plain values (the Training tab's form); unknown names are a StudioError."""
        return training_door.train_settings(**values)

    @staticmethod
    def warm_up_training() -> threading.Thread:
        """Import what the first training job would import lazily (torch.optim pulls in torch._dynamo, seconds of
        module loading that hold the GIL in long stretches) on a thread, while the app starts, not when the user
        presses Start."""
        return training_door.warm_up_training()

    def start_training(self, settings: TrainSettings) -> TrainingJob:
        job = TrainingJob(settings)
        self._jobs.append(job)
        return job.start()

    # --- lifetime ---------------------------------------------------------------------------------
    def shutdown(self, wait: bool = True, stop_jobs: bool = True) -> None:
        """Stop the worker; running training jobs are stopped (saving a checkpoint) unless ``stop_jobs`` is
        False, which leaves them running."""
        if stop_jobs:
            for job in self._jobs:
                if job.running:
                    job.stop()
            if wait:
                for job in self._jobs:
                    job.wait()
        self._worker.shutdown(wait=wait)
        # then the task threads: their torch work was on the worker, so what is left of them fails fast; waiting
        # means none still writes into the cache (a smoke test removes its scratch cache right after)
        self._tasks.shutdown(wait=wait)

    def _busy(self, text: str) -> AbstractContextManager[None]:
        """While it is open, ``events.busy`` says ``text``; '' when the last open one ends."""
        return self._busy_spans.span(text)


__all__ = ["CheckpointError", "ComposeResult", "DatasetInfo", "ModelInfo", "ModelService", "Projection",
           "QueryResult", "ServiceEvents", "SlotDirections", "load_image_file"]
