"""The dataset browser: a virtualised thumbnail grid with attribute facets and the selected item's details.

Scale is the design constraint: the full Fonts set has ~309k items (1.4M with user fonts). The grid is a
``QListView`` over a ``QAbstractListModel`` whose rows are just a numpy array of item indices; a thumbnail is made
only when the view asks for it, off the GUI thread, and kept in a bounded LRU. Requests are served newest first
and old ones dropped, so fast scrolling renders what is on screen now, not what flew past. The layout runs in
batches, so even a million rows never stall the window. Facet counts are numpy on the code table.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QObject,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.data.schema import AttributeSchema
from studio.service.items import DatasetItems
from studio.ui import mime
from studio.ui.image_view import ImageView, to_qimage
from studio.ui.workers import gui_callback

ITEM_INDEX_ROLE = Qt.ItemDataRole.UserRole + 1
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_ROOT = QModelIndex()


# --- facets (pure numpy) ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FacetResult:
    """Items that pass every filter, and for each attribute the count of each value among items that pass every
    *other* filter (so a facet shows what choosing another of its values would give)."""

    indices: np.ndarray  # int64, ascending
    counts: list[np.ndarray]  # one int64 array per attribute, length = cardinality


class FacetIndex:
    """Facet filtering over an ``(n, m)`` code table; one contiguous column per attribute for fast compares."""

    def __init__(self, codes: np.ndarray, cardinalities: Sequence[int]) -> None:
        self._columns = [np.ascontiguousarray(codes[:, j]) for j in range(codes.shape[1])]
        self._cardinalities = [int(c) for c in cardinalities]
        self._n = int(codes.shape[0])
        self._all = np.arange(self._n, dtype=np.int64)
        self._unfiltered_counts = [np.bincount(col, minlength=c).astype(np.int64)
                                   for col, c in zip(self._columns, self._cardinalities)]

    def __len__(self) -> int:
        return self._n

    def apply(self, selection: dict[int, int]) -> FacetResult:
        """``selection`` maps attribute position -> chosen value code; absent attributes are unfiltered."""
        active = {j: v for j, v in selection.items() if v is not None and v >= 0}
        if not active:
            return FacetResult(self._all, list(self._unfiltered_counts))
        masks = {j: self._columns[j] == v for j, v in active.items()}
        counts = []
        for j, (col, card) in enumerate(zip(self._columns, self._cardinalities)):
            others = [m for k, m in masks.items() if k != j]
            if not others:
                counts.append(self._unfiltered_counts[j])
                continue
            keep = others[0].copy()
            for m in others[1:]:
                keep &= m
            counts.append(np.bincount(col[keep], minlength=card).astype(np.int64))
        every = None
        for m in masks.values():
            every = m.copy() if every is None else every & m
        assert every is not None
        return FacetResult(np.flatnonzero(every).astype(np.int64), counts)


# --- thumbnails -----------------------------------------------------------------------------------------
class ThumbnailCache:
    """A bounded LRU of pixmaps keyed by item index (GUI thread only, like every QPixmap)."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = int(capacity)
        self._items: OrderedDict[int, QPixmap] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, index: int) -> bool:
        return index in self._items

    def get(self, index: int) -> QPixmap | None:
        hit = self._items.get(index)
        if hit is not None:
            self._items.move_to_end(index)
        return hit

    def put(self, index: int, pixmap: QPixmap) -> None:
        self._items[index] = pixmap
        self._items.move_to_end(index)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


def render_thumbnails(dataset: DatasetItems, indices: Sequence[int], size: int) -> list[tuple[int, QImage]]:
    """Make thumbnails (worker thread: QImage is safe off the GUI thread, QPixmap is not)."""
    out = []
    for index in indices:
        time.sleep(0)  # hand the GIL to the GUI thread between items: scrolling stays smooth while we render
        image = to_qimage(dataset.image(int(index)))
        if image.width() != size or image.height() != size:
            mode = (Qt.TransformationMode.FastTransformation if size >= image.width()
                    else Qt.TransformationMode.SmoothTransformation)
            image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, mode)
        out.append((int(index), image))
    return out


class _RenderedRelay(QObject):
    """Carries finished thumbnails from pool threads to the model (a queued signal does the thread hop)."""

    rendered = Signal(int, object)  # generation, list[(index, QImage)]


