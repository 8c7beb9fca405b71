"""A slot card's drop target: one source's thumbnail and caption, highlighted while a drop it can take hovers.

What a drop carries is decided by ``slot_edits.drop_payload``; the tile only reports it (``dropped``), so the
composer can turn files into sources off the GUI thread. A locked slot's tiles refuse every drop.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from studio.ui.image_view import ImageView
from studio.ui.slot_edits import drop_payload


class SourceTile(QFrame):
    """A drop target that shows one source's thumbnail and a caption."""

    dropped = Signal(list, list)  # item indices, image file paths

    def __init__(self, letter: str, placeholder: str, fingerprint: Callable[[], str], side: int = 72,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fingerprint = fingerprint
        self.locked = False  # the card's slot is locked: drops are refused (the card sets this)
        self.setAcceptDrops(True)
        self.setObjectName("sourceTile")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.view = ImageView(placeholder, side)
        self.view.setFixedSize(side, side)
        self.caption = QLabel("")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("color: palette(placeholder-text); font-size: 8pt;")
        self.caption.setFixedWidth(side + 8)
        self.letter = QLabel(letter)
        self.letter.setStyleSheet("font-weight: bold; font-size: 8pt;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(3, 2, 3, 2)
        lay.setSpacing(1)
        lay.addWidget(self.letter, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.view, 0, Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.caption, 0, Qt.AlignmentFlag.AlignCenter)
        self._set_highlight(False)

    def show_source(self, image: np.ndarray | None, caption: str, tooltip: str, dimmed: bool = False) -> None:
        self.view.set_image(image)
        self.view.set_dimmed(dimmed)
        # a caption wider than the tile loses its middle ("…"), not its ends; the tooltip keeps it whole
        width = self.caption.width() - 4
        self.caption.setText(self.caption.fontMetrics().elidedText(caption, Qt.TextElideMode.ElideMiddle, width))
        self.setToolTip(f"{caption}\n{tooltip}" if caption and self.caption.text() != caption else tooltip)

    def _set_highlight(self, on: bool) -> None:
        self.setStyleSheet("QFrame#sourceTile { border: 2px solid palette(highlight); border-radius: 4px; }" if on
                           else "QFrame#sourceTile { border: 1px dashed palette(mid); border-radius: 4px; }")

    # drag and drop -------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if self.locked or drop_payload(event.mimeData(), self._fingerprint()) is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self._set_highlight(True)

    def dragMoveEvent(self, event) -> None:
        if self.locked or drop_payload(event.mimeData(), self._fingerprint()) is None:
            event.ignore()
        else:
            event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self._set_highlight(False)

    def dropEvent(self, event) -> None:
        self._set_highlight(False)
        payload = None if self.locked else drop_payload(event.mimeData(), self._fingerprint())
        if payload is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.dropped.emit(*payload)
