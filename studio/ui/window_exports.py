"""Exporting from the main window: the composed image, or the A→B interpolation as a strip or an animated GIF.

A small dialog asks the scale (and the frame count) before the file dialog; an interpolation is made and written off
the GUI thread behind a progress dialog whose Cancel stops it between frames, so the window stays usable.
``WindowExports`` is mixed into ``MainWindow``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QProgressDialog,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.errors import StudioError
from studio.ui.dialog_parts import ok_cancel_buttons
from studio.ui.workers import gui_callback, watch


class ExportDialog(QDialog):
    """Scale (and frame count for strips and GIFs) before the file dialog."""

    def __init__(self, title: str, frames: int | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        # wide enough for the whole title in the title bar (window managers cut it to the dialog's width)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance(title) + 160)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(4)
        self.scale.setSuffix("×")
        self.scale.setToolTip("Enlarge with crisp pixels (model images are small)")
        form = QFormLayout()
        form.addRow("Scale", self.scale)
        self.frames = QSpinBox()
        self.frames.setRange(2, 240)
        self.frames.setValue(frames or 2)
        self.frames.setToolTip("Images from A to B")
        if frames is not None:
            form.addRow("Frames", self.frames)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(ok_cancel_buttons(self))


class WindowExports:
    """File ▸ Export… of ``MainWindow``; see the module docstring."""

    def _run_export(self, work: Callable[[], Any], what: str) -> None:
        try:
            written = work()
        except StudioError as e:
            self.reporter.report(e)
            return
        self.statusBar().showMessage(f"{what}: {written}", 6000)

    def _export_in_background(self, path: str, kind: str, frames: int, scale: int, what: str) -> Future | None:
        """Make and write an interpolation off the GUI thread; a progress dialog shows how far it is, and its
        Cancel stops it between frames. The window stays usable meanwhile."""
        dialog = QProgressDialog(f"{what.replace('Exported', 'Exporting')} to {Path(path).name}…", "Cancel", 0, 100,
                                 self)
        dialog.setWindowTitle("Export")
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumDuration(400)
        dialog.setValue(0)
        progress = gui_callback(lambda fraction: dialog.setValue(round(100 * fraction)), owner=dialog)
        try:
            future = self.composer.export_interpolation(path, kind, frames, scale=scale, progress=progress)
        except StudioError as e:
            dialog.deleteLater()
            self.reporter.report(e)
            return None
        self.export_future = future
        dialog.canceled.connect(future.cancel)

        def finished(written: Path) -> None:
            dialog.deleteLater()
            self.statusBar().showMessage(f"{what}: {written}", 6000)

        def failed(error: BaseException) -> None:
            dialog.deleteLater()
            self.reporter.report(error)

        def cancelled() -> None:
            dialog.deleteLater()
            self.statusBar().showMessage("Export cancelled; nothing was written", 6000)

        watch(future, finished, failed, owner=self, on_cancelled=cancelled)
        return future

    def _ask_export(self, title: str, frames: int | None, default_name: str,
                    file_filter: str) -> tuple[str, int, int] | None:
        dialog = ExportDialog(title, frames, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        start = self.start_folder("dirs/export") / default_name
        path, _ = QFileDialog.getSaveFileName(self, title, str(start), file_filter)
        if not path:
            return None
        self.settings.set_value("dirs/export", str(Path(path).parent))
        return path, dialog.scale.value(), dialog.frames.value()

    def export_image(self) -> None:
        chosen = self._ask_export("Export Image", None, "composition.png", "PNG images (*.png)")
        if chosen:
            path, scale, _ = chosen
            self._run_export(lambda: self.composer.export_image(path, scale=scale), "Exported image")

    def export_strip(self) -> None:
        chosen = self._ask_export("Export Interpolation Strip", 9, "interpolation.png", "PNG images (*.png)")
        if chosen:
            path, scale, frames = chosen
            self._export_in_background(path, "strip", frames, scale, "Exported strip")

    def export_gif(self) -> None:
        chosen = self._ask_export("Export Animated GIF", 24, "interpolation.gif", "GIF animations (*.gif)")
        if chosen:
            path, scale, frames = chosen
            self._export_in_background(path, "gif", frames, scale, "Exported GIF")
