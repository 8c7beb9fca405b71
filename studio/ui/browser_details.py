"""The browser's details line: the selected item larger, with its attribute values (colours with a swatch); long
values wrap so that a folder dataset's names never widen the browser."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from studio.data.schema import AttributeSchema
from studio.service.items import DatasetItems
from studio.ui.image_view import ImageView
from studio.ui.names import attribute_title


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
