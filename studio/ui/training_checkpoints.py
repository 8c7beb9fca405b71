"""The Training tab's checkpoint picker: the run's checkpoints, newest first, to use in the composer or find on disk.

A run prunes its older checkpoints as it goes, so the list drops entries whose files are gone whenever a new one
arrives; loading the chosen one into the service is the tab's business (``use_requested``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPainter, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget


class PlaceholderList(QListWidget):
    """A list that says what will appear in it while it is empty."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._placeholder = placeholder

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            painter.end()


class CheckpointPicker(QWidget):
    """The checkpoint list with "Use in composer" and "Open run folder". ``use_requested`` fires on the button or a
    double-click; ``run_folder`` is the followed run's folder (opened when no checkpoint is selected)."""

    use_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_folder: Path | None = None
        self.list = PlaceholderList("Checkpoints of the run are listed here")
        self.list.setToolTip("Checkpoints of this run, newest first; double-click to use one")
        self.list.itemDoubleClicked.connect(lambda _item: self.use_requested.emit())
        self.list.currentItemChanged.connect(lambda *_: self.update_buttons())
        self.use_button = QPushButton("Use in composer")
        self.use_button.setToolTip("Load the selected checkpoint and show it in the composer")
        self.use_button.clicked.connect(lambda: self.use_requested.emit())
        self.open_folder_button = QPushButton("Open run folder")
        self.open_folder_button.clicked.connect(self._on_open_folder)
        ckpt_buttons = QHBoxLayout()
        ckpt_buttons.addWidget(self.use_button)
        ckpt_buttons.addWidget(self.open_folder_button)
        ckpt_layout = QVBoxLayout(self)
        ckpt_layout.setContentsMargins(0, 0, 0, 0)
        ckpt_layout.addWidget(QLabel("Checkpoints"))
        ckpt_layout.addWidget(self.list, 1)
        ckpt_layout.addLayout(ckpt_buttons)
        self.update_buttons()

    def begin(self, run_folder: Path) -> None:
        """An empty list for the run in ``run_folder``."""
        self.run_folder = run_folder
        self.list.clear()

    def add(self, step: int, path: Path) -> None:
        """List ``path`` first, dropping an older entry of it and entries whose files were pruned."""
        for row in range(self.list.count() - 1, -1, -1):
            existing = Path(self.list.item(row).data(Qt.ItemDataRole.UserRole))
            if existing == path or not existing.exists():
                self.list.takeItem(row)
        item = QListWidgetItem(f"step {step:,}  ·  {path.name}")
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        self.list.insertItem(0, item)
        if self.list.currentRow() < 0 or self.list.currentRow() == 1:
            self.list.setCurrentRow(0)
        self.update_buttons()

    @staticmethod
    def step_of(path: Path) -> int:
        digits = "".join(ch for ch in Path(path).stem if ch.isdigit())
        return int(digits) if digits else 0

    def selected(self) -> Path | None:
        item = self.list.currentItem()
        return Path(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def update_buttons(self) -> None:
        has = self.list.currentItem() is not None
        self.use_button.setEnabled(has)
        self.open_folder_button.setEnabled(has or self.run_folder is not None)

    def _on_open_folder(self) -> None:
        path = self.selected()
        folder = path.parent.parent if path is not None else self.run_folder
        if folder is not None and folder.exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
