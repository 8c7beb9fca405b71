"""Plain helpers the UI tests share (fixtures live in conftest.py): a drag and drop delivered as Qt would, and an
item that differs from another in every attribute."""

from __future__ import annotations

import warnings

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget


def drop(target: QWidget, mime: QMimeData) -> bool:
    """What a drag and drop onto ``target`` delivers; False when the drag-enter is refused."""
    with warnings.catch_warnings():  # PySide marks Qt's only QDragEnterEvent constructor deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, event)
    return True


def drop_files(target: QWidget, paths: list[str]) -> bool:
    """``drop`` of files, as a file manager drags them."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    return drop(target, mime)


def other_item(service, item: int) -> int:
    """An item that differs from ``item`` in every attribute (so any slot it goes into gets another value)."""
    codes = service.dataset.codes
    return int(np.flatnonzero((codes != codes[item]).all(axis=1))[0])
