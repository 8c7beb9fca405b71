"""The dataset browser: a virtualised thumbnail grid with attribute facets and the selected item's details.

Scale is the design constraint: the full Fonts set has ~309k items (1.4M with user fonts). The grid is a
``QListView`` over a ``QAbstractListModel`` whose rows are just a numpy array of item indices; a thumbnail is made
only when the view asks for it, off the GUI thread, and kept in a bounded LRU. Requests are served newest first
and old ones dropped, so fast scrolling renders what is on screen now, not what flew past. The layout runs in
batches, so even a million rows never stall the window. Facet counts are numpy on the code table
(``studio.ui.facets``); the grid's model is ``studio.ui.thumbnail_model``.

This module builds the browser and follows the service's dataset; its parts live beside it: the filters
(browser_facets), the selected item's details (browser_details) and the grid view (thumbnail_view).
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from studio.service.items import DatasetItems
from studio.ui.browser_details import ItemDetails
from studio.ui.browser_facets import FacetPanel
from studio.ui.facets import FacetIndex, FacetResult
from studio.ui.thumbnail_model import ITEM_INDEX_ROLE, ThumbnailCache, ThumbnailModel, render_thumbnails
from studio.ui.thumbnail_view import ThumbnailView
from studio.ui.workers import gui_callback

#: The names importers of this module have always found here (several now live in the modules above).
__all__ = ["ITEM_INDEX_ROLE", "DatasetBrowser", "FacetIndex", "FacetPanel", "FacetResult", "ItemDetails",
           "ThumbnailCache", "ThumbnailModel", "ThumbnailView", "render_thumbnails"]


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
        self.view.scrollToTop()

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
        if current is None or not self.select_item(current):
            if current is not None:
                self.details.show_item(None, None)
            self.view.scrollToTop()  # other rows now: the old scroll position would show an arbitrary stretch

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
