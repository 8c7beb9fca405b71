"""The training loop every method shares: data, checkpoints, exact resume, logs, sample grids, stop and pause.

A method only says how to draw a batch and take a step; the trainer owns everything around it, so the CLI, the
GUI's training tab and tests all train the same way. Callbacks run on the training thread; GUI code must hop to
its own thread before touching widgets.

Under ``torchrun`` every process runs this same loop on its own batches (see ``studio.training.distributed``);
rank 0 alone writes files, logs and calls the callbacks, and all ranks stop, save and resume at the same step.
"""

from __future__ import annotations

import io
import json
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from studio.data.dataset import AttributedDataset
from studio.data.spec import open_dataset
from studio.data.splits import ZeroShotSplit
from studio.errors import CheckpointError, StudioError
from studio.methods.base import Method, MethodContext, StepContext
from studio.methods.config import config_to_json
from studio.methods.optimizers import match_state_layout
from studio.training import distributed
from studio.training.carry_over import carry_over_report
from studio.training.checkpoint import atomic_write_bytes, atomic_write_json
from studio.training.data import TrainingData, tile_grid
from studio.training.method_setup import TRAINING_AID_PREFIXES, build_config, copy_weights, method_class
from studio.training.model_io import LoadedModel, load_model, save_checkpoint
from studio.training.run_directory import LAST, RunDirectory
from studio.training.schedule import diverged, lr_factor, set_learning_rates
from studio.training.settings import LR_DECAYS, ProgressEvent, TrainerCallbacks, TrainResult, TrainSettings

#: The zero-shot split is fixed across seeds, so runs that differ only in their seed are scored on the same items.
SPLIT_SEED = 0
#: The names this module has always offered; they live in the modules above now.
__all__ = ["LR_DECAYS", "SPLIT_SEED", "TRAINING_AID_PREFIXES", "ProgressEvent", "TrainResult", "TrainSettings",
           "Trainer", "TrainerCallbacks", "build_config", "diverged", "lr_factor", "set_learning_rates", "tile_grid"]