class _RenderJob(QRunnable):
    def __init__(self, relay: _RenderedRelay, generation: int, dataset: DatasetItems, indices: list[int],
                 size: int) -> None:
        super().__init__()
        self._relay, self._generation, self._dataset = relay, generation, dataset
        self._indices, self._size = indices, size

    def run(self) -> None:
        try:
            result = render_thumbnails(self._dataset, self._indices, self._size)
        except Exception:  # a broken item must not kill the pool; it stays a placeholder
            result = []
        with contextlib.suppress(RuntimeError):  # the model went away meanwhile
            self._relay.rendered.emit(self._generation, result)


class ThumbnailModel(QAbstractListModel):
    """Rows are item indices (a numpy array); decorations are thumbnails made on demand.

    ``data(DecorationRole)`` never renders: on a miss it queues the item and returns a shared placeholder. Queued
    items go to a small thread pool in batches, newest request first; only ``max_pending`` requests are kept, so
    what scrolled past is forgotten. ``pending``/``in_flight`` let tests wait for quiet.
    """

    thumbnails_ready = Signal()  # emitted after a batch of thumbnails was stored

    def __init__(self, parent: QObject | None = None, *, thumbnail_size: int = 64, cache_items: int = 4096,
                 batch_size: int = 24, max_pending: int = 768, threads: int | None = None) -> None:
        super().__init__(parent)
        self._dataset: DatasetItems | None = None
        self._rows = np.zeros(0, dtype=np.int64)
        self._identity = True
        self._size = int(thumbnail_size)
        self._cache = ThumbnailCache(cache_items)
        self._pending: OrderedDict[int, None] = OrderedDict()
        self._in_flight = 0
        self._generation = 0
        self._batch_size = int(batch_size)
        self._max_pending = int(max_pending)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads or 1)
        self._relay = _RenderedRelay(self)
        self._relay.rendered.connect(self._on_rendered, Qt.ConnectionType.QueuedConnection)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(0)
        self._flush_timer.timeout.connect(self._flush)
        self._placeholder = self._make_placeholder()
        self._fingerprint = ""

    # --- content ---------------------------------------------------------------------------------------
    @property
    def dataset(self) -> DatasetItems | None:
        return self._dataset

    def set_dataset(self, dataset: DatasetItems | None, rows: np.ndarray | None = None) -> None:
        self.beginResetModel()
        self._dataset = dataset
        self._fingerprint = dataset.fingerprint if dataset is not None else ""
        self._invalidate()
        if dataset is None:
            self._set_rows(np.zeros(0, dtype=np.int64))
        else:
            self._set_rows(np.arange(len(dataset), dtype=np.int64) if rows is None else rows)
        self.endResetModel()

    def set_rows(self, rows: np.ndarray) -> None:
        """Show these items (ascending indices); cached thumbnails stay valid."""
        self.beginResetModel()
        self._set_rows(rows)
        self._pending.clear()
        self.endResetModel()

    def _set_rows(self, rows: np.ndarray) -> None:
        self._rows = np.asarray(rows, dtype=np.int64)
        n = len(self._dataset) if self._dataset is not None else 0
        self._identity = len(self._rows) == n and (n == 0 or (self._rows[0] == 0 and self._rows[-1] == n - 1))

    def rows(self) -> np.ndarray:
        return self._rows

    def thumbnail_size(self) -> int:
        return self._size

    def set_thumbnail_size(self, size: int) -> None:
        if int(size) == self._size:
            return
        self._size = int(size)
        self._placeholder = self._make_placeholder()
        self._invalidate()
        if self.rowCount():
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1),
                                  [Qt.ItemDataRole.DecorationRole])

    def _invalidate(self) -> None:
        self._generation += 1
        self._pending.clear()
        self._cache.clear()

    def item_at(self, row: int) -> int:
        return int(self._rows[row])

    def row_of(self, item: int) -> int | None:
        """Row showing dataset item ``item`` (binary search; rows are ascending), or None if filtered out."""
        if self._identity:
            return item if 0 <= item < len(self._rows) else None
        pos = int(np.searchsorted(self._rows, item))
        return pos if pos < len(self._rows) and self._rows[pos] == item else None

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def cached(self, item: int) -> bool:
        return item in self._cache

    def shutdown(self) -> None:
        """Stop rendering and wait for the pool (before the model goes away)."""
        self._generation += 1
        self._pending.clear()
        self._flush_timer.stop()
        self._pool.clear()
        self._pool.waitForDone()

    # --- Qt model ------------------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        row = index.row()
        if not index.isValid() or row >= len(self._rows):
            return None
        item = int(self._rows[row])
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self._cache.get(item)
            if pixmap is None:
                self._request(item)
                return self._placeholder
            return pixmap
        if role == ITEM_INDEX_ROLE:
            return item
        if role == Qt.ItemDataRole.ToolTipRole and self._dataset is not None:
            values = self._dataset.values(item)
            return f"item {item}\n" + "\n".join(f"{k.replace('_', ' ')}: {v}" for k, v in values.items())
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(self._size, self._size)
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return [mime.ITEMS_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        items = sorted({int(self._rows[i.row()]) for i in indexes if i.isValid()})
        return mime.encode_items(items, self._fingerprint)

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # --- lazy rendering ----------------------------------------------------------------------------------
    def _request(self, item: int) -> None:
        self._pending[item] = None
        self._pending.move_to_end(item)
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush(self) -> None:
        if self._dataset is None:
            self._pending.clear()
            return
        while self._pending and self._in_flight < self._pool.maxThreadCount():
            batch = []
            while self._pending and len(batch) < self._batch_size:
                item, _ = self._pending.popitem(last=True)
                if item not in self._cache:
                    batch.append(item)
            if not batch:
                break
            self._in_flight += 1
            self._pool.start(_RenderJob(self._relay, self._generation, self._dataset, batch, self._size))

    @Slot(int, object)
    def _on_rendered(self, generation: int, result: list[tuple[int, QImage]]) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        if generation == self._generation and result:
            rows = []
            for item, image in result:
                self._cache.put(item, QPixmap.fromImage(image))
                row = self.row_of(item)
                if row is not None:
                    rows.append(row)
            if rows:
                self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)),
                                      [Qt.ItemDataRole.DecorationRole])
            self.thumbnails_ready.emit()
        if self._pending:
            self._flush()

    def _make_placeholder(self) -> QPixmap:
        pixmap = QPixmap(self._size, self._size)
        pixmap.fill(QColor(128, 128, 128, 48))
        return pixmap


