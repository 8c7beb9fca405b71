"""A small widget that shows a numpy uint8 image scaled crisply (nearest neighbour), since model outputs are tiny
(16-128 px) and smoothing would hide exactly the detail a user is judging."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


def to_qimage(image: np.ndarray) -> QImage:
    """uint8 (H, W, 3) or (H, W) -> a QImage that owns its pixels (the numpy buffer may go away)."""
    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {array.dtype}")
    if array.ndim == 2:
        h, w = array.shape
        return QImage(array.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) image, got shape {array.shape}")
    h, w, c = array.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_RGBA8888
    return QImage(array.data, w, h, w * c, fmt).copy()


class ImageView(QWidget):
    """Paints one image, as large as fits while keeping its aspect, in whole-pixel steps when it is enlarged;
    shows ``placeholder`` text when there is no image."""

    def __init__(self, placeholder: str = "", side: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._array: np.ndarray | None = None
        self._placeholder = placeholder
        self._side = int(side)
        self._dimmed = False
        self.setMinimumSize(QSize(max(16, self._side // 2), max(16, self._side // 2)))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # --- content ---------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | None) -> None:
        self._array = None if image is None else np.asarray(image)
        self._image = None if image is None else to_qimage(image)
        self.update()

    def image(self) -> np.ndarray | None:
        return self._array

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def placeholder(self) -> str:
        return self._placeholder

    def set_dimmed(self, dimmed: bool) -> None:
        """Grey the picture out (a locked or inactive source) without hiding it."""
        self._dimmed = bool(dimmed)
        self.update()

    # --- Qt ----------------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(self._side, self._side)

    def target_rect(self) -> QRect:
        """Where the image lands: integer zoom when enlarging (crisp pixels), centred."""
        area = self.contentsRect()
        if self._image is None or self._image.width() == 0 or self._image.height() == 0:
            return area
        w, h = self._image.width(), self._image.height()
        scale = min(area.width() / w, area.height() / h)
        if scale >= 1:
            scale = float(int(scale))
        tw, th = max(1, int(w * scale)), max(1, int(h * scale))
        return QRect(area.x() + (area.width() - tw) // 2, area.y() + (area.height() - th) // 2, tw, th)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        base = self.palette().color(QPalette.ColorRole.Base)
        painter.fillRect(rect, base.darker(108))
        if self._image is None:
            painter.setPen(QPen(self.palette().color(QPalette.ColorRole.PlaceholderText)))
            painter.drawText(rect.adjusted(4, 4, -4, -4), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._placeholder)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(self.target_rect(), self._image)
            if self._dimmed:
                painter.fillRect(self.target_rect(), QColor(128, 128, 128, 150))
        painter.end()
