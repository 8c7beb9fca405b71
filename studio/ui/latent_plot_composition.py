"""Where the composition is on the latent plot: its current point (a star), the A→B path of the plotted slot and,
when the star lies off the visible range, an arrow at the edge of the view pointing to it.

The path is made of latents only (the slot's latent at a few t between A and B, nothing decoded), so it follows a
slider drag cheaply. ``CompositionMarkers`` is mixed into ``LatentPlotPanel``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF

from studio.errors import StudioError
from studio.ui.workers import watch

PATH_STEPS = 9


class CompositionMarkers:
    """The star, the path and the edge arrow of ``LatentPlotPanel``, and the view reset that brings both back."""

    def _on_result(self, result: Any) -> None:
        slot = self.slot
        if result is None or slot is None or self._projection is None:
            return
        latent = result.latents.get(slot) if hasattr(result, "latents") else None
        if latent is None:
            return
        try:
            xy = np.asarray(self.service.project_latent(slot, np.asarray(latent, np.float32)[None]), np.float32)[0]
        except StudioError:  # the model changed under a late result; the next projection brings a new point
            return
        self._current_xy = xy
        self.current.setData(x=[float(xy[0])], y=[float(xy[1])])
        self._place_edge_marker()

    def _on_composition(self, composition: Any) -> None:
        slot = self.slot
        if slot is None or self._projection is None:
            return
        value = composition.slot(slot)
        key = (slot, value.a, value.b, value.steps, composition.base if value.a is None else None)
        if key == self._path_key:
            return
        self._path_key = key
        if value.b is None:
            self._pathing.cancel()
            self.path.setData(x=[], y=[])
            return
        # the slot's latent at a few t between A and B, everything else as it is: latents only, nothing decoded
        watch(self.service.slot_path_async(composition, slot, PATH_STEPS), self._on_path,
              lambda _e: self._on_path(None), owner=self, newest=self._pathing)

    def _on_path(self, xy: np.ndarray | None) -> None:
        if xy is None or len(xy) == 0:
            self.path.setData(x=[], y=[])
        else:
            self.path.setData(x=xy[:, 0], y=xy[:, 1])

    def reset_view(self) -> None:
        """Fit the view to the points and the composition's star (a stray drag or a far direction step can leave
        either off the plot)."""
        if len(self._xy) == 0:
            return
        points = self._xy if self._current_xy is None else np.vstack([self._xy, self._current_xy[None]])
        lo, hi = points.min(axis=0), points.max(axis=0)
        pad = np.maximum((hi - lo) * 0.05, 1e-6)
        self.view_box.setRange(xRange=(float(lo[0] - pad[0]), float(hi[0] + pad[0])),
                               yRange=(float(lo[1] - pad[1]), float(hi[1] + pad[1])), padding=0)

    def star_off_plot(self) -> bool:
        """Whether the composition's point lies outside the visible range (the edge arrow then points to it)."""
        if self._current_xy is None:
            return False
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        x, y = float(self._current_xy[0]), float(self._current_xy[1])
        return not (x0 <= x <= x1 and y0 <= y <= y1)

    def _place_edge_marker(self, *_: Any) -> None:
        """Put the arrow at the edge of the view nearest the way to the star, pointing at it."""
        if not self.star_off_plot():
            self.edge_marker.setVisible(False)
            return
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        pw, ph = (abs(v) for v in self.view_box.viewPixelSize())
        margin_x, margin_y = 14 * pw, 14 * ph
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        target = np.asarray(self._current_xy, np.float64)
        offset = target - centre
        half = np.array([(x1 - x0) / 2 - margin_x, (y1 - y0) / 2 - margin_y])
        scale = min(half[k] / abs(offset[k]) if abs(offset[k]) > 0 else np.inf for k in range(2))
        edge = centre + offset * min(1.0, max(0.0, float(scale)))
        a = self.view_box.mapViewToScene(QPointF(float(edge[0]), float(edge[1])))
        b = self.view_box.mapViewToScene(QPointF(float(target[0]), float(target[1])))
        dx, dy = b.x() - a.x(), b.y() - a.y()
        self.edge_marker.setPos(float(edge[0]), float(edge[1]))
        self.edge_marker.setStyle(angle=float(np.degrees(np.arctan2(-dy, -dx))))
        self.edge_marker.setVisible(True)
