"""The Training tab's run strip: Start/Pause/Stop, the state line, the progress bar and speed, remaining time and
loss of the run.

It only shows what it is told (the tab follows the job and calls it on the GUI thread), so the wording of every
state, and the rule that nothing runs down while a run is paused or over, live in one place.
"""

from __future__ import annotations

import math

from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

#: States in which the run trains, so speed and remaining time mean something.
RUNNING = ("starting", "running")
ENDED = ("finished", "cancelled", "failed")


def format_duration(seconds: float) -> str:
    """ETA text: '1:02:03', '4:05' or '–' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class RunStatus(QWidget):
    """The buttons, state line, progress bar and figures above the loss curves. ``state`` is the job's state as
    last shown; the tab connects the buttons and the log-scale box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ""
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start training with these settings (runs in the background)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause the run without losing anything; Resume continues it")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Save a checkpoint and end the run")
        self.state_label = QLabel("Ready to train.")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.state_label, 1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("No run yet")
        self.rate_label = QLabel("–")
        self.eta_label = QLabel("–")
        self.loss_label = QLabel("–")
        stats = QHBoxLayout()
        for caption, label in (("Speed", self.rate_label), ("Remaining", self.eta_label), ("Loss", self.loss_label)):
            cap = QLabel(caption + ":")
            cap.setEnabled(False)
            stats.addWidget(cap)
            stats.addWidget(label)
            stats.addSpacing(16)
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setToolTip("Logarithmic loss axis (losses that can be negative, like a WGAN's, drop out)")
        stats.addStretch(1)
        stats.addWidget(self.log_scale)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addLayout(stats)

    def begin(self, steps: int) -> None:
        """An empty bar for a run of ``steps`` steps."""
        self.progress.setFormat("step %v of %m")
        self.progress.setRange(0, max(1, int(steps)))
        self.progress.setValue(0)

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        if not running:
            self.pause_button.setText("Pause")

    def show_progress(self, event) -> None:
        """A ProgressEvent: the bar and the loss; speed and remaining time only while the run trains (a step that
        ended after Pause or Stop was pressed leaves them to the state line, see :meth:`show_state`)."""
        self.progress.setMaximum(max(1, int(event.total)))
        self.progress.setValue(int(event.step))
        headline = event.losses.get("loss", next(iter(event.losses.values()), float("nan")))
        self.loss_label.setText(f"{headline:.4g}")
        if self.state in RUNNING:
            self.rate_label.setText(f"{event.steps_per_s:,.1f} steps/s" if event.steps_per_s else "–")
            self.eta_label.setText(format_duration(event.eta_s))

    def show_end(self, step: int) -> None:
        """The bar ends at the step the run ended at."""
        self.progress.setMaximum(max(self.progress.maximum(), step))
        self.progress.setValue(step)

    def show_state(self, state: str, last_step: int) -> None:
        """The state line for the job's ``state``; paused and ended states name ``last_step``."""
        self.state = state
        if state not in RUNNING:  # nothing runs down while paused or after the end
            self.eta_label.setText("–")
            self.rate_label.setText("–")
        step = f" at step {last_step:,}" if last_step else ""
        texts = {
            "starting": "Starting… (opening the dataset and building the model)",
            "running": "Training…",
            "paused": f"Paused{step}.",
            "stopping": "Stopping: saving a checkpoint…",
            "cancelling": "Cancelling…",
            "finished": f"Finished{step}.",
            "cancelled": f"Cancelled{step}.",
            "failed": "Failed.",
        }
        if state != "failed" or not self.state_label.text().startswith("Failed"):
            self.state_label.setText(texts.get(state, state))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")

    def show_message(self, text: str) -> None:
        """Any other news for the state line (a failure's message, a checkpoint being loaded)."""
        self.state_label.setText(text)