class Trainer:
    """Runs one training job to ``settings.steps`` (blocking), resumable from its run directory."""

    def __init__(self, settings: TrainSettings, callbacks: TrainerCallbacks | None = None) -> None:
        self.settings = settings
        self.callbacks = callbacks or TrainerCallbacks()
        self.out = Path(settings.out).expanduser()
        self.run_dir = RunDirectory(self.out)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._tensorboard: Any = None
        self._device = torch.device("cpu")
        #: training seconds this run has spent, over all its invocations (saved with every checkpoint)
        self._trained_s = 0.0
        #: The method being trained (set once ``run`` has built or loaded it).
        self.method: Method | None = None
        self._stop_reason = ""

    # --- control from other threads -------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Save a checkpoint and return from ``run`` at the next step boundary (wakes a paused run)."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    # --- paths ---------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir.checkpoints

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir.last

    # --- the run -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        s = self.settings
        if s.steps < 0 or s.batch < 1:
            raise StudioError(f"--steps must be >= 0 and --batch >= 1 (got {s.steps} and {s.batch})")
        if (s.budget_minutes or 0) < 0:
            raise StudioError(f"--budget-minutes must be >= 0 (got {s.budget_minutes})")
        device, owns_group = distributed.setup(s.device)
        try:
            return self._run(device)
        finally:
            if owns_group:
                distributed.shutdown()

    def _run(self, device: torch.device) -> TrainResult:
        s = self.settings
        self._device = device
        main = distributed.is_main()
        try:
            dataset = open_dataset(s.dataset)
            # A folder's images of other sizes are cropped and resized: say so (reading the headers also finds
            # unreadable files and decompression bombs before any decoding)
            size_report = getattr(dataset, "size_report", None)
            size_note = size_report() if size_report is not None else None
            split = ZeroShotSplit.make(dataset.codes, s.test_fraction, SPLIT_SEED)
            data = TrainingData(dataset, split, device)
            context = MethodContext(dataset.schema, dataset.resolution, len(split.train))
            if s.resume:
                method, optimizers, rng, step = self._resume(dataset.fingerprint, device)
            else:
                method, optimizers, rng, step = self._start(context, device, dataset)
                self.settings = replace(s, lr_decay=s.lr_decay or "none", budget_minutes=s.budget_minutes or 0.0)
            s = self.settings  # the schedule and budget are now resolved (and recorded with the run)
        except Exception as e:
            distributed.check_started(e)
            raise
        distributed.check_started(None)
        channels_last = device.type == "cpu" and method.channels_last_on_cpu
        if channels_last:
            method.to(memory_format=torch.channels_last)
            for optimizer in optimizers.values():  # a resumed state is still contiguous
                match_state_layout(optimizer)
        distributed.broadcast_module(method)
        self.method = method
        meta = {"dataset": {"spec": s.dataset, "fingerprint": dataset.fingerprint,
                            "resolution": dataset.resolution},
                "split": split.to_json(), "settings": s.to_json()}
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run_dir.config, {"method": method.name, "settings": s.to_json(),
                                                         "config": config_to_json(method.config), **meta})
            self._trim_metrics(step)
            self._open_tensorboard()
        method.train()
        method.on_train_start(data)
        processes = (f", {distributed.world_size()} processes with --batch {s.batch} each"
                     if distributed.active() else "")
        budget = (f", {self._trained_s / 60:.1f} of {s.budget_minutes:g} training minutes spent"
                  if s.budget_minutes else "")
        self._log(f"training {method.name} on {s.dataset} ({len(split.train)} training items, "
                  f"{dataset.resolution} px) on {device}{processes}, step {step} of {s.steps}{budget}")
        if size_note:
            self._log(f"images: {size_note}")
        ctx = StepContext(device, s.amp, distributed.average_gradients if distributed.active() else None)
        first_step = step
        restore_sigint = self._install_sigint()
        try:
            step, losses, saved_at = self._loop(method, optimizers, data, rng, ctx, step, meta)
        finally:
            restore_sigint()
        stopped = step < s.steps and not self.budget_spent
        checkpoint = self.last_checkpoint
        # rank 0's view decides: on several machines only its disk is sure to hold the run directory
        if distributed.from_main((saved_at != step and step != first_step) or not checkpoint.exists()):
            checkpoint = self._save(method, optimizers, rng, step, meta, losses)
        if self._tensorboard is not None:
            self._tensorboard.close()
        if channels_last:  # hand the model on as a loaded checkpoint would be, so both compute alike
            method.to(memory_format=torch.contiguous_format)
        self._log(f"{'stopped' if stopped else 'finished'} at step {step}; checkpoint {checkpoint}")
        return TrainResult(step, self.last_checkpoint, stopped, losses, self.run_dir.kept_checkpoint(step),
                           self._stop_reason if stopped else "")

    @property
    def budget_spent(self) -> bool:
        budget = self.settings.budget_minutes or 0.0
        return budget > 0 and self._trained_s >= budget * 60

    def _loop(self, method: Method, optimizers: dict[str, torch.optim.Optimizer], data: TrainingData,
              rng: np.random.Generator, ctx: StepContext, step: int,
              meta: dict[str, Any]) -> tuple[int, dict[str, float], int]:
        s = self.settings
        window: dict[str, list[float]] = {}
        latest: dict[str, float] = {}
        seconds_per_step = 0.0
        saved_at = -1
        deadline = time.monotonic() + s.minutes * 60 if s.minutes > 0 else math.inf
        budget_s = (s.budget_minutes or 0.0) * 60
        multi, main = distributed.active(), distributed.is_main()
        ticked = time.monotonic()
        while step < s.steps:
            now = time.monotonic()
            self._trained_s += now - ticked  # pauses below move ``ticked`` on, so they do not count
            ticked = now
            why = "stop" if self._stop.is_set() else "time" if now >= deadline else ""
            # Every step, all ranks agree whether to go on (one leaving alone would strand the others in a
            # collective) and on the time trained, which sets the learning rate of a budgeted run. A Ctrl-C (2)
            # outranks a time limit (1), so the run's exit says it was interrupted if any process was.
            if multi:
                level = {"": 0.0, "time": 1.0, "stop": 2.0}[why]
                highest, self._trained_s = distributed.max_over_ranks([level, self._trained_s], ctx.device)
                why = why or ("other" if highest else "")
                self._stop_reason = "interrupt" if highest >= 2 else "time"
            else:
                self._stop_reason = "interrupt" if why == "stop" else "time"
            if not why and self.budget_spent:
                self._log(f"training budget of {s.budget_minutes:g} min spent")
                break
            if why == "time":
                self._log(f"time limit of {s.minutes:g} min reached")
            elif why == "other":
                self._log("another training process is stopping (Ctrl-C or its time limit); stopping with it")
            if why:
                break
            if not self._running.is_set() and not multi:  # pause is for the GUI's single process
                self._running.wait(0.5)
                ticked = time.monotonic()
                continue
            started = time.perf_counter()
            progress = max(step / s.steps if s.steps else 1.0, self._trained_s / budget_s if budget_s else 0.0)
            set_learning_rates(optimizers, lr_factor(s.lr_decay, progress, 1.0))
            batch = method.sample_batch(data, rng, s.batch)
            latest = method.training_step(batch, optimizers, step, ctx)
            if multi:  # losses of the global batch, so every rank sees (and judges divergence on) the same figures
                distributed.average_batch_statistics(method)
                latest = distributed.average_scalars(latest, ctx.device)
            step += 1
            if diverged(latest, ctx.skips_overflow):
                raise StudioError(f"the loss became {latest} at step {step}; training diverged. Resume from the last "
                                  f"checkpoint with a lower learning rate (e.g. --lr), or start again")
            took = time.perf_counter() - started
            seconds_per_step = took if seconds_per_step == 0 else 0.95 * seconds_per_step + 0.05 * took
            rate = 1.0 / max(seconds_per_step, 1e-9)
            for k, v in latest.items():
                window.setdefault(k, []).append(v)
            if self.callbacks.on_progress is not None and main:
                total, eta = s.steps, (s.steps - step) / rate
                if budget_s:  # the budget ends the run first unless the steps run out sooner
                    left = max(0.0, budget_s - self._trained_s)
                    total, eta = min(s.steps, step + round(left * rate)), min(eta, left)
                self.callbacks.on_progress(ProgressEvent(step, total, dict(latest), rate, eta))
            if s.log_every > 0 and (step % s.log_every == 0 or step == s.steps):
                if main:
                    self._write_metrics(step, {k: float(np.mean(v)) for k, v in window.items()}, rate)
                window.clear()
            if s.sample_every > 0 and step % s.sample_every == 0 and main:
                self._write_sample(method, data, step)
            if s.checkpoint_every > 0 and step % s.checkpoint_every == 0:
                self._save(method, optimizers, rng, step, meta, latest)
                saved_at = step
        self._trained_s += time.monotonic() - ticked
        return step, latest, saved_at

    # --- starting and resuming -------------------------------------------------------------------
    def _start(self, context: MethodContext, device: torch.device, dataset: AttributedDataset):
        s = self.settings
        if self.run_dir.newest_checkpoint() is not None:
            raise StudioError(f"{self.out} already holds a run ({self.run_dir.checkpoints.name}/); pass --resume to "
                              "continue it, or choose another --out")
        cls = method_class(s.method)
        config = build_config(cls, s.method_options)
        torch.manual_seed(s.seed)  # the same initial weights on every rank (rank 0's are broadcast as well)
        rng = distributed.batch_rng(s.seed)
        if s.init_from:
            source = load_model(s.init_from, "cpu")
            if source.method.name != cls.name:
                raise CheckpointError(f"--init-from {s.init_from}: it holds a {source.method.name} model, not "
                                      f"{cls.name}; fine-tuning keeps the method")
            base = config_to_json(source.method.config)
            config = build_config(cls, {**base, **s.method_options})
        try:
            method = cls(config, context)
        except ValueError as e:
            raise StudioError(f"{cls.name} options: {e}") from None
        if s.init_from:
            copy_weights(source.method, method, s.init_from)
            self._log(carry_over_report(s.init_from, source.method, source.dataset_spec, method, dataset))
        method.to(device)
        distributed.seed_torch_per_rank(s.seed)
        return method, method.make_optimizers(), rng, 0

    def _resume(self, fingerprint: str, device: torch.device):
        s = self.settings
        checkpoint = self.run_dir.newest_checkpoint()  # ``last``, or a first checkpoint killed before it
        if checkpoint is None:
            raise StudioError(f"--resume: {self.out} holds no checkpoint to continue (checkpoints/{LAST}.safetensors);"
                              " drop --resume to start a new run there")
        loaded = load_model(checkpoint, device)
        method = loaded.method
        if method.name != s.method:
            raise StudioError(f"--resume: {self.out} holds a {method.name} run, not {s.method}; use --method "
                              f"{method.name}")
        if loaded.dataset_fingerprint and loaded.dataset_fingerprint != fingerprint:
            raise StudioError(f"--resume: {self.out} was trained on {loaded.dataset_spec!r} with other pixels or "
                              f"labels (fingerprint {loaded.dataset_fingerprint}, now {fingerprint}); use the same "
                              "--dataset, or --init-from to fine-tune on new data")
        stored = config_to_json(method.config)
        wanted = config_to_json(build_config(type(method), {**stored, **s.method_options}))
        changed = sorted(k for k in wanted if wanted[k] != stored[k])
        if changed:
            raise StudioError(f"--resume keeps the run's method options; {', '.join(changed)} differ from the "
                              "checkpoint. Drop them, or start a new run (--init-from to keep the weights)")
        decay = (loaded.meta.get("settings") or {}).get("lr_decay") or "none"
        if s.lr_decay not in (None, decay):
            raise StudioError(f"--resume keeps the run's learning-rate schedule ({decay}); drop --lr-decay "
                              f"{s.lr_decay}, or start a new run (--init-from to keep the weights)")
        budget = float((loaded.meta.get("settings") or {}).get("budget_minutes") or 0.0)
        if s.budget_minutes is not None and s.budget_minutes != budget:
            raise StudioError(f"--resume keeps the run's training budget ({budget:g} min); drop --budget-minutes "
                              f"{s.budget_minutes:g}, or start a new run (--init-from to keep the weights)")
        self.settings = replace(s, lr_decay=decay, budget_minutes=budget)
        self._trained_s = float(loaded.meta.get("trained_seconds") or 0.0)
        optimizers = method.make_optimizers()
        rng = loaded.restore_training_state(optimizers)
        if rng is None:
            raise CheckpointError(f"{loaded.path}: no random-generator state; it cannot be resumed exactly")
        return method, optimizers, self._restore_rank_streams(loaded, rng), loaded.step

    def _restore_rank_streams(self, loaded: LoadedModel, rng: np.random.Generator) -> np.random.Generator:
        """Each rank continues its own random streams (rank 0's are the checkpoint's main ones, already restored).

        With another number of processes than wrote the checkpoint, exactness is impossible anyway: rank 0 goes on
        with its streams and the other ranks start new ones from --seed and the step.
        """
        stored = loaded.meta.get("ranks") or {"size": 1}
        size, here = distributed.world_size(), distributed.rank()
        if int(stored["size"]) != size:
            self._log(f"--resume: the checkpoint was written by {stored['size']} training process(es), this run has "
                      f"{size}; the weights and optimiser state carry on, but the random streams of processes "
                      "other than 0 start afresh, so this is not the run the old process count would have made")
            if here > 0:
                rng = np.random.default_rng(distributed.rank_seed_sequence(self.settings.seed, 0, loaded.step))
                distributed.seed_torch_per_rank(self.settings.seed, loaded.step)
            return rng
        if here > 0:
            rng = np.random.default_rng()
            rng.bit_generator.state = stored["numpy_rng"][here]
            torch.set_rng_state(loaded.tensors[f"rng/rank{here}/torch"])
            cuda = loaded.tensors.get(f"rng/rank{here}/cuda")
            if cuda is not None and self._device.type == "cuda":
                torch.cuda.set_rng_state(cuda)
        return rng

    # --- outputs ---------------------------------------------------------------------------------
    def _save(self, method: Method, optimizers: dict[str, torch.optim.Optimizer], rng: np.random.Generator,
              step: int, meta: dict[str, Any], losses: dict[str, float]) -> Path:
        """Write a checkpoint; under torchrun every rank calls this (its random state goes in), rank 0 writes, and
        the others wait until the files are complete."""
        rank_tensors, ranks = self._gather_rank_states(method, rng)
        if not distributed.is_main():
            distributed.barrier()
            return self.last_checkpoint
        if ranks is not None:
            meta = {**meta, "ranks": ranks}
        path = save_checkpoint(self.run_dir.checkpoint(step), method, step=step,
                               meta={**meta, "metrics": losses, "trained_seconds": round(self._trained_s, 3)},
                               optimizers=optimizers, rng=rng,
                               extra_tensors=rank_tensors)
        self.run_dir.publish_last(path)
        self.run_dir.prune(self.settings.keep_checkpoints)
        if self.callbacks.on_checkpoint is not None:
            # The numbered file, so listeners can tell checkpoints apart (``last`` when it was not kept).
            self.callbacks.on_checkpoint(step, path if path.exists() else self.last_checkpoint)
        distributed.barrier()
        return self.last_checkpoint

    def _gather_rank_states(self, method: Method,
                            rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
        """Under torchrun: every rank's random streams, so a resume continues each exactly, and a digest of its
        weights, which must agree (they differ only through a bug, e.g. a step that skipped ``sync_gradients``)."""
        if not distributed.active():
            return {}, None
        cuda = torch.cuda.get_rng_state() if self._device.type == "cuda" else None
        states = distributed.gather({"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(), "cuda": cuda,
                                     "digest": distributed.weights_digest(method)})
        tensors: dict[str, torch.Tensor] = {}
        for r, state in enumerate(states):
            if r > 0:
                tensors[f"rng/rank{r}/torch"] = state["torch"]
                if state["cuda"] is not None:
                    tensors[f"rng/rank{r}/cuda"] = state["cuda"]
        digests = [state["digest"] for state in states]
        if len(set(digests)) > 1:
            self._log(f"warning: the training processes hold different weights ({len(set(digests))} versions); "
                      "the checkpoint has rank 0's")
        return tensors, {"size": len(states), "numpy_rng": [state["numpy"] for state in states],
                         "weights_sha256": digests}

    def _write_metrics(self, step: int, losses: dict[str, float], rate: float) -> None:
        record = {"step": step, "losses": losses, "steps_per_s": round(rate, 4), "time": round(time.time(), 3)}
        with open(self.run_dir.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tensorboard is not None:
            for k, v in losses.items():
                self._tensorboard.add_scalar(f"loss/{k}", v, step)
            self._tensorboard.add_scalar("steps_per_s", rate, step)

    def _trim_metrics(self, step: int) -> None:
        """On resume, drop log lines a killed run wrote after its last checkpoint (they will be written again)."""
        path = self.run_dir.metrics
        if not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                if int(json.loads(line)["step"]) <= step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        atomic_write_bytes(path, "".join(f"{line}\n" for line in kept).encode())

    def _write_sample(self, method: Method, data: TrainingData, step: int) -> None:
        # A fresh generator shows the same items at every step, and forking torch's RNG keeps the training
        # stream untouched, so taking samples never changes what a resumed run computes.
        devices = [data.device] if data.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            images = method.sample_grid(data, np.random.default_rng(self.settings.seed + 7919))
        grid = tile_grid(images)
        path = self.run_dir.sample(step)
        buffer = io.BytesIO()
        Image.fromarray(grid).save(buffer, format="PNG")
        atomic_write_bytes(path, buffer.getvalue())
        if self._tensorboard is not None:
            self._tensorboard.add_image("samples", grid, step, dataformats="HWC")
        if self.callbacks.on_sample is not None:
            self.callbacks.on_sample(step, grid, path)

    def _open_tensorboard(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self._tensorboard = SummaryWriter(str(self.run_dir.tensorboard))

    def _log(self, message: str) -> None:
        if self.callbacks.on_log is not None and distributed.is_main():
            self.callbacks.on_log(message)

    def _install_sigint(self) -> Callable[[], None]:
        """First Ctrl-C: finish the step, save, return. Second: the usual KeyboardInterrupt (last checkpoint kept)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous) and previous not in (signal.SIG_IGN, signal.SIG_DFL):
            previous = signal.default_int_handler

        def on_sigint(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._log("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)")
            self.request_stop()

        signal.signal(signal.SIGINT, on_sigint)
        return lambda: signal.signal(signal.SIGINT, previous)
