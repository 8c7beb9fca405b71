"""The dataset browser: a virtualised thumbnail grid with attribute facets and the selected item's details.

Scale is the design constraint: the full Fonts set has ~309k items (1.4M with user fonts). The grid is a
``QListView`` over a ``QAbstractListModel`` whose rows are just a numpy array of item indices; a thumbnail is made
only when the view asks for it, off the GUI thread, and kept in a bounded LRU. Requests are served newest first
and old ones dropped, so fast scrolling renders what is on screen now, not what flew past. The layout runs in
batches, so even a million rows never stall the window. Facet counts are numpy on the code table
(``studio.ui.facets``); the grid's model is ``studio.ui.thumbnail_model``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QIcon, QPalette, QPixmap
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
from studio.ui.facets import FacetIndex, FacetResult
from studio.ui.image_view import ImageView
from studio.ui.names import attribute_title
from studio.ui.thumbnail_model import _DECORATION, ITEM_INDEX_ROLE, ThumbnailCache, ThumbnailModel, render_thumbnails
from studio.ui.workers import gui_callback


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
            label = QLabel(attribute_title(attribute.name))
            combo = QComboBox()
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            combo.setMaxVisibleItems(20)
            combo.setToolTip(f"Show only items with this {attribute_title(attribute.name).lower()}")
            combo.addItem("Any", -1)
            for code, value in enumerate(attribute.values):
                if attribute.rgb is not None:
                    combo.addItem(_swatch(attribute.rgb[code]), value, code)
                else:
                    combo.addItem(value, code)
            combo.currentIndexChanged.connect(self._on_combo_changed)
            self._combos.append(combo)
            self._labels.append(label)
        # Showing or hiding the Clear button above may already have relaid the panel out (a resize event, with no
        # filters yet): arrange afresh, or the new filters would stay out of the grid, unseen until the splitter
        # was dragged (issue 17).
        self._columns = 0
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
            self._form.addRow(attribute_title(attribute.name) + ":", value)

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


__all__ = ["ITEM_INDEX_ROLE", "DatasetBrowser", "FacetIndex", "FacetPanel", "FacetResult", "ItemDetails",
           "ThumbnailCache", "ThumbnailModel", "ThumbnailView", "render_thumbnails"]
