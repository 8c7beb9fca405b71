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
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QKeySequence, QPalette, QPixmapCache, QShortcut
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
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from studio.errors import StudioError
from studio.ui.composer import ComposerPanel, can_encode, cannot_encode_message
from studio.ui.image_view import ImageView
from studio.ui.names import attribute_title, slot_title, value_phrase
from studio.ui.workers import Newest, gui_callback, watch

MAX_POINTS = 20000
PATH_STEPS = 9
HIT_RADIUS_PX = 7.0
LEGEND_ROWS = 14         # legend entries at most (then "… N more")
GROUPS = 24             # colour groups (scatter items); attributes with more values colour the most frequent ones
OTHER = QColor(150, 150, 150)
PIXMAP_CACHE_KB = 128 * 1024  # room for GROUPS cached point layers of a large (or HiDPI) plot
NO_COLOUR = "(none)"
ARROW_SHARE = 0.3       # the longest direction arrow spans this share of the points' extent
DIRECTIONS_TIP = "draw each value's direction (linear SVM normal) as an arrow"
#: A qualitative palette (distinct hues, then lighter/darker variants) for attributes without their own colours.
QUALITATIVE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
               "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
               "#dbdb8d", "#9edae5")


def value_colours(n: int, rgb: tuple[tuple[int, int, int], ...] | None = None) -> list[QColor]:
    """One colour per attribute value: the attribute's own colours when it is a colour attribute (so 'red' is
    drawn red), else the qualitative palette, then evenly spaced hues for long vocabularies."""
    if rgb is not None and len(rgb) == n:
        return [QColor(*c) for c in rgb]
    if n <= len(QUALITATIVE):
        return [QColor(c) for c in QUALITATIVE[:n]]
    return [QColor.fromHsvF((k * 0.618034) % 1.0, 0.65, 0.9) for k in range(n)]


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


def colour_groups(codes: np.ndarray, values: tuple[str, ...], rgb: tuple[tuple[int, int, int], ...] | None = None,
                  groups: int = GROUPS) -> list[tuple[np.ndarray, QColor, str]]:
    """(rows, colour, legend label) per colour group, in value order. Each value present gets its own colour while
    they fit in ``groups``; otherwise the most frequent ``groups - 1`` do and the rest share one grey "other"."""
    codes = np.asarray(codes, np.int64)
    counts = np.bincount(codes, minlength=len(values))
    present = np.flatnonzero(counts)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(values) + 1))
    if len(present) <= groups:
        colours = value_colours(len(values), rgb)
        return [(order[bounds[v]:bounds[v + 1]], colours[v], values[v]) for v in present]
    top = np.sort(present[np.argsort(-counts[present], kind="stable")[: groups - 1]])
    colours = value_colours(len(top))
    out = [(order[bounds[v]:bounds[v + 1]], colours[k], values[v]) for k, v in enumerate(top)]
    rest = np.flatnonzero(~np.isin(codes, top))
    out.append((rest, OTHER, f"other ({len(present) - len(top)} values)"))
    return out


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


