"""The hyper-parameter form of the Training tab: one editor per field of a method's config dataclass.

It is generated from the service's method descriptions (``ConfigField``), so its defaults, bounds and tooltips come
from the same source as the command line's, and a new option of a method shows up here without UI code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from studio.errors import StudioError
from studio.service.descriptions import ConfigField, parse_field


class ConfigForm(QWidget):
    """One editor per field of a method's config dataclass; ``changed_values()`` gives the overrides.

    Numbers are typed as text and parsed by ``parse_field`` (the CLI's parser), so 1e-4 reads as a person
    writes it and a bad value gets the same message the command line would print.
    """

    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fields: list[ConfigField] = []
        self._editors: dict[str, QWidget] = {}
        self._form = QFormLayout(self)
        self._form.setContentsMargins(0, 0, 0, 0)
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._form.setVerticalSpacing(4)

    def set_fields(self, config: Sequence[ConfigField]) -> None:
        """One editor per option (a method's ``MethodDescription.fields``)."""
        while self._form.rowCount():
            self._form.removeRow(0)
        self._fields = list(config)
        self._editors = {}
        for f in self._fields:
            editor = self._make_editor(f)
            editor.setToolTip(self._tooltip(f))
            self._editors[f.name] = editor
            label = QLabel(f.name.replace("_", " "))
            label.setToolTip(editor.toolTip())
            self._form.addRow(label, editor)

    def fields(self) -> list[ConfigField]:
        return list(self._fields)

    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def _tooltip(self, f: ConfigField) -> str:
        extra = []
        if f.choices:
            extra.append("choices: " + ", ".join(map(str, f.choices)))
        if f.low is not None or f.high is not None:
            extra.append(f"range: {'' if f.low is None else f.low} … {'' if f.high is None else f.high}")
        extra.append(f"default: {self._text(f, f.default)}")
        return f.help + ("\n" + "; ".join(extra) if extra else "")

    @staticmethod
    def _text(f: ConfigField, value: Any) -> str:
        if f.type is tuple:
            return ",".join(str(v) for v in value)
        if f.type is float:
            return f"{value:g}"
        return str(value)

    def _make_editor(self, f: ConfigField) -> QWidget:
        if f.type is bool:
            box = QCheckBox()
            box.setChecked(bool(f.default))
            box.toggled.connect(self.edited)
            return box
        if f.choices:
            combo = QComboBox()
            for choice in f.choices:
                combo.addItem(str(choice), choice)
            combo.setCurrentIndex(max(0, combo.findData(f.default)))
            combo.currentIndexChanged.connect(self.edited)
            return combo
        if f.type is int and f.low is not None and f.high is not None and f.high - f.low <= 1_000_000:
            spin = QSpinBox()
            spin.setRange(int(f.low), int(f.high))
            spin.setValue(int(f.default))
            spin.valueChanged.connect(self.edited)
            return spin
        line = QLineEdit(self._text(f, f.default))
        line.setPlaceholderText(self._text(f, f.default) or "(empty)")
        line.textChanged.connect(lambda _t, e=line: e.setStyleSheet(""))
        line.textChanged.connect(self.edited)
        return line

    def value(self, name: str) -> Any:
        """The parsed value of one field; a bad entry raises StudioError naming the field."""
        f = next(x for x in self._fields if x.name == name)
        editor = self._editors[name]
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            return editor.currentData()
        if isinstance(editor, QSpinBox):
            return editor.value()
        assert isinstance(editor, QLineEdit)
        text = editor.text().strip()
        if f.type is str:
            return text
        if f.type is tuple and not text:
            return ()
        try:
            return parse_field(f, text)
        except ValueError as e:
            editor.setStyleSheet("QLineEdit { border: 1px solid #d62728; }")
            raise StudioError(f"{f.name.replace('_', ' ')}: {str(e).split(': ', 1)[-1]}") from None

    def values(self) -> dict[str, Any]:
        return {f.name: self.value(f.name) for f in self._fields}

    def changed_values(self) -> dict[str, Any]:
        """Only the fields that differ from their defaults (what goes into ``method_options``)."""
        out = {}
        for f in self._fields:
            v = self.value(f.name)
            if v != f.default:
                out[f.name] = v
        return out

    def set_value(self, name: str, value: Any) -> None:
        f = next(x for x in self._fields if x.name == name)
        editor = self._editors[name]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findData(value)))
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value))
        else:
            assert isinstance(editor, QLineEdit)
            editor.setText(self._text(f, value))

    def reset(self) -> None:
        for f in self._fields:
            self.set_value(f.name, f.default)

