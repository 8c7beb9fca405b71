"""Hover and click on the latent plot: the nearest point under the cursor is found with one vectorised distance
computation (instead of pyqtgraph's per-point spot objects), previewed while hovered and, when clicked, put into
the composer's chosen slot. ``PointerActions`` is mixed into ``LatentPlotPanel``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QToolTip

from studio.ui.names import value_phrase

HIT_RADIUS_PX = 7.0


def nearest_point(xy: np.ndarray, x: float, y: float, pixel: tuple[float, float],
                  radius_px: float = HIT_RADIUS_PX) -> int | None:
    """Row of the point nearest to (x, y) in screen pixels, if it lies within ``radius_px``."""
    if len(xy) == 0 or pixel[0] <= 0 or pixel[1] <= 0:
        return None
    dx = (xy[:, 0] - x) / pixel[0]
    dy = (xy[:, 1] - y) / pixel[1]
    d2 = dx * dx + dy * dy
    k = int(np.argmin(d2))
    return k if d2[k] <= radius_px * radius_px else None


class PointerActions:
    """Hover preview and click-to-compose of ``LatentPlotPanel``."""

    def _point_under(self, scene_pos: QPointF) -> int | None:
        if len(self._xy) == 0 or not self.view_box.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.view_box.mapSceneToView(scene_pos)
        pw, ph = self.view_box.viewPixelSize()
        return nearest_point(self._xy, p.x(), p.y(), (abs(pw), abs(ph)))

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        row = self._point_under(scene_pos)
        if row == self._hovered:
            return
        self._hovered = row
        if row is None:
            self.hover_ring.setData(x=[], y=[])
            self.preview.set_image(None)
            self.preview_label.setText("hover a point to see its item")
            QToolTip.hideText()
            return
        self.hover_ring.setData(x=[float(self._xy[row, 0])], y=[float(self._xy[row, 1])])
        text = self.describe_item(int(self._indices[row]))
        self.preview.set_image(self.service.items.image(int(self._indices[row])))
        self.preview_label.setText(text.replace("\n", " · "))
        QToolTip.showText(QCursor.pos(), text, self.plot_widget)

    def describe_item(self, index: int) -> str:
        values = self.service.items.values(index)
        target = self.target_combo.currentText()
        return f"item {index}\n" + "\n".join(value_phrase(k, v) for k, v in values.items()) + \
            (f"\nclick: put into {target}" if target else "")

    def _on_mouse_clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        row = self._point_under(event.scenePos())
        if row is not None:
            event.accept()
            self.click_item(int(self._indices[row]))
        elif event.double() and self.view_box.sceneBoundingRect().contains(event.scenePos()):
            event.accept()
            self.reset_view()

    def click_item(self, index: int) -> None:
        """What a click on a point does: the item goes into the chosen slot."""
        target = self.target_combo.currentData()
        if target is not None:
            self.composer.set_slot_item(str(target), int(index))
