"""Training jobs: a Trainer on its own thread, with pause/resume/stop/cancel and psygnal events.

Events fire on the training thread; Qt code hops to the GUI thread before touching widgets. A subscriber that
raises fails the job (a broken observer should be seen, not swallowed). A job that fails reports the message and
keeps every checkpoint it wrote, so the last one stays usable.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import EmitLoopError, Signal, SignalGroup

from studio.errors import StudioError

if TYPE_CHECKING:
    from studio.training.trainer import ProgressEvent, Trainer, TrainResult, TrainSettings

ENDED = ("finished", "failed", "cancelled")


class JobEvents(SignalGroup):
    """Short past-tense names, as superqt workers use."""

    started = Signal()
    progress = Signal(object)  # ProgressEvent
    sample = Signal(int, object, object)  # step, grid uint8 (H, W, 3), path
    checkpoint = Signal(int, object)  # step, path
    log = Signal(str)
    finished = Signal(object)  # TrainResult
    failed = Signal(str)
    state_changed = Signal(str)


class TrainingJob:
    """One training run in the background. ``state`` moves through starting -> running (<-> paused) ->
    stopping/cancelling -> finished/failed/cancelled.

    ``stop()`` ends the run after saving a checkpoint; ``cancel()`` ends it as soon as possible and marks it
    cancelled (the trainer's stop path still saves, which costs nothing worth keeping the user waiting for).
    """

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings
        self.events = JobEvents()
        self.state = "starting"
        self.error: str | None = None
        self.details: str = ""
        self.result: TrainResult | None = None
        self.checkpoints: list[Path] = []
        self.history: list[ProgressEvent] = []
        self.last_sample: np.ndarray | None = None
        self._trainer: Trainer | None = None
        self._lock = threading.RLock()
        self._pause_wanted = False
        self._end_wanted: str | None = None  # "stop" or "cancel"
        self._thread = threading.Thread(target=self._run, name=f"studio-training-{Path(settings.out).name}",
                                        daemon=True)

    # --- control ------------------------------------------------------------------------------
    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def pause(self) -> None:
        with self._lock:
            if self.state not in ("starting", "running"):
                return
            self._pause_wanted = True
            if self._trainer is not None:
                self._trainer.pause()
            self._set_state("paused")

    def resume(self) -> None:
        with self._lock:
            if self.state != "paused":
                return
            self._pause_wanted = False
            if self._trainer is not None:
                self._trainer.resume()
            self._set_state("running")

    def stop(self) -> None:
        """Save a checkpoint and end; the job ends as 'finished'."""
        self._end("stop", "stopping")

    def cancel(self) -> None:
        """End as soon as possible; the job ends as 'cancelled'."""
        self._end("cancel", "cancelling")

    def wait(self, timeout: float | None = None) -> bool:
        """True once the job has ended (its thread is gone)."""
        if not self._thread.is_alive() and self._thread.ident is None:
            return self.state in ENDED
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self.state not in ENDED

    @property
    def last_checkpoint(self) -> Path | None:
        return self.checkpoints[-1] if self.checkpoints else None

    # --- internals ----------------------------------------------------------------------------
    def _end(self, how: str, state: str) -> None:
        with self._lock:
            if self.state in ENDED or self._end_wanted == "cancel":
                return
            self._end_wanted = how
            self._pause_wanted = False
            if self._trainer is not None:
                self._trainer.request_stop()
                self._trainer.resume()  # a paused loop must wake up to see the stop
            self._set_state(state)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.events.state_changed.emit(state)

    def _on_progress(self, event: ProgressEvent) -> None:
        self.history.append(event)
        self.events.progress.emit(event)

    def _on_sample(self, step: int, grid: np.ndarray, path: Path) -> None:
        self.last_sample = grid
        self.events.sample.emit(step, grid, path)

    def _on_checkpoint(self, step: int, path: Path) -> None:
        """Record the checkpoint: the trainer passes the numbered file when it keeps one, else the moving ``last``."""
        kept = Path(path)
        if kept not in self.checkpoints:
            self.checkpoints.append(kept)
        self.events.checkpoint.emit(step, kept)

    def _run(self) -> None:
        from studio.training.trainer import Trainer, TrainerCallbacks

        try:
            callbacks = TrainerCallbacks(on_progress=self._on_progress, on_sample=self._on_sample,
                                         on_checkpoint=self._on_checkpoint, on_log=self.events.log.emit)
            trainer = Trainer(self.settings, callbacks)
            with self._lock:
                self._trainer = trainer
                if self._end_wanted is not None:
                    trainer.request_stop()
                elif self._pause_wanted:
                    trainer.pause()
                if self.state == "starting":
                    self._set_state("running")
            self.events.started.emit()
            result = trainer.run()
        except Exception as e:  # every failure is reported; the thread must not die silently
            self._fail(e)
            return
        with self._lock:
            self.result = result
            final = Path(result.checkpoint)
            kept = result.kept or final
            if final.exists() and final not in self.checkpoints and kept not in self.checkpoints:
                self.checkpoints.append(kept)
            self._set_state("cancelled" if self._end_wanted == "cancel" else "finished")
        self.events.finished.emit(result)

    def _fail(self, e: Exception) -> None:
        details = traceback.format_exc()
        while isinstance(e, EmitLoopError) and isinstance(e.__cause__, Exception):
            e = e.__cause__  # a subscriber failed: report its error, not psygnal's wrapper
        message = str(e) if isinstance(e, StudioError) else f"{type(e).__name__}: {e}"
        if self.last_checkpoint is not None:
            message += f"; the last checkpoint, {self.last_checkpoint}, is kept and usable"
        with self._lock:
            self.error = message
            self.details = details
            self._set_state("failed")
        self.events.failed.emit(message)
