"""The Training tab: choose data, method and hyper-parameters, run a job in the background and watch it.

The job runs on the service's training thread; its events arrive here through ``gui_callback`` (a queued hop to the
GUI thread). This module is the wiring: it follows the job and hands what happens to the pieces that show it, each
in its own module: the form (training_form, with the hyper-parameters generated in training_options), the run strip
(training_status), the loss curves (training_curves) and the checkpoint picker (training_checkpoints). The tab keeps
the widget names and calls the window, the screenshots and the tests use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from studio.errors import StudioError
from studio.service.descriptions import MethodDescription
from studio.ui import errors
from studio.ui.image_view import ImageView
from studio.ui.training_checkpoints import CheckpointPicker
from studio.ui.training_curves import LossHistory, LossPlot
from studio.ui.training_form import RUN_WIDGET_NAMES, TrainingForm, dataset_spec_with_resolution
from studio.ui.training_options import ConfigForm
from studio.ui.training_status import ENDED, RUNNING, RunStatus, format_duration
from studio.ui.workers import gui_callback, watch

#: The names importers of this module have always found here (the pieces now live in the modules above).
__all__ = ["ConfigForm", "LossHistory", "LossPlot", "TrainingTab", "dataset_spec_with_resolution", "format_duration"]


class TrainingTab(QWidget):
    """Form on the left, the live run on the right. ``checkpoint_loaded(path)`` fires after "Use in composer"
    has loaded a checkpoint into the service (the main window then shows the composer)."""

    job_started = Signal(object)  # TrainingJob
    job_ended = Signal(str)  # final state
    progressed = Signal(object)  # ProgressEvent, on the GUI thread
    checkpoint_loaded = Signal(object)  # Path

    def __init__(self, service, parent: QWidget | None = None, runs_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.form = TrainingForm(service, runs_dir=runs_dir)
        #: what the service says one can train, by name (options, recipes, run defaults)
        self.methods: dict[str, MethodDescription] = self.form.methods
        self.job = None
        self._relays: list[tuple[Any, Any]] = []
        self._last_step = 0
        #: asked before "Use in composer" loads a checkpoint (the main window: would it replace the composition?)
        self.confirm_use: Any = None

        self._build_monitor()
        self._expose_parts()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.form)
        splitter.addWidget(self._monitor)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 800])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self._set_running(False)
        self.device_combo.currentTextChanged.connect(self._on_device_changed)

    # --- building ---------------------------------------------------------------------------------------
    def _build_monitor(self) -> None:
        self.status = RunStatus()
        self.status.start_button.clicked.connect(self.start)
        self.status.pause_button.clicked.connect(self._on_pause_clicked)
        self.status.stop_button.clicked.connect(self.stop)

        self.plot = LossPlot()
        self.status.log_scale.toggled.connect(self.plot.set_log_scale)

        self.sample_view = ImageView("Sample grids appear here while the model trains", side=240)
        self.sample_caption = QLabel("Newest samples")
        sample_box = QWidget()
        sample_layout = QVBoxLayout(sample_box)
        sample_layout.setContentsMargins(0, 0, 0, 0)
        sample_layout.addWidget(self.sample_caption)
        sample_layout.addWidget(self.sample_view, 1)

        self.checkpoints = CheckpointPicker()
        self.checkpoints.use_requested.connect(self.use_selected_checkpoint)

        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(sample_box)
        bottom.addWidget(self.checkpoints)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 2)
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(self.plot)
        vertical.addWidget(bottom)
        vertical.setStretchFactor(0, 1)
        vertical.setStretchFactor(1, 1)

        monitor = QWidget()
        layout = QVBoxLayout(monitor)
        layout.setContentsMargins(6, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addWidget(vertical, 1)
        self._monitor = monitor

    def _expose_parts(self) -> None:
        """The parts' widgets under the tab's names, which the window, the screenshots and the tests use."""
        form, status = self.form, self.status
        self.dataset_combo = form.dataset_combo
        self.resolution_combo = form.resolution_combo
        self.method_combo = form.method_combo
        self.recipe_combo = form.recipe_combo
        for attribute in RUN_WIDGET_NAMES.values():  # the run settings' editors (steps_spin, device_combo, ...)
            if hasattr(form, attribute):
                setattr(self, attribute, getattr(form, attribute))
        self.out_edit = form.out_edit
        self.resume_check = form.resume_check
        self.init_edit = form.init_edit
        self.init_current = form.init_current
        self.config_form = form.config_form
        self.method_box = form.method_box
        self.start_button = status.start_button
        self.pause_button = status.pause_button
        self.stop_button = status.stop_button
        self.state_label = status.state_label
        self.progress = status.progress
        self.rate_label = status.rate_label
        self.eta_label = status.eta_label
        self.loss_label = status.loss_label
        self.log_scale = status.log_scale
        self.checkpoint_list = self.checkpoints.list
        self.use_button = self.checkpoints.use_button
        self.open_folder_button = self.checkpoints.open_folder_button

    def sizeHint(self) -> QSize:
        return QSize(1200, 760)

    # --- form (the TrainingForm's, under the tab's names) -----------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        """Where new runs go by default; setting it does not refresh the run-folder hint (:meth:`set_runs_dir`
        does)."""
        return self.form.runs_dir

    @runs_dir.setter
    def runs_dir(self, runs_dir: Path) -> None:
        self.form.runs_dir = runs_dir

    def method_name(self) -> str:
        return self.form.method_name()

    def method(self) -> MethodDescription:
        return self.form.method()

    def set_method(self, name: str) -> None:
        self.form.set_method(name)

    def set_dataset(self, spec: str) -> None:
        self.form.set_dataset(spec)

    def dataset_spec(self) -> str:
        return self.form.dataset_spec()

    def auto_recipe(self) -> str | None:
        return self.form.auto_recipe()

    def apply_recipe(self, name: str | None) -> None:
        self.form.apply_recipe(name)

    def form_state(self) -> dict[str, Any]:
        return self.form.form_state()

    def restore_form_state(self, state: dict[str, Any]) -> None:
        self.form.restore_form_state(state)

    def set_runs_dir(self, runs_dir: Path) -> None:
        self.form.set_runs_dir(runs_dir)

    def settings(self):
        return self.form.settings()

    def set_fine_tune_source(self, path: str | Path) -> None:
        self.form.set_fine_tune_source(path)

    def _on_device_changed(self, *_args) -> None:
        """Follow the device with the recipe, as the CLI would, while the form still holds an automatic choice."""
        if self.recipe_combo.currentData() in (None, "cpu") and not self.is_running():
            wanted = self.auto_recipe()
            if wanted != self.recipe_combo.currentData():
                self.apply_recipe(wanted)

    # --- running -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a job from the form (errors in the form go to the error dialog)."""
        if self.job is not None and self.job.running:
            return
        try:
            settings = self.settings()
            job = self.service.start_training(settings)
        except (StudioError, KeyError, ValueError) as e:
            errors.reporter().report(e if isinstance(e, StudioError) else StudioError(str(e)))
            return
        self.attach(job)

    def attach(self, job) -> None:
        """Follow a job (one this tab started, or one the service already runs)."""
        self._detach()
        self.job = job
        self.plot.clear_history()
        self.checkpoints.begin(Path(job.settings.out))
        self.sample_view.set_image(None)
        self.sample_caption.setText("Newest samples")
        self._last_step = 0
        self.status.begin(job.settings.steps)
        handlers = {
            "progress": self._on_progress, "sample": self._on_sample, "checkpoint": self._on_checkpoint,
            "finished": self._on_finished, "failed": self._on_failed, "state_changed": self._on_state_changed,
        }
        for name, handler in handlers.items():
            relay = gui_callback(handler, self)
            getattr(job.events, name).connect(relay)
            self._relays.append((getattr(job.events, name), relay))
        for event in list(job.history):
            self.plot.add(event.step, event.losses)
        for path in list(job.checkpoints):
            self.checkpoints.add(self.checkpoints.step_of(path), path)
        if getattr(job, "last_sample", None) is not None:
            self.sample_view.set_image(job.last_sample)
        self._set_running(job.running)
        self._on_state_changed(job.state)
        self.job_started.emit(job)

    def _detach(self) -> None:
        for signal, relay in self._relays:
            try:
                signal.disconnect(relay)
            except (ValueError, RuntimeError):
                continue
        self._relays = []

    def pause(self) -> None:
        if self.job is not None:
            self.job.pause()

    def resume(self) -> None:
        if self.job is not None:
            self.job.resume()

    def stop(self) -> None:
        """Save a checkpoint and end the run."""
        if self.job is not None and self.job.running:
            self.job.stop()

    def is_running(self) -> bool:
        return self.job is not None and self.job.running

    def _on_pause_clicked(self) -> None:
        if self.job is None:
            return
        if self.job.state == "paused":
            self.job.resume()
        else:
            self.job.pause()

    def _set_running(self, running: bool) -> None:
        self.form.set_running(running)
        self.status.set_running(running)

    # --- job events (GUI thread) ------------------------------------------------------------------------
    def _on_progress(self, event) -> None:
        self._last_step = int(event.step)
        self.plot.add(event.step, event.losses)
        self.status.show_progress(event)
        if self.status.state not in RUNNING:
            # a step that ended after Pause or Stop was pressed: the state line names it, nothing runs down
            self._on_state_changed(self.status.state)
        self.progressed.emit(event)

    def _on_sample(self, step: int, grid: np.ndarray, _path) -> None:
        self.sample_view.set_image(grid)
        self.sample_caption.setText(f"Newest samples (step {int(step):,})")

    def _on_checkpoint(self, step: int, path) -> None:
        self.checkpoints.add(int(step), Path(path))

    def _on_finished(self, result) -> None:
        final = Path(getattr(result, "checkpoint", "") or "")
        step = int(getattr(result, "step", self._last_step))
        kept = getattr(result, "kept", None)  # the numbered checkpoint of the last step, when the run keeps it
        if kept is not None and Path(kept).exists():
            final = Path(kept)
        if final.name and final.exists():
            self.checkpoints.add(step, final)
        if step > 0:  # the bar and the state line both end at the step the run ended at
            self._last_step = step
            self.status.show_end(step)
        self._on_state_changed(self.job.state if self.job is not None and self.job.state in ENDED else "finished")
        self.plot.redraw()
        self._set_running(False)
        self._detach()  # an ended job sends nothing more; holding on would keep this tab alive with it
        self.job_ended.emit(self.job.state if self.job is not None else "finished")

    def _on_failed(self, message: str) -> None:
        self.plot.redraw()
        self._set_running(False)
        self.status.show_message("Failed: " + message)
        details = getattr(self.job, "details", "") if self.job is not None else ""
        errors.reporter().report_message(f"Training failed: {message}", details)
        self._detach()
        self.job_ended.emit("failed")

    def _on_state_changed(self, state: str) -> None:
        self.status.show_state(state, self._last_step)
        if state in ENDED:
            self._set_running(False)

    # --- checkpoints -------------------------------------------------------------------------------------
    def selected_checkpoint(self) -> Path | None:
        return self.checkpoints.selected()

    def use_selected_checkpoint(self) -> None:
        """Load the selected checkpoint into the service; ``checkpoint_loaded`` follows on success."""
        path = self.selected_checkpoint()
        if path is None:
            return
        if not path.exists():
            errors.reporter().report(StudioError(f"{path} no longer exists (older checkpoints are pruned as a run "
                                                 "goes on); choose a newer one"))
            return
        if self.confirm_use is not None and not self.confirm_use(path):
            return  # the user kept the composition (the window asked: the new model would replace it)
        self.use_button.setEnabled(False)
        self.status.show_message(f"Loading {path.name}…")

        def loaded(_info) -> None:
            self.checkpoints.update_buttons()
            self.status.show_message(f"Loaded {path.name} into the composer.")
            self.checkpoint_loaded.emit(path)

        def failed(exc: BaseException) -> None:
            self.checkpoints.update_buttons()
            errors.reporter().report(exc)

        watch(self.service.load_checkpoint_async(path), loaded, failed, owner=self)

    def shutdown(self) -> None:
        """Unsubscribe from the job (the job itself is the service's and may keep running)."""
        self._detach()
        self.plot.stop()
