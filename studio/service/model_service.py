"""The model service: one loaded checkpoint and one open dataset, turned into pixels for the UI, the CLI and tests.

Plain Python, no Qt. Every torch call runs on the single inference worker thread the service owns; results are
numpy only (uint8 images, float32 latents). Long work (projections, direction fits, encoding many items) is cut
into short worker jobs, so a slider's compose waits behind at most one of them. Events are psygnal signals fired
from worker threads; Qt code hops to the GUI thread before touching widgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from psygnal import Signal, SignalGroup

from studio.data.dataset import AttributedDataset
from studio.data.image_files import load_square_rgb
from studio.data.splits import ZeroShotSplit
from studio.errors import CheckpointError, DatasetError, StudioError
from studio.service.composition import (
    Composition,
    DirectionStep,
    FileSource,
    ItemSource,
    LatentSource,
    MixtureSource,
    SlotValue,
    Source,
)
from studio.service.data_manifold import Familiarity, SlotManifold
from studio.service.descriptions import (
    CheckpointDescription,
    ComposeResult,
    DatasetInfo,
    MethodDescription,
    ModelInfo,
    RecipeDescription,
    checkpoint_description,
    describe_config,
)
from studio.service.directions import SlotDirections, fit_directions
from studio.service.inference import (
    CancelCheck,
    Cancelled,
    Coalescer,
    InferenceWorker,
    TaskThreads,
    cancel_future,
    is_cancelled,
)
from studio.service.items import DatasetItems
from studio.service.jobs import TrainingJob
from studio.service.latent_cache import LatentCache, checkpoint_fingerprint
from studio.service.projection import PcaFit, Projection, pool_features, sample_indices
from studio.service.query import QueryResult, cover_query
from studio.slots import SlotSpec

if TYPE_CHECKING:
    from studio.training.model_io import LoadedModel
    from studio.training.trainer import TrainSettings

Progress = Callable[[float], None] | None


# --- what the service hands out ---------------------------------------------------------------------
class ServiceEvents(SignalGroup):
    model_changed = Signal(object)  # ModelInfo | None
    dataset_changed = Signal(object)  # DatasetInfo | None
    busy = Signal(str)  # what runs now; '' when idle
    error = Signal(str)  # failures of work nobody waits on (coalesced composes)


@dataclass(frozen=True, eq=False)
class _State:
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


def default_cache_dir() -> Path:
    """$STUDIO_CACHE_DIR if set (tests, shared machines), else the platform's user cache folder."""
    env = os.environ.get("STUDIO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from studio.paths import cache_dir

    return cache_dir()


class ModelService:
    """Loads a checkpoint and a dataset, encodes (cached), composes, interpolates, projects, fits directions and
    runs training jobs. Thread-safe: call it from any thread; torch work is serialised on the inference worker."""

    encode_batch = 256  # items per encoder call
    job_items = 512  # items per worker job in long loops (the most a slider's compose waits behind)
    direction_items = 4000  # items per attribute-direction fit
    manifold_items = 2000  # training items whose latents tell where a slot's data lies
    opening_sample = 96  # items tried for the opening composition (encoded and drawn back while a model opens)
    preview_points = 1000  # items of a first, quick projection shown while the rest encode
    #: Interpolations (slot and global sliders, strips, GIFs) stay on the data (see data_manifold); False: the
    #: plain straight line A->B.
    follow_data = True
    file_cache_items = 64
    frames_per_job = 4  # interpolation frames per worker job (exports can be cancelled between them)

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
        self._state = _State()
        self._items_view: DatasetItems | None = None
        self._pca: dict[tuple[str, str, str], PcaFit] = {}
        self._projections: dict[tuple[str, str, str, int], Projection] = {}
        self._directions: dict[tuple[str, str, str, str], SlotDirections] = {}
        self._manifolds: dict[tuple[str, str, str], SlotManifold] = {}
        self._typical_errors: dict[tuple[str, str], float] = {}
        self._openings: dict[tuple[str, str], int] = {}
        self._splits: dict[tuple[str, float, int], np.ndarray] = {}
        self._file_latents: OrderedDict[tuple[Any, ...], dict[str, np.ndarray]] = OrderedDict()
        self._jobs: list[TrainingJob] = []
        self._busy_depth = 0
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
            info = _model_info(loaded, fp, self.device)
            with self._lock:
                dataset = self._state.dataset
            opened: AttributedDataset | None = None
            warning = ""
            if dataset_spec is not None:
                opened = _open(dataset_spec)
            elif dataset is None and info.dataset_spec:
                try:
                    opened = _open(info.dataset_spec)
                except DatasetError as e:
                    warning = f"the dataset it was trained on cannot be opened ({e}); open one with the same attributes"
            with self._lock:
                dataset = opened or self._state.dataset
                dataset_info = _dataset_info(opened) if opened is not None else self._state.dataset_info
                if dataset is not None:
                    warning = _compatibility(info, dataset, dataset_info.fingerprint if dataset_info else "")
                info = replace(info, dataset_warning=warning)
                self._set_state(loaded, info, dataset, dataset_info)
            self._choose_opening(self._state)
        self.events.model_changed.emit(info)
        if opened is not None:
            self.events.dataset_changed.emit(self._state.dataset_info)
        return info

    def open_dataset(self, spec: str) -> DatasetInfo:
        """Open a dataset by spec; with a model loaded, its attribute names must match the model's."""
        with self._busy(f"opening {spec}"):
            dataset = _open(spec)
            info = _dataset_info(dataset)
            with self._lock:
                model = self._state.model
                if model is not None:
                    model = replace(model, dataset_warning=_compatibility(model, dataset, info.fingerprint))
                self._set_state(self._state.loaded, model, dataset, info)
            self._choose_opening(self._state)
        self.events.dataset_changed.emit(info)
        return info

    def load_checkpoint_async(self, path: str | Path, dataset_spec: str | None = None) -> Future[ModelInfo]:
        return _in_thread(self.load_checkpoint, path, dataset_spec)

    def open_dataset_async(self, spec: str) -> Future[DatasetInfo]:
        return _in_thread(self.open_dataset, spec)

    def _set_state(self, loaded: LoadedModel | None, model: ModelInfo | None, dataset: AttributedDataset | None,
                   dataset_info: DatasetInfo | None) -> None:
        cache = None
        if model is not None and dataset is not None and dataset_info is not None:
            old = self._state
            same = (old.cache is not None and old.model is not None and old.dataset_info is not None
                    and old.model.fingerprint == model.fingerprint
                    and old.dataset_info.fingerprint == dataset_info.fingerprint)
            cache = old.cache if same else LatentCache(
                self.cache_dir / "latents", model.fingerprint, dataset_info.fingerprint, len(dataset),
                {s.name: s.size for s in model.slots})
        self._state = _State(loaded, model, dataset, dataset_info, cache)

    def _train_items(self, state: _State) -> np.ndarray:
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

    def _encode_items(self, state: _State, indices: np.ndarray, progress: Progress = None,
                      cancel: CancelCheck = None, keep: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
                      | None = None) -> dict[str, np.ndarray]:
        """Encode in worker jobs of ``job_items`` items, checking ``cancel`` between them. ``keep`` trims each
        chunk (one slot, pooled) so that large spatial latents never pile up for all slots at once."""
        cache = state.need_cache()
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(indices), self.job_items):
            if is_cancelled(cancel):
                raise Cancelled("cancelled")
            chunk = indices[start:start + self.job_items]
            got = self._worker.call(cache.fetch, chunk, lambda missing: self._encode_dataset_now(state, missing))
            parts.append(keep(got) if keep is not None else got)
            if progress is not None:
                progress(min(1.0, (start + len(chunk)) / max(1, len(indices))))
        if not parts:
            empty = {s.name: np.zeros((0, s.size), np.float32) for s in state.need_model()[1].slots}
            return keep(empty) if keep is not None else empty
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _encode_dataset_now(self, state: _State, indices: np.ndarray) -> dict[str, np.ndarray]:
        dataset, _ = state.need_dataset()
        return self._encode_pixels_now(state, dataset.images(indices))

    def _encode_pixels_now(self, state: _State, images: np.ndarray) -> dict[str, np.ndarray]:
        from studio.training.data import to_tensor

        loaded, info = state.need_model()
        if not loaded.method.can_encode():
            raise StudioError(f"this {info.method} checkpoint ({info.path}) cannot encode images yet; "
                              "train it further (its encoders come in a later stage)")
        if images.ndim != 4 or images.shape[-1] != 3:
            raise StudioError(f"images must be (n, H, W, 3) uint8, got {images.shape}")
        out: dict[str, list[np.ndarray]] = {s.name: [] for s in info.slots}
        res = info.resolution
        with torch.inference_mode():
            for start in range(0, len(images), self.encode_batch):
                x = to_tensor(images[start:start + self.encode_batch], self._torch_device)
                if x.shape[-1] != res or x.shape[-2] != res:
                    x = F.interpolate(x, size=(res, res), mode="bilinear", antialias=True, align_corners=False)
                latents = loaded.method.encode(x)
                self.encoder_calls += 1
                self.encoded_items += len(x)
                for s in info.slots:
                    out[s.name].append(latents[s.name].reshape(len(x), -1).float().cpu().numpy())
        return {k: (np.concatenate(v) if v else np.zeros((0, info.slot(k).size), np.float32)).astype(np.float32)
                for k, v in out.items()}

    def _decode_now(self, state: _State, latents: dict[str, np.ndarray]) -> np.ndarray:
        from studio.training.data import to_uint8

        loaded, info = state.need_model()
        n = len(next(iter(latents.values())))
        images = []
        with torch.inference_mode():
            for start in range(0, n, self.encode_batch):
                batch = {}
                for s in info.slots:
                    if s.name not in latents:
                        raise StudioError(f"no latent given for slot {s.name!r}")
                    z = np.asarray(latents[s.name][start:start + self.encode_batch], np.float32)
                    batch[s.name] = torch.from_numpy(np.ascontiguousarray(z)).reshape(len(z), *s.shape).to(
                        self._torch_device)
                images.append(to_uint8(loaded.method.decode(batch)))
                self.decoder_calls += 1
        return np.concatenate(images)

    def _file_latents_now(self, state: _State, path: str) -> dict[str, np.ndarray]:
        _, info = state.need_model()
        p = Path(path).expanduser()
        try:
            st = p.stat()
        except OSError:
            raise StudioError(f"{p}: no such image file") from None
        key = (info.fingerprint, str(p.resolve()), st.st_mtime_ns, st.st_size)
        hit = self._file_latents.get(key)
        if hit is not None:
            self._file_latents.move_to_end(key)
            return hit
        pixels = load_image_file(p, info.resolution)
        latents = {k: v[0] for k, v in self._encode_pixels_now(state, pixels[None]).items()}
        self._file_latents[key] = latents
        while len(self._file_latents) > self.file_cache_items:
            self._file_latents.popitem(last=False)
        return latents

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
                self.events.error.emit(_message(e))

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
        future: Future = Future()
        cancel = threading.Event()
        future.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)

        def run() -> None:
            try:
                result = fn(cancel)
            except Cancelled:
                if cancel.is_set():
                    cancel_future(future)
                elif future.set_running_or_notify_cancel():
                    future.set_exception(Cancelled("cancelled"))
            except BaseException as e:
                if future.set_running_or_notify_cancel():
                    future.set_exception(e)
            else:
                if future.set_running_or_notify_cancel():
                    future.set_result(result)

        self._tasks.enqueue(run)
        return future

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
            out += self._worker.call(self._interpolate_now, state, comps[start:start + self.frames_per_job])
            if progress is not None:
                progress(len(out) / len(comps))
        return out

    def _interpolate_now(self, state: _State, comps: list[Composition]) -> list[np.ndarray]:
        per_frame = [self._latents_for(state, c) for c in comps]
        stacked = {k: np.stack([f[k] for f in per_frame]) for k in per_frame[0]}
        return list(self._decode_now(state, stacked))

    def _compose_now(self, state: _State, composition: Composition, request_id: int) -> ComposeResult:
        start = time.perf_counter()
        latents = self._latents_for(state, composition)
        image = self._decode_now(state, {k: v[None] for k, v in latents.items()})[0]
        return ComposeResult(image, latents, request_id, time.perf_counter() - start)

    def _latents_for(self, state: _State, composition: Composition) -> dict[str, np.ndarray]:
        """Resolve every slot: source a (else the base, else item 0), the lerp toward b, then direction steps."""
        _, info = state.need_model()
        default: Source | None = composition.base
        if default is None and state.dataset is not None:
            default = ItemSource(0)
        items = set()
        for s in info.slots:
            v = composition.slot(s.name)
            for src in (v.a or default, v.b):
                items.update(_item_indices(src))
        encoded: dict[str, np.ndarray] = {}
        row: dict[int, int] = {}
        if items:
            if state.dataset is None:
                raise StudioError("the composition uses dataset items, but no dataset is open")
            order = np.array(sorted(items), dtype=np.int64)
            _check_items(order, len(state.dataset))
            encoded = state.need_cache().fetch(order, lambda missing: self._encode_dataset_now(state, missing))
            row = {int(i): k for k, i in enumerate(order)}
        out: dict[str, np.ndarray] = {}
        for s in info.slots:
            v = composition.slot(s.name)
            a = v.a or default
            if a is None:
                raise StudioError(f"slot {s.name} has no source and there is no dataset to take item 0 from")
            z = self._resolve(state, a, s, encoded, row)
            if v.b is not None:
                t = float(v.t)
                zb = self._resolve(state, v.b, s, encoded, row)
                line = (1.0 - t) * z + t * zb
                if self.follow_data and 0.0 < t < 1.0 and state.dataset is not None:
                    manifold = self._manifold_for(state, s.name)
                    ends = manifold.distance(np.stack([z, zb]))
                    line = manifold.follow(line, float((1.0 - t) * ends[0] + t * ends[1]))
                z = line
            for step in v.steps:
                z = self._directions_now(state, s.name, step.attribute).step(z, step.value, step.amount, step.combine)
            out[s.name] = np.asarray(z, np.float32)
        return out

    def _resolve(self, state: _State, src: Source, spec: SlotSpec, encoded: dict[str, np.ndarray],
                 row: dict[int, int]) -> np.ndarray:
        if isinstance(src, ItemSource):
            return encoded[spec.name][row[int(src.index)]]
        if isinstance(src, FileSource):
            return self._file_latents_now(state, src.path)[spec.name]
        if isinstance(src, LatentSource):
            z = np.asarray(src.values, np.float32).reshape(-1)
            if z.size != spec.size:
                raise StudioError(f"slot {spec.name}: the stored latent has {z.size} values, but this model's slot "
                                  f"holds {spec.size}; it was made with another model")
            return z
        if isinstance(src, MixtureSource):
            if not src.parts:
                raise StudioError(f"slot {spec.name}: a mixture with no parts")
            weights = np.array([w for _, w in src.parts], np.float64)
            if (weights < 0).any() or weights.sum() <= 0:
                raise StudioError(f"slot {spec.name}: mixture weights must be non-negative with a positive sum, "
                                  f"got {weights.tolist()}")
            weights /= weights.sum()
            parts = [self._resolve(state, part, spec, encoded, row) for part, _ in src.parts]
            return np.tensordot(weights, np.stack(parts), axes=1).astype(np.float32)
        raise StudioError(f"slot {spec.name}: unknown source {src!r}")

    # --- where the data lies -----------------------------------------------------------------------
    def manifold(self, slot: str, progress: Progress = None, cancel: CancelCheck = None) -> SlotManifold:
        """A sample of ``slot``'s training latents (stratified by its attribute) for on-data interpolation and
        far-from-data warnings; encoded once per model and dataset (call it off the GUI thread to prepare)."""
        return self._manifold_for(self._state, slot, progress, cancel)

    def _manifold_for(self, state: _State, slot: str, progress: Progress = None,
                      cancel: CancelCheck = None) -> SlotManifold:
        _, info = state.need_model()
        dataset, dinfo = state.need_dataset()
        spec = info.slot(slot)
        key = (info.fingerprint, dinfo.fingerprint, slot)
        hit = self._manifolds.get(key)
        if hit is not None:
            return hit
        train = self._train_items(state)
        labels = None
        if spec.attribute is not None and spec.attribute in dataset.schema.names:
            labels = dataset.codes[train, dataset.schema.position(spec.attribute)]
        count = min(self.manifold_items, max(256, 8_000_000 // max(1, spec.size)))  # about 32 MB at most
        chosen = train[sample_indices(len(train), count, seed=1, labels=labels)]
        with self._busy(f"sampling the data of slot {slot}"):
            latents = self._encode_items(state, chosen, progress, cancel, keep=lambda d: {slot: d[slot]})[slot]
        fitted = SlotManifold.fit(slot, latents)
        self._manifolds[key] = fitted
        return fitted

    @property
    def opening_item(self) -> int | None:
        """The item a fresh composition starts from: the one of a small sample the model draws back best (see
        ``legible_items``), chosen while a model and its dataset open; None before, or when it could not be."""
        state = self._state
        if state.model is None or state.dataset_info is None:
            return None
        return self._openings.get((state.model.fingerprint, state.dataset_info.fingerprint))

    def _choose_opening(self, state: _State) -> None:
        if state.model is None or state.dataset is None or not state.model.can_encode or len(state.dataset) == 0:
            return
        key = (state.model.fingerprint, state.dataset_info.fingerprint)
        if key in self._openings:
            return
        remembered = self.cache_dir / "latents" / key[0] / key[1] / "opening-v5.json"
        with contextlib.suppress(OSError, ValueError, TypeError):  # chosen at an earlier start: no work now
            item = int(json.loads(remembered.read_text())["item"])
            if 0 <= item < len(state.dataset):
                self._openings[key] = item
                return
        try:
            chosen = sample_indices(len(state.dataset), self.opening_sample, seed=3)
            self._openings[key] = self._worker.call(self._legible_now, state, chosen)[0]
        except StudioError:  # a model that cannot encode yet, a damaged item: the composer picks its own
            return
        from studio.training.checkpoint import atomic_write_json

        with contextlib.suppress(OSError):  # only saves the next start a moment
            atomic_write_json(remembered, {"item": self._openings[key]})

    def legible_items(self, count: int = 8, sample: int = 96) -> list[int]:
        """Items the model draws back best (the least of their own variance left unexplained by the reconstruction)
        among the more contrasted three quarters of a seeded sample: an opening that shows what the model can do."""
        state = self._state
        state.need_model()
        dataset, _ = state.need_dataset()
        chosen = sample_indices(len(dataset), int(sample), seed=3)
        return self._worker.call(self._legible_now, state, chosen)[: int(count)]

    def _legible_now(self, state: _State, chosen: np.ndarray) -> list[int]:
        _, info = state.need_model()
        dataset, _ = state.need_dataset()
        pixels = dataset.images(chosen)
        if pixels.shape[1] != info.resolution:
            pixels = np.stack([load_pixels_at(p, info.resolution) for p in pixels])
        encoded = state.need_cache().fetch(chosen, lambda missing: self._encode_dataset_now(state, missing))
        recon = self._decode_now(state, encoded).astype(np.float32) / 255.0
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

    def image_familiarity(self, path: str | Path) -> Familiarity:
        """How well the model can represent an image file: its reconstruction error against the training items'
        typical one, and each slot's latent distance to the nearest training latent in typical spacings."""
        state = self._state
        state.need_model()
        state.need_dataset()
        return self._worker.call(self._familiarity_now, state, str(path))

    def _familiarity_now(self, state: _State, path: str) -> Familiarity:
        _, info = state.need_model()
        pixels = load_image_file(Path(path).expanduser(), info.resolution)
        latents = self._file_latents_now(state, path)
        recon = self._decode_now(state, {k: v[None] for k, v in latents.items()})[0]
        error = float(np.mean((recon.astype(np.float32) / 255.0 - pixels.astype(np.float32) / 255.0) ** 2))
        distances = {s.name: float(self._manifold_for(state, s.name).distance(latents[s.name])[0])
                     for s in info.slots}
        return Familiarity(distances, error, self._typical_reconstruction(state))

    def _typical_reconstruction(self, state: _State) -> float:
        """The 95th percentile of the reconstruction error (MSE, pixels in [0, 1]) over training items."""
        _, info = state.need_model()
        dataset, dinfo = state.need_dataset()
        key = (info.fingerprint, dinfo.fingerprint)
        hit = self._typical_errors.get(key)
        if hit is not None:
            return hit
        train = self._train_items(state)
        chosen = train[sample_indices(len(train), 128, seed=2)]
        pixels = dataset.images(chosen)
        encoded = state.need_cache().fetch(chosen, lambda missing: self._encode_dataset_now(state, missing))
        recon = self._decode_now(state, encoded).astype(np.float32) / 255.0
        if recon.shape[1:3] != pixels.shape[1:3]:
            pixels = np.stack([load_pixels_at(p, info.resolution) for p in pixels])
        errors = ((recon - pixels.astype(np.float32) / 255.0) ** 2).reshape(len(recon), -1).mean(axis=1)
        typical = float(np.percentile(errors, 95))
        self._typical_errors[key] = typical
        return typical

    # --- directions ---------------------------------------------------------------------------------
    def directions(self, slot: str, attribute: str | None = None, progress: Progress = None,
                   cancel: CancelCheck = None) -> SlotDirections:
        """Per value of ``attribute`` (default: the slot's own): the unit normal of a one-vs-rest linear SVM in the
        slot's space (UDV) and a k-means centre, fitted on encoded training items; fitted once and reused."""
        return self._directions_for(self._state, slot, attribute, progress, cancel)

    def _directions_now(self, state: _State, slot: str, attribute: str | None) -> SlotDirections:
        return self._directions_for(state, slot, attribute or None, None, None)

    def _directions_for(self, state: _State, slot: str, attribute: str | None, progress: Progress,
                        cancel: CancelCheck) -> SlotDirections:
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
        with self._busy(f"fitting {attribute} directions in slot {slot}"):
            train = self._train_items(state)
            labels = dataset.codes[train, position]
            chosen = train[sample_indices(len(train), self.direction_items, seed=0, labels=labels)]
            latents = self._encode_items(state, chosen, progress, cancel, keep=lambda d: {slot: d[slot]})[slot]
            fitted = fit_directions(latents, dataset.codes[chosen, position], dataset.schema[attribute].values,
                                    slot=slot, attribute=attribute)
        self._directions[key] = fitted
        return fitted

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
        state = self._state
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
        if preview is not None and len(indices) > self.preview_points:
            first = sample_indices(len(indices), self.preview_points, seed=0,
                                   labels=None if labels is None else labels[indices])
        rest = np.setdiff1d(np.arange(len(indices)), first)
        share_first = len(first) / max(1, len(indices))

        def encode(positions: np.ndarray, start: float, share: float) -> np.ndarray:
            scaled = None if progress is None else (lambda f: progress(start + share * float(f)))
            return self._encode_items(state, indices[positions], scaled, cancel,
                                      keep=lambda d: {slot: pool_features(d[slot], spec.shape)[0]})[slot]

        pooled = spec.spatial
        with self._busy(f"projecting slot {slot}"):
            features = encode(first, 0.0, share_first)
            fit = self._pca_fit(state, slot, features)
            if len(rest):
                preview(self._projection(indices[first], fit.transform(features), fit, pooled, len(dataset), slot))
                features = np.concatenate([features, encode(rest, share_first, 1.0 - share_first)])
                order = np.argsort(np.concatenate([first, rest]), kind="stable")  # back to the sorted items
                features = features[order]
            xy = fit.transform(features)
        projection = self._projection(indices, xy, fit, pooled, len(dataset), slot)
        self._projections[key] = projection
        return projection

    @staticmethod
    def _projection(indices: np.ndarray, xy: np.ndarray, fit: PcaFit, pooled: bool, total: int,
                    slot: str) -> Projection:
        note = (f"PCA of {len(indices):,} of {total:,} items; the two axes explain {sum(fit.explained):.0%} of the "
                "variance" + ("; the spatial code is averaged over space first" if pooled else ""))
        return Projection(indices, xy, "pca", pooled, note, slot, fit.explained)

    def project_latent(self, slot: str, latent: np.ndarray) -> np.ndarray:
        """``(k, size)`` (or one ``(size,)``) latents -> ``(k, 2)`` with the slot's fitted PCA."""
        state = self._state
        _, info = state.need_model()
        _, dinfo = state.need_dataset()
        spec = info.slot(slot)
        fit = self._pca.get((info.fingerprint, dinfo.fingerprint, slot)) or self._read_pca(state, slot)
        if fit is None:
            raise StudioError(f"slot {slot} has no projection yet; call project({slot!r}) first")
        latent = np.asarray(latent, np.float32)
        if latent.shape[-1] != spec.size:
            raise StudioError(f"slot {slot} holds {spec.size} values, got latents of shape {latent.shape}")
        features, _ = pool_features(latent.reshape(-1, spec.size), spec.shape)
        return fit.transform(features)

    def _pca_fit(self, state: _State, slot: str, features: np.ndarray) -> PcaFit:
        info, dinfo = state.need_model()[1], state.need_dataset()[1]
        key = (info.fingerprint, dinfo.fingerprint, slot)
        fit = self._pca.get(key) or self._read_pca(state, slot)
        if fit is None:
            fit = PcaFit.fit(features)
            self._write_pca(state, slot, fit)
        self._pca[key] = fit
        return fit

    def _pca_path(self, state: _State, slot: str) -> Path:
        info, dinfo = state.need_model()[1], state.need_dataset()[1]
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", slot)
        return self.cache_dir / "latents" / info.fingerprint / dinfo.fingerprint / f"pca-{safe}.safetensors"

    def _read_pca(self, state: _State, slot: str) -> PcaFit | None:
        from safetensors.numpy import load_file

        path = self._pca_path(state, slot)
        if not path.exists():
            return None
        try:
            return PcaFit.from_arrays(load_file(str(path)))
        except Exception:  # damaged: refit
            return None

    def _write_pca(self, state: _State, slot: str, fit: PcaFit) -> None:
        from safetensors.numpy import save as save_bytes

        from studio.training.checkpoint import atomic_write_bytes

        with contextlib.suppress(OSError):  # the cache only saves time
            atomic_write_bytes(self._pca_path(state, slot), save_bytes(fit.to_arrays()))

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
        from studio.methods.registry import get_method, method_names
        from studio.training.trainer import TrainSettings

        plain = {f.name: f.default for f in dataclass_fields(TrainSettings)}
        out = []
        for name in method_names():
            cls = get_method(name)
            recipes = {k: RecipeDescription(k, r.summary, dict(r.settings), dict(r.options))
                       for k, r in cls.recipes.items()}
            defaults = {"steps": plain["steps"], "batch": plain["batch"], "lr_decay": "none", "budget_minutes": 0.0,
                        **getattr(cls, "train_defaults", {})}
            out.append(MethodDescription(name, cls.title or "", bool(cls.needs_labels),
                                         describe_config(cls.config_class), recipes, defaults))
        return out

    @staticmethod
    def describe_checkpoint(path: str | Path) -> CheckpointDescription:
        """What a checkpoint (file, sidecar or run folder) was made from: method, options, dataset, step."""
        from studio.training.checkpoint import read_checkpoint_meta, resolve_checkpoint

        return checkpoint_description(resolve_checkpoint(path), read_checkpoint_meta(path))

    @staticmethod
    def train_settings(**values: Any) -> TrainSettings:
        """Run settings from plain values (the Training tab's form); unknown names are a StudioError."""
        from studio.training.trainer import TrainSettings

        known = {f.name for f in dataclass_fields(TrainSettings)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StudioError(f"unknown run settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return TrainSettings(**values)

    @staticmethod
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

    @contextmanager
    def _busy(self, text: str) -> Iterator[None]:
        with self._lock:
            self._busy_depth += 1
        self.events.busy.emit(text)
        try:
            yield
        finally:
            with self._lock:
                self._busy_depth -= 1
                idle = self._busy_depth == 0
            if idle:
                self.events.busy.emit("")


# --- helpers ------------------------------------------------------------------------------------------
def load_image_file(path: str | Path, resolution: int) -> np.ndarray:
    """A picture from disk as the model sees it: RGB (transparency over white), centre square, resized; read
    through the guarded opener, so a decompression bomb or an odd format is a StudioError naming the file."""
    return load_square_rgb(path, resolution)


def load_pixels_at(image: np.ndarray, resolution: int) -> np.ndarray:
    """A dataset image (uint8 HxWx3) resized to the model's resolution, as ``load_image_file`` would."""
    if image.shape[0] == resolution and image.shape[1] == resolution:
        return image
    return np.asarray(Image.fromarray(image).resize((resolution, resolution), Image.Resampling.LANCZOS), np.uint8)


def _open(spec: str) -> AttributedDataset:
    from studio.data.spec import open_dataset

    return open_dataset(spec)


def _dataset_info(dataset: AttributedDataset) -> DatasetInfo:
    return DatasetInfo(dataset.spec, len(dataset), dataset.resolution, dataset.schema, dataset.fingerprint)


def _model_info(loaded: LoadedModel, fingerprint: str, device: str) -> ModelInfo:
    method = loaded.method
    path = loaded.path
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    title = f"{method.title or method.name} · {run} · step {loaded.step}"
    return ModelInfo(path, method.name, title, list(method.slots), method.context.resolution, method.context.schema,
                     loaded.step, loaded.dataset_spec, loaded.dataset_fingerprint, bool(method.can_encode()),
                     fingerprint, "", device)


def _compatibility(model: ModelInfo, dataset: AttributedDataset, dataset_fp: str) -> str:
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


def _item_indices(src: Source | None) -> list[int]:
    if isinstance(src, ItemSource):
        return [int(src.index)]
    if isinstance(src, MixtureSource):
        return [i for part, _ in src.parts for i in _item_indices(part)]
    return []


def _check_items(indices: np.ndarray, size: int) -> None:
    bad = indices[(indices < 0) | (indices >= size)]
    if len(bad):
        raise StudioError(f"item {int(bad[0])} is not in the open dataset (items 0..{size - 1})")


def _message(e: BaseException) -> str:
    return str(e) if isinstance(e, StudioError) else f"{type(e).__name__}: {e}"


def _in_thread(fn: Callable[..., Any], *args: Any) -> Future:
    """Run blocking service calls (which themselves hop to the worker for torch) on a short-lived thread."""
    future: Future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as e:
            future.set_exception(e)

    threading.Thread(target=run, name=f"studio-{fn.__name__}", daemon=True).start()
    return future


__all__ = ["CheckpointError", "ComposeResult", "DatasetInfo", "ModelInfo", "ModelService", "Projection",
           "QueryResult", "ServiceEvents", "SlotDirections", "load_image_file"]
