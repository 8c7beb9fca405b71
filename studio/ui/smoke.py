"""``attribute-studio --smoke-test``: prove that an installed app (or a frozen bundle) really works.

It drives the real main window the way a first-time user would: open the default model (or ``--model``) on its
dataset (or ``--dataset``), let the composer show its first image, put another dataset item into the first slot
and wait for the composer's new image. Then it prints one summary line and the app exits 0. Any error dialog the
app would have shown ends the run with that message and a non-zero status, and a watchdog thread ends a run that
hangs (even one whose GUI thread is stuck), so a packaging check can never wait forever.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QGuiApplication

from studio.errors import StudioError
from studio.ui.workers import watch

DEFAULT_TIMEOUT_S = 120.0
EXIT_FAILED = 1
EXIT_TIMED_OUT = 3


class Watchdog:
    """Ends the process with ``EXIT_TIMED_OUT`` after ``seconds`` unless cancelled. A plain thread, not a Qt
    timer: a GUI thread stuck in a deadlock or a long torch call would never run a timer's slot."""

    def __init__(self, seconds: float, describe: Callable[[], str]) -> None:
        self.describe = describe  # what the run is waiting for, named in the message
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._seconds = seconds

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        print(f"smoke test FAILED: timed out after {self._seconds:g} s ({self.describe()})", file=sys.stderr,
              flush=True)
        os._exit(EXIT_TIMED_OUT)


class SmokeTest(QObject):
    """Drives ``window`` (a MainWindow) through open-model -> first image -> one edit -> new image, then closes
    it. ``exit_code`` is 0 after a success; the summary or the failure goes to stdout or stderr."""

    def __init__(self, window: Any, model: Path | None, dataset: str | None, started: float) -> None:
        super().__init__(window)
        self.window = window
        self.service = window.service
        self.composer = window.composer
        self.model_path = model
        self.dataset_spec = dataset
        self.started = started
        self.exit_code = EXIT_FAILED
        self.stage = "starting"
        self._finished = False
        self._images = 0
        self._last_status = ""
        self.composer.image_changed.connect(self._on_image)
        self.composer.status_changed.connect(self._on_status)
        window.reporter.reported.connect(self._on_error_reported)

    def describe(self) -> str:
        """Where the run is stuck (the watchdog prints it)."""
        status = f"; the composer says: {self._last_status}" if self._last_status else ""
        return f"still {self.stage}{status}"

    def start(self) -> None:
        if self.model_path is None:
            self.fail("no model to open: models/ holds no shipped model and there is no trained run; pass "
                      "--model PATH (a .safetensors checkpoint or a run folder)")
            return
        if self.dataset_spec:
            # Opened first, so the model composes on this dataset instead of the one it was trained on.
            self.stage = f"opening dataset {self.dataset_spec}"
            watch(self.service.open_dataset_async(self.dataset_spec), lambda _info: self._load_model(),
                  self._on_failure, owner=self)
        else:
            self._load_model()

    def _load_model(self) -> None:
        self.stage = f"loading model {self.model_path}"
        # start_session opens the model's own dataset (or the default one when the model names none).
        self.window.start_session(self.model_path, self.dataset_spec, prompt=False)

    # --- progress --------------------------------------------------------------------------------------------
    def _on_status(self, text: str) -> None:
        if text:
            self._last_status = text

    def _on_image(self, _image: Any) -> None:
        if self._finished:
            return
        self._images += 1
        if self._images == 1:
            self.stage = "composing after an edit"
            # Defer the edit: this handler runs inside the composer's own result delivery.
            QTimer.singleShot(0, self._edit_first_slot)
        else:
            self._check_and_finish()

    def _edit_first_slot(self) -> None:
        dataset = self.service.items
        names = self.composer.slot_names()
        if dataset is None or not names:
            self.fail(f"the composer has no slots or no dataset after the first image (slots: {names})")
            return
        try:
            self.composer.set_slot_item(names[0], len(dataset) // 2)
        except StudioError as e:
            self.fail(str(e))

    def _check_and_finish(self) -> None:
        image = self.composer.image
        model = self.service.model
        info = self.service.dataset_info
        if image is None or model is None or info is None:
            self.fail("the composer reported an image but shows none")
            return
        want = (model.resolution, model.resolution, 3)
        if tuple(image.shape) != want or str(image.dtype) != "uint8":
            self.fail(f"the composed image is {image.dtype} {tuple(image.shape)}, expected uint8 {want}")
            return
        seconds = time.perf_counter() - self.started
        shape = "x".join(str(n) for n in image.shape)
        print(f"smoke test passed: model={model.path} ({model.method}, step {model.step}) "
              f"dataset={info.spec} ({info.size} items) image={shape} device={model.device} "
              f"id={QGuiApplication.desktopFileName()} seconds={seconds:.1f}", flush=True)
        self.exit_code = 0
        self._close()

    # --- failures --------------------------------------------------------------------------------------------
    def _on_error_reported(self, message: str, details: str) -> None:
        self.fail(message + (f"\n{details}" if details else ""))

    def _on_failure(self, exc: BaseException) -> None:
        self.fail(str(exc) or type(exc).__name__)

    def fail(self, message: str) -> None:
        if self._finished:
            return
        print(f"smoke test FAILED while {self.stage}: {message}", file=sys.stderr, flush=True)
        self.exit_code = EXIT_FAILED
        self._close()

    def _close(self) -> None:
        self._finished = True
        for dialog in self.window.reporter.dialogs():
            dialog.close()
        QTimer.singleShot(0, self.window.close)
