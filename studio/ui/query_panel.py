"""Query mode: pick attribute values from drop-downs and ask for that combination. The model service fills the
slots from a cover set of training items; the composer shows the synthesis and, if the dataset holds that exact
image, the real one beside it."""

from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.data.schema import AttributeSchema
from studio.ui.names import attribute_title

ANY = "(any)"
#: The answer under the buttons always takes this many lines, so the buttons never move as its text changes.
RESULT_LINES = 3


def colour_swatch(rgb: tuple[int, int, int], size: int = 12) -> QIcon:
    """A small filled square of a colour value, as the browser's filters show it."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


class QueryPanel(QWidget):
    """Drop-downs of attribute values; ``synthesise_requested`` carries the chosen {attribute: value}."""

    synthesise_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._combos: dict[str, QComboBox] = {}
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.synthesise_button = QPushButton("Synthesise")
        self.synthesise_button.setToolTip("fill every slot from training items that show these values, and compose")
        self.synthesise_button.setDefault(True)
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("choose a random value for every attribute")
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.result_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.result_label.setFixedHeight(self.result_label.fontMetrics().lineSpacing() * RESULT_LINES + 4)
        buttons = QHBoxLayout()
        buttons.addWidget(self.random_button)
        buttons.addStretch(1)
        buttons.addWidget(self.synthesise_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.form)
        lay.addLayout(buttons)
        lay.addWidget(self.result_label)
        self.synthesise_button.clicked.connect(lambda: self.synthesise_requested.emit(self.values()))
        self.random_button.clicked.connect(self.randomise)
        self.set_schema(None)

    def set_schema(self, schema: AttributeSchema | None) -> None:
        """One combo per attribute; a model without labelled attributes has nothing to query."""
        while self.form.rowCount():
            self.form.removeRow(0)
        self._combos.clear()
        attributes = list(schema) if schema is not None else []
        seen: dict[tuple[str, ...], int] = {}  # attributes with the same values (font and background colour)
        for attribute in attributes:
            combo = QComboBox()
            # long values (font names) must not widen the composer: the list still shows them whole
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
            combo.addItem(ANY)
            for code, value in enumerate(attribute.values):
                if attribute.rgb is not None:
                    combo.addItem(colour_swatch(attribute.rgb[code]), value)
                else:
                    combo.addItem(value)
            # the second attribute drawing on the same values starts on the next one: a red letter on red shows nothing
            repeat = seen.get(tuple(attribute.values), 0)
            seen[tuple(attribute.values)] = repeat + 1
            combo.setCurrentIndex(1 + repeat % max(1, attribute.cardinality))
            combo.setToolTip(f"{attribute_title(attribute.name)}: {attribute.cardinality} values; {ANY} leaves it "
                             "to the cover set")
            self.form.addRow(attribute_title(attribute.name), combo)
            self._combos[attribute.name] = combo
        enabled = bool(attributes)
        self.synthesise_button.setEnabled(enabled)
        self.random_button.setEnabled(enabled)
        self.result_label.setText("" if enabled or schema is None else
                                  "This model has no labelled attributes, so there is nothing to query.")

    def values(self) -> dict[str, str]:
        return {name: combo.currentText() for name, combo in self._combos.items() if combo.currentText() != ANY}

    def set_values(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            combo = self._combos.get(name)
            if combo is not None and combo.findText(value) >= 0:
                combo.setCurrentIndex(combo.findText(value))

    def randomise(self) -> None:
        for combo in self._combos.values():
            combo.setCurrentIndex(random.randrange(1, combo.count()))

    def show_result(self, text: str) -> None:
        """The answer, in a box of fixed height; the whole text is in the tooltip too."""
        self.result_label.setText(text)
        self.result_label.setToolTip(text)
