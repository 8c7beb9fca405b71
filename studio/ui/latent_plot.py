"""The live latent plot: the dataset's latents of one slot in 2-D (the service's PCA), coloured by an attribute,
with the composition's current point, its A→B path and, optionally, the attribute directions as arrows.

Built to stay fluid with tens of thousands of points: every plot item is created once and fed with ``setData``.
Points share one pen; colours come from a small palette with one scatter item per colour group (each item has a
single brush), because a per-point brush array costs pyqtgraph a per-point style pass (about 0.5 s for 20,000
points here, against 0.08 s for the grouped items). Hover and click find the nearest point with one vectorised
distance computation instead of pyqtgraph's per-point spot objects. The point groups are cached as pixmaps
(``DeviceCoordinateCache``), so the current point, the path and the hover ring move over them on every slider
frame without redrawing the points (20,000 points: about 13 ms -> 2 ms per frame here; see
benchmarks/plot_update.py). Qt's pixmap cache must hold one viewport-sized pixmap per colour group for that, so
its limit is raised (pixmaps that evict each other would make every frame slower than no cache at all).

This module builds the panel and keeps its public calls; the behaviour lives beside it, each part in its own module:
the projection of the plotted slot (latent_plot_projection), the colour groups and legend (latent_plot_colours),
the composition's star, path and edge arrow (latent_plot_composition), the direction arrows
(latent_plot_directions) and hover and click (latent_plot_pointer).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeySequence, QPalette, QPixmapCache, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui.composer import ComposerPanel
from studio.ui.image_view import ImageView
from studio.ui.latent_plot_colours import (
    GROUPS,
    LEGEND_ROWS,
    NO_COLOUR,
    OTHER,
    QUALITATIVE,
    PointColours,
    colour_groups,
    value_colours,
)
from studio.ui.latent_plot_composition import PATH_STEPS, CompositionMarkers
from studio.ui.latent_plot_directions import ARROW_SHARE, DIRECTIONS_TIP, DirectionArrows, arrow_ends
from studio.ui.latent_plot_pointer import HIT_RADIUS_PX, PointerActions, nearest_point
from studio.ui.latent_plot_projection import SlotProjection
from studio.ui.workers import Newest, gui_callback

MAX_POINTS = 20000
#: room for GROUPS cached point layers of a large (or HiDPI) plot, about 5 MB each (a limit, not an allocation:
#: a layer is as large as its points' extent on screen)
PIXMAP_CACHE_KB = GROUPS * 5 * 1024

#: The names importers of this module have always found here (most now live in the modules above).
__all__ = ["ARROW_SHARE", "DIRECTIONS_TIP", "GROUPS", "HIT_RADIUS_PX", "LEGEND_ROWS", "MAX_POINTS", "NO_COLOUR",
           "OTHER", "PATH_STEPS", "PIXMAP_CACHE_KB", "QUALITATIVE", "LatentPlotPanel", "arrow_ends", "colour_groups",
           "nearest_point", "value_colours"]


class LatentPlotPanel(SlotProjection, PointColours, CompositionMarkers, DirectionArrows, PointerActions, QWidget):
    """See the module docstring. ``composer`` supplies the current composition and its results, and receives
    clicked items (``set_slot_item``)."""

    def __init__(self, service: Any, composer: ComposerPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.composer = composer
        self.max_points = MAX_POINTS
        self._projection: Any = None
        self._preliminary = False  # the plot shows a first sample while the rest encode
        self._xy = np.zeros((0, 2), np.float32)
        self._indices = np.zeros(0, np.int64)
        self._projecting = Newest()
        self._pathing = Newest()
        self._path_key: Any = None
        self._fitting = Newest()
        self._current_xy: np.ndarray | None = None
        self._hovered: int | None = None
        self._model_key: Any = None
        self._brushes: dict[int, Any] = {}
        self._build()
        self._relay_model = gui_callback(self._on_model_or_dataset_changed, owner=self)
        events, relay = self.service.events, self._relay_model
        events.model_changed.connect(relay)
        events.dataset_changed.connect(relay)
        self.destroyed.connect(lambda *_: [s.disconnect(relay, missing_ok=True)
                                           for s in (events.model_changed, events.dataset_changed)])
        # the composer's Qt-free model says what is on show; the relays skip a deleted plot
        shown = composer.model.events
        on_result, on_composition = gui_callback(self._on_result, self), gui_callback(self._on_composition, self)
        shown.result.connect(on_result)
        shown.composition.connect(on_composition)
        self.destroyed.connect(lambda *_: (shown.result.disconnect(on_result, missing_ok=True),
                                           shown.composition.disconnect(on_composition, missing_ok=True)))
        composer.slot_activated.connect(self._on_slot_activated)
        self._on_model_or_dataset_changed()

    # --- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.slot_combo = QComboBox()
        self.slot_combo.setToolTip("the slot whose latents are plotted")
        self.colour_combo = QComboBox()
        self.colour_combo.setToolTip("colour the points by this attribute's values")
        self.target_combo = QComboBox()
        self.target_combo.setToolTip("clicking a point puts that item into this slot of the composer")
        self.follow_check = QCheckBox("follow composer")
        self.follow_check.setChecked(True)
        self.follow_check.setToolTip("plot the slot whose card was last clicked in the composer, and let clicks "
                                     "put items into the plotted slot")
        self.directions_check = QCheckBox("directions")
        self.directions_check.setToolTip(DIRECTIONS_TIP)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("")
        self.status.setStyleSheet("color: palette(placeholder-text);")
        self.status.setWordWrap(True)
        self.preview = ImageView("", 48)
        self.preview.setFixedSize(48, 48)
        self.preview_label = QLabel("hover a point to see its item")
        self.preview_label.setStyleSheet("color: palette(placeholder-text);")
        self.preview_label.setWordWrap(True)
        # how a point comes from a latent (for spatial codes: pooled over space), next to the plot it explains
        self.projection_label = QLabel("")
        self.projection_label.setStyleSheet("color: palette(placeholder-text); font-size: 8pt;")
        self.projection_label.setWordWrap(True)

        # Three short rows rather than two long ones: the panel shares a 1366-px screen with two others.
        for combo in (self.slot_combo, self.colour_combo, self.target_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)  # "Background colour" reads whole at the default window size
        controls = QGridLayout()
        controls.setHorizontalSpacing(6)
        controls.setVerticalSpacing(2)
        controls.addWidget(QLabel("Slot"), 0, 0)
        controls.addWidget(self.slot_combo, 0, 1)
        controls.addWidget(self.follow_check, 0, 2)
        controls.addWidget(QLabel("Colour by"), 1, 0)
        controls.addWidget(self.colour_combo, 1, 1)
        controls.addWidget(self.directions_check, 1, 2)
        controls.addWidget(QLabel("Click sets"), 2, 0)
        controls.addWidget(self.target_combo, 2, 1)
        self.reset_view_button = QToolButton()
        self.reset_view_button.setText("Reset view")
        self.reset_view_button.setToolTip("show all the points and the composition again (Home, or double-click "
                                          "the plot background)")
        self.reset_view_button.clicked.connect(self.reset_view)
        controls.addWidget(self.reset_view_button, 2, 2)
        controls.setColumnStretch(1, 1)
        controls.setColumnStretch(2, 1)
        hover = QHBoxLayout()
        hover.setContentsMargins(0, 0, 0, 0)
        hover.addWidget(self.preview)
        hover.addWidget(self.preview_label, 1)
        status_row = QHBoxLayout()  # the progress of a projection shows beside what it is doing
        status_row.setContentsMargins(0, 0, 0, 0)
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.progress)
        status_row.addWidget(self.cancel_button)

        background = self.palette().color(QPalette.ColorRole.Base)
        foreground = self.palette().color(QPalette.ColorRole.Text)
        menus_before = set(QApplication.topLevelWidgets())
        self.plot_widget = pg.PlotWidget(background=background)
        for menu in set(QApplication.topLevelWidgets()) - menus_before:
            if isinstance(menu, QMenu):  # pyqtgraph's parentless context menus: let them die with this panel
                menu.setParent(self, menu.windowFlags())
        self.plot_widget.setMinimumSize(240, 200)
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.showGrid(x=True, y=True, alpha=0.15)
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()
        for axis in ("left", "bottom"):
            self.plot_item.getAxis(axis).setTextPen(foreground)
            self.plot_item.getAxis(axis).setPen(foreground)
            self.plot_item.getAxis(axis).enableAutoSIPrefix(False)
        self.view_box = self.plot_item.getViewBox()

        self._point_pen = pg.mkPen(None)
        QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), PIXMAP_CACHE_KB))
        self.groups = [pg.ScatterPlotItem(size=5, pen=self._point_pen, pxMode=True, hoverable=False)
                       for _ in range(GROUPS)]
        for group in self.groups:
            group.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            group.setZValue(0)
            group.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.plot_item.addItem(group)
        self.path = pg.PlotDataItem(pen=pg.mkPen(foreground, width=2, style=Qt.PenStyle.DashLine),
                                    symbol="o", symbolSize=5, symbolBrush=pg.mkBrush(foreground), symbolPen=None)
        self.hover_ring = pg.ScatterPlotItem(size=13, pen=pg.mkPen(foreground, width=2), brush=None)
        self.current = pg.ScatterPlotItem(size=18, symbol="star", pen=pg.mkPen("k", width=1.5),
                                          brush=pg.mkBrush("#ffd400"))
        self._arrow_shafts: list[pg.PlotDataItem] = []
        self._arrow_heads: list[pg.ArrowItem] = []
        self._arrow_labels: list[pg.TextItem] = []
        self._arrow_segments: list[tuple[QPointF, QPointF]] = []  # (start, tip) in view coordinates
        for item, z in ((self.path, 5), (self.hover_ring, 8),
                        (self.current, 10)):
            item.setZValue(z)
            self.plot_item.addItem(item)
        # The legend is a line of text under the plot, never over the points it explains.
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self._legend_entries: list[str] = []
        # Where the composition is when it lies off the plot: an arrow at the edge, pointing to it.
        self.edge_marker = pg.ArrowItem(headLen=16, tailLen=10, tailWidth=4, pen=pg.mkPen("k", width=1),
                                        brush=pg.mkBrush("#ffd400"))
        self.edge_marker.setZValue(11)
        self.edge_marker.setVisible(False)
        self.edge_marker.setToolTip("the composition lies off the plot in this direction; Reset view (Home) shows "
                                    "it and the data")
        self.plot_item.addItem(self.edge_marker, ignoreBounds=True)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(controls)
        lay.addWidget(self.plot_widget, 1)
        lay.addWidget(self.legend)
        lay.addWidget(self.projection_label)
        lay.addLayout(hover)
        lay.addLayout(status_row)

        self.slot_combo.currentIndexChanged.connect(self._on_slot_chosen)
        self.colour_combo.currentIndexChanged.connect(self._on_colour_chosen)
        self.directions_check.toggled.connect(self._update_directions)
        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view_box.sigTransformChanged.connect(self._orient_arrows)
        self.view_box.sigTransformChanged.connect(self._place_edge_marker)
        self.view_box.sigRangeChanged.connect(self._place_edge_marker)  # at once; the transform follows later
        home = QShortcut(QKeySequence(Qt.Key.Key_Home), self)
        home.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        home.activated.connect(self.reset_view)
        self.plot_widget.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    # --- public ----------------------------------------------------------------------------------
    @property
    def slot(self) -> str | None:
        data = self.slot_combo.currentData()
        return str(data) if data is not None else None

    def set_slot(self, slot: str) -> None:
        k = self.slot_combo.findData(slot)
        if k >= 0:
            self.slot_combo.setCurrentIndex(k)

    def set_colour_attribute(self, attribute: str | None) -> None:
        none = not attribute or attribute == NO_COLOUR
        k = self.colour_combo.findText(NO_COLOUR) if none else self.colour_combo.findData(attribute)
        if k >= 0:
            self.colour_combo.setCurrentIndex(k)

    @property
    def colour_attribute(self) -> str | None:
        """The attribute the points are coloured by (its internal name), or None."""
        data = self.colour_combo.currentData()
        return str(data) if data is not None else None

    @property
    def projection(self) -> Any:
        return self._projection

    @property
    def current_xy(self) -> np.ndarray | None:
        """Where the composition's current point is drawn, (2,) or None."""
        return None if self._current_xy is None else self._current_xy.copy()

    def path_xy(self) -> np.ndarray:
        x, y = self.path.getData()
        return np.zeros((0, 2)) if x is None else np.column_stack([x, y])

    def point_count(self) -> int:
        return len(self._xy)

    @property
    def preliminary(self) -> bool:
        """Whether the plot shows a first sample while the rest of its points still encode."""
        return self._preliminary

    def cancel(self) -> None:
        self._projecting.cancel()
        if self._preliminary and self._projection is not None:
            self._keep_first_sample("cancelled")
        else:
            self._end_busy("projection cancelled; choose the slot again to retry")