# --- widgets ----------------------------------------------------------------------------------------------
def _swatch(rgb: tuple[int, int, int], size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


class FacetPanel(QWidget):
    """One drop-down per attribute ("Any" or a value, each with its count) and a Clear button."""

    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._schema: AttributeSchema | None = None
        self._combos: list[QComboBox] = []
        self._labels: list[QLabel] = []
        self._columns = 0
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(8)
        self._grid.setVerticalSpacing(4)
        self.clear_button = QPushButton("Clear filters")
        self.clear_button.setToolTip("Show every item again")
        self.clear_button.clicked.connect(self.clear)
        self.clear_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._grid)

    def set_schema(self, schema: AttributeSchema | None) -> None:
        self._grid.removeWidget(self.clear_button)  # kept: it is the panel's own, not the schema's
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._combos = []
        self._labels = []
        self._columns = 0
        self._schema = schema
        # a dataset without labels (an unlabelled folder) has nothing to filter by: no idle Clear button either
        self.clear_button.setVisible(schema is not None and len(schema) > 0)
        if schema is None:
            return
        for attribute in schema:
            label = QLabel(attribute.name.replace("_", " ").capitalize())
            combo = QComboBox()
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            combo.setMaxVisibleItems(20)
            combo.setToolTip(f"Show only items with this {attribute.name.replace('_', ' ')}")
            combo.addItem("Any", -1)
            for code, value in enumerate(attribute.values):
                if attribute.rgb is not None:
                    combo.addItem(_swatch(attribute.rgb[code]), value, code)
                else:
                    combo.addItem(value, code)
            combo.currentIndexChanged.connect(self._on_combo_changed)
            self._combos.append(combo)
            self._labels.append(label)
        self._arrange(self._columns_for(self.width()))

    # --- layout: two columns of filters when wide enough, one when the panel is narrow ---------------------------
    def _one_column_width(self) -> int:
        label = max((w.sizeHint().width() for w in self._labels), default=0)
        combo = max((w.minimumSizeHint().width() for w in self._combos), default=0)
        return label + self._grid.horizontalSpacing() + combo

    def _columns_for(self, width: int) -> int:
        if not self._combos:
            return 1
        two = 2 * self._one_column_width() + 3 * self._grid.horizontalSpacing()
        return 2 if width >= two else 1

    def _arrange(self, columns: int) -> None:
        if columns == self._columns:
            return
        self._columns = columns
        for widget in (*self._labels, *self._combos, self.clear_button):
            self._grid.removeWidget(widget)
        for c in range(4):
            self._grid.setColumnStretch(c, 0)
        for j, (label, combo) in enumerate(zip(self._labels, self._combos)):
            r, c = divmod(j, columns)
            self._grid.addWidget(label, r, 2 * c)
            self._grid.addWidget(combo, r, 2 * c + 1)
            self._grid.setColumnStretch(2 * c + 1, 1)
        r, c = divmod(len(self._combos), columns)
        self._grid.addWidget(self.clear_button, r, 2 * c + 1)

    def minimumSizeHint(self) -> QSize:
        """The one-column width: a narrow browser stacks the filters instead of forcing the window wider."""
        hint = super().minimumSizeHint()
        if self._combos:
            hint.setWidth(min(hint.width(), self._one_column_width()))
        return hint

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange(self._columns_for(event.size().width()))

    def selection(self) -> dict[int, int]:
        out = {}
        for j, combo in enumerate(self._combos):
            code = combo.currentData()
            if code is not None and code >= 0:
                out[j] = int(code)
        return out

    def select(self, attribute: str, value: str | None) -> None:
        """Choose ``value`` (None: Any) in an attribute's drop-down, by name."""
        if self._schema is None:
            return
        j = self._schema.position(attribute)
        code = -1 if value is None else self._schema[j].index(value)
        self._combos[j].setCurrentIndex(self._combos[j].findData(code))

    def clear(self) -> None:
        changed = False
        for combo in self._combos:
            if combo.currentIndex() != 0:
                combo.blockSignals(True)
                combo.setCurrentIndex(0)
                combo.blockSignals(False)
                changed = True
        if changed:
            self._on_combo_changed()

    def show_counts(self, counts: list[np.ndarray], total: int) -> None:
        """Write ``value (count)`` into each drop-down; values with no items left are greyed out."""
        if self._schema is None:
            return
        for j, (combo, attribute) in enumerate(zip(self._combos, self._schema)):
            combo.blockSignals(True)
            combo.setItemText(0, f"Any ({int(counts[j].sum()):,})")
            model = combo.model()
            for code, value in enumerate(attribute.values):
                n = int(counts[j][code])
                combo.setItemText(code + 1, f"{value} ({n:,})")
                item = model.item(code + 1) if hasattr(model, "item") else None
                if item is not None:
                    item.setEnabled(n > 0 or combo.currentIndex() == code + 1)
            combo.blockSignals(False)
        self.clear_button.setEnabled(bool(self.selection()))
        del total

    def _on_combo_changed(self, *_args) -> None:
        self.clear_button.setEnabled(bool(self.selection()))
        self.selection_changed.emit()


