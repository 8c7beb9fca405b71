"""The attribute directions on the latent plot: one arrow per value, from the middle of the value centres along
the value's linear SVM normal, projected like the points.

The arrows are scaled together so that the longest spans a fixed share of the points' extent (they keep their
relative lengths, yet are neither lost in a dot nor far outside the points), and their heads and labels turn with
the view, because the axes have different scales. ``DirectionArrows`` is mixed into ``LatentPlotPanel``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QPalette

from studio.ui.composer_slots import direction_reach
from studio.ui.encoding_readiness import can_encode
from studio.ui.latent_plot_colours import NO_COLOUR, value_colours
from studio.ui.names import attribute_title
from studio.ui.workers import watch

ARROW_SHARE = 0.3       # the longest direction arrow spans this share of the points' extent
DIRECTIONS_TIP = "draw each value's direction (linear SVM normal) as an arrow"


def arrow_ends(start: np.ndarray, ends: np.ndarray, points: np.ndarray, share: float = ARROW_SHARE) -> np.ndarray:
    """Arrow tips scaled about ``start`` by one common factor, so that the longest arrow spans ``share`` of the
    points' extent (measured per axis, as the plot stretches its axes to fit): the arrows keep their relative
    lengths, yet are neither lost in a dot nor far outside the points."""
    start = np.asarray(start, np.float32)
    vectors = np.asarray(ends, np.float32) - start
    span = np.ptp(np.asarray(points, np.float32).reshape(-1, 2), axis=0) if len(points) else np.ones(2, np.float32)
    span = np.where(span > 0, span, 1.0)
    longest = float(np.hypot(*(vectors / span).T).max()) if len(vectors) else 0.0
    if longest <= 0 or not np.isfinite(longest):
        return start + vectors
    return (start + vectors * (share / longest)).astype(np.float32)


class DirectionArrows:
    """The direction arrows of ``LatentPlotPanel`` and the check box that offers them."""

    def _clear_arrows(self) -> None:
        for item in (*self._arrow_shafts, *self._arrow_heads, *self._arrow_labels):
            self.plot_item.removeItem(item)
        self._arrow_shafts.clear()
        self._arrow_heads.clear()
        self._arrow_labels.clear()
        self._arrow_segments.clear()

    def directions_attribute(self) -> str | None:
        """Whose directions the arrows show: the plotted slot's own attribute, else the one the points are coloured
        by (a content or quadrant code has no attribute of its own); None when neither exists."""
        model, dataset, slot = self.service.model, self.service.items, self.slot
        if model is None or dataset is None or slot is None or not can_encode(model):
            return None
        own = next((s.attribute for s in model.slots if s.name == slot), None)
        if own is not None and own in dataset.schema.names:
            return own
        colour = self.colour_attribute or ""
        return colour if colour not in ("", NO_COLOUR) and colour in dataset.schema.names else None

    def _sync_directions_check(self) -> str | None:
        """Offer the arrows only where there is an attribute to draw; the tooltip says why not."""
        attribute = self.directions_attribute()
        self.directions_check.setEnabled(attribute is not None)
        dataset = self.service.items
        if attribute is not None:
            self.directions_check.setToolTip(f"{DIRECTIONS_TIP}: one per value of {attribute_title(attribute)}")
        elif dataset is not None and len(dataset.schema) == 0:
            self.directions_check.setToolTip("the dataset has no attribute labels, so there are no directions")
        else:
            self.directions_check.setToolTip("this slot stands for no attribute: colour the points by one to see its "
                                             "directions")
        return attribute

    def _update_directions(self, *_: Any) -> None:
        slot = self.slot
        attribute = self.directions_attribute()
        if not self.directions_check.isChecked() or slot is None or self._projection is None or attribute is None:
            self._fitting.cancel()
            self._clear_arrows()
            return
        self.status.setText("fitting attribute directions…")
        watch(self.service.directions_async(slot, attribute), lambda d: self._draw_directions(slot, d),
              self._directions_failed, owner=self, newest=self._fitting)

    def _directions_failed(self, error: BaseException) -> None:
        self._clear_arrows()
        self.status.setText(f"no directions: {error}")

    def _draw_directions(self, slot: str, directions: Any) -> None:
        if slot != self.slot:
            return
        self._clear_arrows()
        present = [k for k in range(len(directions.values)) if directions.counts[k] > 0]
        if not present:
            return
        centres = np.asarray(directions.centres, np.float32)[present]
        middle = centres.mean(axis=0)
        reach = 0.5 * direction_reach(directions)
        tips = middle[None] + reach * np.asarray(directions.directions, np.float32)[present]
        xy = np.asarray(self.service.project_latent(slot, np.vstack([middle[None], tips])), np.float32)
        start, ends = xy[0], arrow_ends(xy[0], xy[1:], self._xy)
        colour_by = self.colour_attribute
        colours = (value_colours(len(directions.values), self.service.items.schema[directions.attribute].rgb)
                   if colour_by == directions.attribute else None)
        background = self.palette().color(QPalette.ColorRole.Base)
        for row, k in enumerate(present):
            end = ends[row]
            colour = colours[k] if colours is not None else self.palette().color(QPalette.ColorRole.Text)
            x, y = [float(start[0]), float(end[0])], [float(start[1]), float(end[1])]
            # a halo in the background colour keeps an arrow legible over points of its own colour
            halo = pg.PlotDataItem(x=x, y=y, pen=pg.mkPen(background, width=5))
            shaft = pg.PlotDataItem(x=x, y=y, pen=pg.mkPen(colour, width=2))
            halo.setZValue(5.5)
            shaft.setZValue(6)
            for item in (halo, shaft):
                self.plot_item.addItem(item)
                self._arrow_shafts.append(item)
            head = pg.ArrowItem(pos=(float(end[0]), float(end[1])), headLen=12, tailLen=0,
                                brush=pg.mkBrush(colour), pen=pg.mkPen(colour))
            head.setZValue(7)
            label = pg.TextItem(directions.values[k], color=colour, fill=pg.mkBrush(
                background.red(), background.green(), background.blue(), 190))
            label.setPos(float(end[0]), float(end[1]))
            label.setZValue(7)
            self.plot_item.addItem(head)
            self.plot_item.addItem(label)
            self._arrow_heads.append(head)
            self._arrow_labels.append(label)
            self._arrow_segments.append((QPointF(float(start[0]), float(start[1])), QPointF(float(end[0]),
                                                                                              float(end[1]))))
        self._orient_arrows()
        self.status.setText(f"arrows: direction of each {attribute_title(directions.attribute)} value in "
                            f"{attribute_title(slot)} (linear SVM "
                            f"normal, accuracy {directions.accuracy:.0%}), from the middle of the value centres; "
                            "lengths scaled together to fit the plot")

    def _orient_arrows(self, *_: Any) -> None:
        """Point each arrow head along its shaft as drawn on screen (the axes have different scales, so the angle
        depends on the view), and put its label beyond the tip, where it covers neither the shaft nor the head."""
        for head, label, (start, end) in zip(self._arrow_heads, self._arrow_labels, self._arrow_segments):
            a, b = self.view_box.mapViewToScene(start), self.view_box.mapViewToScene(end)
            dx, dy = b.x() - a.x(), b.y() - a.y()
            norm = float(np.hypot(dx, dy))
            head.setStyle(angle=float(np.degrees(np.arctan2(-dy, -dx))))
            ux, uy = (dx / norm, dy / norm) if norm > 0 else (0.0, -1.0)
            label.setAnchor((0.5 - 0.6 * ux, 0.5 - 0.6 * uy))
