"""The generated parts of the Training tab: one editor per field of a method's config dataclass (``ConfigForm``),
and one per run setting (``setting_editor``).

Both are generated from the service's descriptions (``ConfigField``), so their defaults, bounds and tooltips come
from the same declaration as the command line's, and a new option of a method, or a new run setting with form
hints, shows up here without UI code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from studio.errors import StudioError
from studio.service.descriptions import ConfigField, FormHints, parse_field

#: A run setting's spin box reaches these where its declaration sets no bound (a spin box needs one).
INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1_000_000.0


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



# --- run settings -----------------------------------------------------------------------------------------------
def hints(f: ConfigField) -> FormHints:
    """A field's form hints; one declared without them shows under its own name."""
    return f.form if f.form is not None else FormHints(f.name.replace("_", " "))


def setting_editor(f: ConfigField) -> QWidget:
    """The editor of one run setting, with the declaration's bounds, choices, help and new-run value."""
    form = hints(f)
    editor: QWidget
    if f.type is bool:
        editor = QCheckBox()
    elif f.offered:
        editor = QComboBox()
        for value in f.offered:
            editor.addItem(form.choice_label(value), value)
    elif f.type is int:
        editor = QSpinBox()
        editor.setRange(int(f.low) if f.low is not None else -INT_LIMIT - 1,
                        int(f.high) if f.high is not None else INT_LIMIT)
        editor.setGroupSeparatorShown(form.thousands)
    elif f.type is float:
        editor = QDoubleSpinBox()
        editor.setDecimals(form.decimals)
        editor.setSingleStep(form.step)
        editor.setRange(f.low if f.low is not None else -FLOAT_LIMIT, f.high if f.high is not None else FLOAT_LIMIT)
    else:
        editor = QLineEdit()
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        editor.setSuffix(form.suffix)
        editor.setSpecialValueText(form.special)
    set_setting_value(f, editor, f.new_run_value)
    editor.setToolTip(f.help)
    return editor


def setting_value(editor: QWidget) -> Any:
    """The value a run setting's editor holds."""
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QComboBox):
        return editor.currentData()
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.value()
    assert isinstance(editor, QLineEdit)
    return editor.text().strip() or None


def set_setting_value(f: ConfigField, editor: QWidget, value: Any) -> bool:
    """Show ``value`` (a spin box clamps it to its range); False, and nothing changed, when it does not fit the
    field: a choice it does not offer, or a value of another kind (remembered state may be stale or edited)."""
    if isinstance(editor, QCheckBox):
        if not isinstance(value, bool):
            return False
        editor.setChecked(value)
        return True
    if isinstance(editor, QComboBox):
        index = editor.findData(value)
        if index < 0:
            return False
        editor.setCurrentIndex(index)
        return True
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        if isinstance(editor, QSpinBox):
            editor.setValue(int(min(max(value, editor.minimum()), editor.maximum())))
        else:
            editor.setValue(float(value))
        return True
    assert isinstance(editor, QLineEdit)
    if value is not None and not isinstance(value, str):
        return False
    editor.setText(value or "")
    return True
