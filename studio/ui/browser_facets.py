"""The browser's filters: one drop-down per attribute ("Any" or a value, each with its count; colours with a
swatch) and a Clear button, in two columns when the browser is wide enough and one when it is narrow.

The panel only shows counts and reports the selection (``selection_changed``); the counting is numpy on the code
table (``studio.ui.facets``), done by the browser.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.data.schema import AttributeSchema
from studio.ui.names import attribute_title


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
