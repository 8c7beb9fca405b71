"""The browser's thumbnail grid model: rows are a numpy array of item indices, thumbnails are made on demand.

A thumbnail is made only when the view asks for it, off the GUI thread (QImage is safe there, QPixmap is not), and
kept in a bounded LRU; requests are served newest first and old ones dropped, so fast scrolling renders what is
on screen now, not what flew past. Pictures come from the service's ``DatasetItems`` view, never the dataset.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
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
from PySide6.QtGui import QColor, QImage, QPixmap

from studio.service.items import DatasetItems
from studio.ui import mime
from studio.ui.image_view import to_qimage

ITEM_INDEX_ROLE = Qt.ItemDataRole.UserRole + 1
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_ROOT = QModelIndex()



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