class ItemDetails(QWidget):
    """The selected item: a larger picture and its attribute values (colours with a swatch)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview = ImageView("Select an item", side=96)
        self.preview.setFixedSize(104, 104)
        self.title = QLabel("Click a thumbnail for its attributes")
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self._form = QFormLayout()
        self._form.setContentsMargins(0, 0, 0, 0)
        self._form.setHorizontalSpacing(10)
        self._form.setVerticalSpacing(2)
        self._value_labels: dict[str, QLabel] = {}
        text = QVBoxLayout()
        text.setContentsMargins(0, 0, 0, 0)
        text.addWidget(self.title)
        text.addLayout(self._form)
        text.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(text, 1)
        self._schema: AttributeSchema | None = None

    def set_schema(self, schema: AttributeSchema | None) -> None:
        while self._form.rowCount():
            self._form.removeRow(0)
        self._value_labels = {}
        self._schema = schema
        if schema is None:
            return
        for attribute in schema:
            value = QLabel("–")
            value.setWordWrap(True)  # long values (folder datasets) wrap instead of widening the browser
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._value_labels[attribute.name] = value
            self._form.addRow(attribute.name.replace("_", " ").capitalize() + ":", value)

    def show_item(self, dataset: DatasetItems | None, item: int | None) -> None:
        if dataset is None or item is None:
            labelled = self._schema is not None and len(self._schema) > 0
            self.title.setText("Click a thumbnail for its attributes" if labelled or self._schema is None else
                               "Click a thumbnail to see it larger (this dataset has no attributes)")
            self.preview.set_image(None)
            for label in self._value_labels.values():
                label.setText("–")
            return
        self.title.setText(f"Item {item:,}")
        self.preview.set_image(dataset.image(item))
        row = dataset.codes[item]
        for attribute, code in zip(dataset.schema, row):
            label = self._value_labels.get(attribute.name)
            if label is None:
                continue
            value = attribute.values[int(code)]
            if attribute.rgb is not None:
                r, g, b = attribute.rgb[int(code)]
                label.setText(f'<span style="background-color: rgb({r},{g},{b});">&nbsp;&nbsp;&nbsp;&nbsp;</span>'
                              f"&nbsp;{value}")
            else:
                label.setText(value)

    def value_text(self, attribute: str) -> str:
        label = self._value_labels.get(attribute)
        if label is None:
            return ""
        return label.text().rsplit("&nbsp;", 1)[-1]


class ThumbnailView(QListView):
    """A wrapping, uniform-size grid with batched layout (a million rows never stall the window)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2048)
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSpacing(3)
        self.setFrameShape(QFrame.Shape.StyledPanel)

    def set_thumbnail_size(self, size: int) -> None:
        self.setIconSize(QSize(size, size))
        self.verticalScrollBar().setSingleStep(max(8, size // 3))

    def dataChanged(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Sequence[int] = ()) -> None:
        """A thumbnail arrived: repaint, but skip the relayout QListView does on every change in list mode. Cells
        are uniform, so nothing moves, and relaying out a million rows (in batches) for each batch of thumbnails
        would shrink the scroll range to the rows laid out so far and keep the GUI thread busy while scrolling."""
        if roles and all(int(r) == _DECORATION for r in roles):
            self.viewport().update()
            return
        super().dataChanged(top_left, bottom_right, roles)


class DatasetBrowser(QWidget):
    """Facets on top, the grid in the middle, the selected item's details below.

    Follows the service's open dataset. Signals: ``item_selected(int)`` (current item), ``item_activated(int)``
    (double-click or Enter) and ``slot_requested(str, int)`` (context menu "Put into slot").
    """

    item_selected = Signal(int)
    item_activated = Signal(int)
    slot_requested = Signal(str, int)

    def __init__(self, service=None, parent: QWidget | None = None, *, thumbnail_size: int = 64) -> None:
        super().__init__(parent)
        self._service = service
        self._dataset: DatasetItems | None = None
        self._facets: FacetIndex | None = None
        self._result: FacetResult | None = None

        self.facets = FacetPanel()
        self.facets.selection_changed.connect(self._on_filters_changed)
        self.count_label = QLabel("")
        self.count_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

        self.model = ThumbnailModel(self, thumbnail_size=thumbnail_size)
        self.view = ThumbnailView()
        self.view.setModel(self.model)
        self.view.set_thumbnail_size(thumbnail_size)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.view.activated.connect(self._on_activated)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_context_menu)

        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_label)
        self.stack.addWidget(self.view)

        self.details = ItemDetails()

        header = QHBoxLayout()
        title = QLabel("Dataset")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        header.addWidget(title)
        header.addWidget(self.count_label, 1, Qt.AlignmentFlag.AlignRight)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addLayout(header)
        layout.addWidget(self.facets)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.details)
        self._show_empty("No dataset open.\nFile ▸ Open Dataset picks a built-in set or a folder.")
        self.details.setVisible(False)

        if service is not None:
            self._dataset_relay = gui_callback(self._on_service_dataset, self)
            signal = service.events.dataset_changed
            signal.connect(self._dataset_relay)
            relay = self._dataset_relay  # not self: the lambda must not keep the widget alive
            self.destroyed.connect(lambda *_: signal.disconnect(relay, missing_ok=True))
            if getattr(service, "items", None) is not None:
                self.set_dataset(service.items)

    # --- public ------------------------------------------------------------------------------------------
    @property
    def dataset(self) -> DatasetItems | None:
        return self._dataset

    def set_dataset(self, dataset: DatasetItems | None) -> None:
        self._dataset = dataset
        self._facets = None if dataset is None else FacetIndex(dataset.codes, dataset.schema.cardinalities)
        schema = None if dataset is None else dataset.schema
        self.facets.blockSignals(True)
        self.facets.set_schema(schema)
        self.facets.blockSignals(False)
        self.details.set_schema(schema)
        self.details.show_item(None, None)
        self.details.setVisible(dataset is not None)
        if dataset is None:
            self.model.set_dataset(None)
            self.count_label.setText("")
            self._show_empty("No dataset open.\nFile ▸ Open Dataset picks a built-in set or a folder.")
            return
        self._result = self._facets.apply({})  # type: ignore[union-attr]
        self.model.set_dataset(dataset, self._result.indices)
        self.facets.show_counts(self._result.counts, len(dataset))
        self._update_count()

    def visible_count(self) -> int:
        return self.model.rowCount()

    def set_thumbnail_size(self, size: int) -> None:
        self.model.set_thumbnail_size(size)
        self.view.set_thumbnail_size(size)

    def select_item(self, item: int) -> bool:
        """Make ``item`` current and scroll to it; False if it is filtered out."""
        row = self.model.row_of(item)
        if row is None:
            return False
        index = self.model.index(row)
        self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.view.scrollTo(index)
        return True

    def current_item(self) -> int | None:
        index = self.view.currentIndex()
        return self.model.item_at(index.row()) if index.isValid() else None

    def selected_items(self) -> list[int]:
        return sorted(self.model.item_at(i.row()) for i in self.view.selectionModel().selectedIndexes())

    def shutdown(self) -> None:
        """Stop thumbnail rendering and unsubscribe from the service (before the widget goes away)."""
        self.model.shutdown()
        if self._service is not None:
            self._service.events.dataset_changed.disconnect(self._dataset_relay, missing_ok=True)

    # --- handlers ------------------------------------------------------------------------------------------
    def _on_service_dataset(self, _info) -> None:
        self.set_dataset(getattr(self._service, "items", None))

    def _on_filters_changed(self) -> None:
        if self._facets is None or self._dataset is None:
            return
        current = self.current_item()
        self._result = self._facets.apply(self.facets.selection())
        self.model.set_rows(self._result.indices)
        self.facets.show_counts(self._result.counts, len(self._dataset))
        self._update_count()
        if current is not None and not self.select_item(current):
            self.details.show_item(None, None)

    def _update_count(self) -> None:
        assert self._dataset is not None
        shown, total = self.model.rowCount(), len(self._dataset)
        self.count_label.setText(f"{total:,} items" if shown == total else f"{shown:,} of {total:,} items")
        if shown == 0:
            self._show_empty("No items match these filters.\nChoose “Any” in a drop-down, or Clear filters.")
        else:
            self.stack.setCurrentWidget(self.view)

    def _show_empty(self, text: str) -> None:
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.details.show_item(None, None)
            return
        item = self.model.item_at(current.row())
        self.details.show_item(self._dataset, item)
        self.item_selected.emit(item)

    def _on_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.item_activated.emit(self.model.item_at(index.row()))

    def _on_context_menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        item = self.model.item_at(index.row())
        menu = QMenu(self)
        slots = []
        model_info = getattr(self._service, "model", None) if self._service is not None else None
        if model_info is not None:
            slots = list(model_info.slots)
        if not slots:
            action = QAction("Load a model to use items in the composer", menu)
            action.setEnabled(False)
            menu.addAction(action)
        for spec in slots:
            action = QAction(f"Put into slot “{spec.title}”", menu)
            action.triggered.connect(lambda _checked=False, s=spec.name, i=item: self.slot_requested.emit(s, i))
            menu.addAction(action)
        menu.exec(self.view.viewport().mapToGlobal(pos))
        menu.deleteLater()
