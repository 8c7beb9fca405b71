"""The main window's status bar: what is loaded (model, dataset, device) and what is going on (background work
and the training run), in permanent labels beside the transient messages.

``WindowStatusBar`` is mixed into ``MainWindow``; the window calls its updates when the service or the training tab
reports a change.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel

from studio.ui.training_tab import format_duration


class WindowStatusBar:
    """The permanent labels of ``MainWindow``'s status bar."""

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel()
        self.device_label = QLabel()
        self.dataset_label = QLabel()
        self.activity_label = QLabel()
        self.activity_label.setMinimumWidth(220)
        for label in (self.activity_label, self.model_label, self.dataset_label, self.device_label):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)
        self._busy_text = ""
        self._training_text = ""
        self._update_model_label()
        self._update_dataset_label()
        self._update_activity()

    def _update_model_label(self) -> None:
        model = self.service.model
        if model is None:
            self.model_label.setText("Model: none")
            self.model_label.setToolTip("Open a model (File ▸ Open Model) or train one (Train tab)")
            self.setWindowTitle("Attribute Studio")
        else:
            step = "" if "step" in model.title else f" · step {model.step:,}"
            self.model_label.setText(f"Model: {model.title}{step}")
            tip = str(model.path)
            if getattr(model, "dataset_warning", ""):
                tip += "\n⚠ " + model.dataset_warning
            self.model_label.setToolTip(tip)
            self.setWindowTitle(f"Attribute Studio — {model.title}")
        self.device_label.setText(f"Device: {getattr(self.service, 'device', '?')}")

    def _update_dataset_label(self) -> None:
        info = getattr(self.service, "dataset_info", None)
        dataset = self.service.items
        if dataset is None:
            self.dataset_label.setText("Dataset: none")
        else:
            spec = info.spec if info is not None else dataset.spec
            self.dataset_label.setText(f"Dataset: {spec} · {len(dataset):,} items")

    def _update_activity(self) -> None:
        text = self._training_text or ""
        if self._busy_text:
            text = f"{self._busy_text[0].upper()}{self._busy_text[1:]}…" + (f"  ·  {text}" if text else "")
        self.activity_label.setText(text or "Idle")

    def _on_busy(self, text: str) -> None:
        self._busy_text = text
        self._update_activity()

    def _on_job_started(self, job: Any) -> None:
        self._training_text = "Training: starting"
        self._update_activity()

    def _on_training_progress(self, event: Any) -> None:
        rate = f" · {event.steps_per_s:,.1f} steps/s · {format_duration(event.eta_s)} left" if event.steps_per_s else ""
        self._training_text = f"Training: step {event.step:,}/{event.total:,}{rate}"
        self._update_activity()