class LatentPlotPanel(QWidget):
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

    def cancel(self) -> None:
        self._projecting.cancel()
        if self._preliminary and self._projection is not None:
            self._keep_first_sample("cancelled")
        else:
            self._end_busy("projection cancelled; choose the slot again to retry")

    # --- model, slot, projection -------------------------------------------------------------------------
    def _service_key(self) -> tuple:
        model = self.service.model
        return (id(model), getattr(model, "path", None), id(self.service.items))

    def _on_model_or_dataset_changed(self, *_: Any) -> None:
        key = self._service_key()
        if key == self._model_key:
            return
        self._model_key = key
        self._projecting.cancel()  # a projection of the old latents must not land on the new dataset
        model, dataset = self.service.model, self.service.items
        for combo in (self.slot_combo, self.target_combo, self.colour_combo):
            combo.blockSignals(True)
            combo.clear()
        if model is not None:
            for spec in model.slots:
                self.slot_combo.addItem(slot_title(spec), spec.name)
                self.target_combo.addItem(slot_title(spec), spec.name)
        self.colour_combo.addItem(NO_COLOUR)
        if dataset is not None:
            for attribute in dataset.schema:
                self.colour_combo.addItem(attribute_title(attribute.name), attribute.name)
        for combo in (self.slot_combo, self.target_combo, self.colour_combo):
            combo.blockSignals(False)
        self._clear_plot()
        if model is None or dataset is None:
            what = "a model" if model is None else "a dataset"
            self.plot_item.setTitle(f"open {what} to see its latent space", size="10pt")
            return
        self._on_slot_chosen()

    def _on_slot_activated(self, slot: str) -> None:
        if self.follow_check.isChecked() and slot != self.slot:
            self.set_slot(slot)

    def _on_slot_chosen(self, *_: Any) -> None:
        slot = self.slot
        if slot is None or self.service.model is None or self.service.items is None:
            return
        attribute = next((s.attribute for s in self.service.model.slots if s.name == slot), None)
        if attribute and self.colour_combo.findData(attribute) >= 0:
            self.colour_combo.blockSignals(True)
            self.colour_combo.setCurrentIndex(self.colour_combo.findData(attribute))
            self.colour_combo.blockSignals(False)
        if self.follow_check.isChecked():  # clicks fill the slot on show, unless the user unhooked them
            k = self.target_combo.findData(slot)
            if k >= 0:
                self.target_combo.setCurrentIndex(k)
        self._clear_plot()
        self._sync_directions_check()
        if not can_encode(self.service.model):  # nothing to project: say why instead of a failed projection
            self._end_busy(cannot_encode_message(self.service.model))
            self.plot_item.setTitle("no latents to plot yet", size="10pt")
            return
        self._start_projection(slot)

    def _start_projection(self, slot: str) -> None:
        self._projecting.cancel()
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.plot_item.setTitle(f"projecting {attribute_title(slot)}…", size="10pt")
        self.status.setText("encoding and projecting the dataset's latents…")
        asked: list[Any] = []  # the future, once there is one: progress of a replaced projection is not shown
        progress = gui_callback(lambda *args: asked and self._projecting.is_newest(asked[0]) and
                                self._on_progress(*args), owner=self)
        preview = gui_callback(lambda p: asked and self._projecting.is_newest(asked[0]) and
                               self._on_projected(slot, p, preliminary=True), owner=self)
        future = self.service.project_async(slot, self.max_points, progress, preview=preview)
        asked.append(future)
        watch(future, lambda p: self._on_projected(slot, p), self._on_projection_failed, owner=self,
              newest=self._projecting)

    def _on_progress(self, *args: Any) -> None:
        if len(args) >= 2 and args[1]:
            fraction = float(args[0]) / float(args[1])
        elif args:
            fraction = float(args[0])
        else:
            return
        self.progress.setValue(round(100 * min(1.0, max(0.0, fraction))))

    def _on_projection_failed(self, error: BaseException) -> None:
        cancelled = type(error).__name__ == "Cancelled"
        if self._preliminary and self._projection is not None:
            self._keep_first_sample("cancelled" if cancelled else f"failed ({error})")
            return
        self._end_busy("projection cancelled" if cancelled else f"projection failed: {error}")
        self.plot_item.setTitle("cancelled" if cancelled else "projection failed", size="10pt")

    def _keep_first_sample(self, why: str) -> None:
        """A projection stopped after its first sample: those points stay, and title and status say so."""
        shown = len(self._projection.indices)
        self._end_busy(f"projection {why}: only the first {shown:,} items are shown; choose the slot again for all")
        self.plot_item.setTitle(f"{attribute_title(self._projection.slot)}: first {shown:,} items only", size="10pt")

    def _end_busy(self, text: str) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.status.setText(text)

    def _on_projected(self, slot: str, projection: Any, preliminary: bool = False) -> None:
        """Show a projection; a ``preliminary`` one (the first items, while the rest encode) keeps the progress
        bar and says more are coming. Both share one PCA, so the points stay where they are. One that arrives
        after the service swapped its model or dataset, but before the panel heard of it, is dropped: its indices
        belong to the old dataset."""
        if slot != self.slot or self._service_key() != self._model_key:
            return
        self._projection = projection
        self._preliminary = preliminary
        self._indices = np.asarray(projection.indices, np.int64)
        self._xy = np.asarray(projection.xy, np.float32).reshape(-1, 2)
        total = len(self.service.items) if self.service.items is not None else len(self._indices)
        shown = f"{len(self._indices):,} of {total:,} items" if len(self._indices) < total else f"{total:,} items"
        explained = getattr(projection, "explained", (0.0, 0.0))
        title = (f"{attribute_title(slot)}: {shown}, {projection.method.upper()}"
                 + (" (pooled)" if projection.pooled else ""))
        self.plot_item.setTitle(title + (", more coming…" if preliminary else ""), size="10pt")
        self.projection_label.setText(self._describe_projection(slot, projection))
        if preliminary:
            self.status.setText("a first sample is shown; encoding the rest…")
        else:
            self._end_busy("")  # the title, the axes and the projection label say what the service's note would
        # each axis names its share of the variance: a short title still fits a narrow panel
        shares = [f" ({share:.0%} of variance)" if sum(explained) > 0 else "" for share in explained[:2]]
        self.plot_item.setLabel("bottom", "PC 1" + shares[0])
        self.plot_item.setLabel("left", "PC 2" + shares[1])
        self._recolour()
        self.view_box.autoRange(items=self.groups)
        self._path_key = None
        self._on_composition(self.composer.composition)
        self._on_result(self.composer.result)
        self._update_directions()

    def _describe_projection(self, slot: str, projection: Any) -> str:
        """How one point comes from a latent: a spatial code is pooled (averaged over its positions) before the
        projection, a vector goes in whole; the text says which."""
        spec = next((s for s in self.service.model.slots if s.name == slot), None) if self.service.model else None
        method = projection.method.upper()
        if spec is None:
            return f"Each point: one item's {slot} code, projected to 2-D by {method}."
        if projection.pooled and len(spec.shape) == 3:
            c, h, w = spec.shape
            return (f"Each point: one item's {slot_title(spec).lower()} code, a spatial {c}×{h}×{w} tensor pooled "
                    "(averaged over "
                    f"its {h}×{w} positions) to {c} values, then projected to 2-D by {method}.")
        what = "spatial " + "×".join(map(str, spec.shape)) + " tensor flattened to" if spec.spatial else "vector of"
        return (f"Each point: one item's {slot_title(spec).lower()} code ({what} {spec.size} values), projected "
                f"to 2-D by {method}.")

    def _clear_plot(self) -> None:
        self.projection_label.setText("")
        self._projection = None
        self._preliminary = False
        self._xy = np.zeros((0, 2), np.float32)
        self._indices = np.zeros(0, np.int64)
        self._current_xy = None
        self._path_key = None
        for group in self.groups:
            group.setData(x=[], y=[])
        self.current.setData(x=[], y=[])
        self.edge_marker.setVisible(False)
        self.path.setData(x=[], y=[])
        self.hover_ring.setData(x=[], y=[])
        self._clear_arrows()
        self._show_legend([])

    # --- colours and legend ------------------------------------------------------------------------------
    def _recolour(self, *_: Any) -> None:
        """Split the points into colour groups (one scatter item each) and rebuild the legend."""
        dataset = self.service.items
        name = self.colour_attribute or ""
        entries: list[tuple[QColor, str]] = []
        n = len(self._indices)
        if dataset is None or n == 0 or name in ("", NO_COLOUR):
            groups = [(np.arange(n), OTHER, "")]
        else:
            attribute = dataset.schema[name]
            codes = np.asarray(dataset.codes[self._indices, dataset.schema.position(name)], np.int64)
            groups = colour_groups(codes, attribute.values, attribute.rgb)
        for item, (rows, colour, label) in zip(self.groups, groups):
            brush = self._brush(colour)
            item.setData(x=self._xy[rows, 0], y=self._xy[rows, 1], brush=brush)
            if label and len(entries) < LEGEND_ROWS:
                entries.append((colour, label))
        for item in self.groups[len(groups):]:
            item.setData(x=[], y=[])
        hidden = len([g for g in groups if g[2]]) - len(entries)
        self._show_legend(entries, hidden)

    def legend_entries(self) -> list[str]:
        """The labels the legend shows, in order (without the "… N more" note)."""
        return list(self._legend_entries)

    def _show_legend(self, entries: list[tuple[QColor, str]], hidden: int = 0) -> None:
        self._legend_entries = [label for _, label in entries]
        parts = [f'<span style="color:{colour.name()}; font-size:12pt;">●</span>&nbsp;{html.escape(label)}'
                 for colour, label in entries]
        if hidden > 0:
            parts.append(f"… {hidden} more")
        self.legend.setText("&nbsp;&nbsp; ".join(parts))
        self.legend.setVisible(bool(parts))

    def _on_colour_chosen(self, *_: Any) -> None:
        """Recolour; a slot without an attribute of its own draws the colour attribute's directions."""
        self._recolour()
        self._sync_directions_check()
        if self.directions_check.isChecked():
            self._update_directions()

    def _brush(self, colour: QColor) -> Any:
        """One QBrush object per colour for the plot's lifetime: pyqtgraph caches rendered symbols by brush object,
        so reusing them keeps recolouring cheap."""
        key = colour.rgb()
        brush = self._brushes.get(key)
        if brush is None:
            brush = self._brushes[key] = pg.mkBrush(colour.red(), colour.green(), colour.blue(), 210)
        return brush

    # --- the composition's point and path ----------------------------------------------------------------
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

    # --- directions -----------------------------------------------------------------------------------------
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
        from studio.ui.composer import direction_reach

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

    # --- hover and click ---------------------------------------------------------------------------------------
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
