"""The Values panel (paper 003's value mining): combine attribute directions of one slot (v_blue + v_red -
v_green), move the slot along the combination, jump to a value's centre, and name and save what was found for
reuse. Each slot card's Directions section gets a "Mine values…" button that opens this panel on its slot.

Edits go to the composer as the slot cards' own edits (one undo step per gesture); directions are fitted and
values captured off the GUI thread. Saved values live in ``MinedValueStore``'s JSON file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from studio.errors import StudioError
from studio.service.composition import DirectionStep
from studio.service.mined_values import MinedValueStore, capture, recipe_text
from studio.ui.workers import run_in_background

AMOUNT_STEPS = 300
MAX_TERMS = 6


class TermRow(QWidget):
    """One term of a recipe: a weight and a value."""

    changed = Signal()
    removed = Signal(object)

    def __init__(self, values: list[str], value: str, weight: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.weight = QDoubleSpinBox()
        self.weight.setRange(-3.0, 3.0)
        self.weight.setSingleStep(0.5)
        self.weight.setValue(weight)
        self.weight.setPrefix("× ")
        self.value = QComboBox()
        self.value.addItems(values)
        self.value.setCurrentText(value)
        self.remove = QToolButton()
        self.remove.setText("×")
        self.remove.setToolTip("remove this term")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.weight)
        lay.addWidget(self.value, 1)
        lay.addWidget(self.remove)
        self.weight.valueChanged.connect(lambda _v: self.changed.emit())
        self.value.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.remove.clicked.connect(lambda: self.removed.emit(self))

    def term(self) -> tuple[str, float]:
        return self.value.currentText(), float(self.weight.value())


class ValueMiningPanel(QWidget):
    """See the module docstring. ``status_changed(str)`` reports saves and failures; ``requested`` means a card's
    "Mine values…" button asked for the panel (the window shows it)."""

    status_changed = Signal(str)
    requested = Signal()

    def __init__(self, service: Any, composer: Any, store: MinedValueStore | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.composer = composer
        self._store = store or MinedValueStore()
        self._directions: dict[str, Any] = {}
        self._rows: list[TermRow] = []
        self._gesture = 0
        self._build()
        composer.composition_changed.connect(self._on_composition_changed)
        self._on_composition_changed(composer.composition)
        self.refresh_saved()

    # --- layout ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.slot_combo = QComboBox()
        self.slot_combo.setToolTip("the slot whose values to mine")
        self.terms_box = QVBoxLayout()
        self.terms_box.setSpacing(2)
        self.add_term = QPushButton("+ direction")
        self.add_term.setToolTip("add another value's direction to the combination")
        self.recipe_label = QLabel("")
        self.recipe_label.setWordWrap(True)
        self.amount_slider = QSlider(Qt.Orientation.Horizontal)
        self.amount_slider.setRange(-AMOUNT_STEPS, AMOUNT_STEPS)
        self.amount_slider.setToolTip("how far to move the slot along the combined direction")
        self.amount_label = QLabel("+0.00")
        self.amount_label.setMinimumWidth(44)
        amount_row = QHBoxLayout()
        amount_row.addWidget(self.amount_slider, 1)
        amount_row.addWidget(self.amount_label)
        self.centre_combo = QComboBox()
        self.centre_button = QPushButton("Jump to centre")
        self.centre_button.setToolTip("put the centre of this value's cluster into the slot")
        centre_row = QHBoxLayout()
        centre_row.addWidget(self.centre_combo, 1)
        centre_row.addWidget(self.centre_button)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name, e.g. plum")
        self.save_button = QPushButton("Save value")
        self.save_button.setToolTip("keep the slot's current value under this name, for any composition")
        save_row = QHBoxLayout()
        save_row.addWidget(self.name_edit, 1)
        save_row.addWidget(self.save_button)
        self.saved_list = QListWidget()
        self.saved_list.setMinimumHeight(80)
        self.saved_list.setWordWrap(True)
        self.use_button = QPushButton("Use")
        self.use_button.setToolTip("put the selected saved value into its slot")
        self.delete_button = QPushButton("Delete")
        saved_buttons = QHBoxLayout()
        saved_buttons.addStretch(1)
        saved_buttons.addWidget(self.use_button)
        saved_buttons.addWidget(self.delete_button)
        self.store_label = QLabel(f"saved in {self._store.path}")
        self.store_label.setWordWrap(True)
        self.store_label.setStyleSheet("color: palette(placeholder-text); font-size: 8pt;")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Slot", self.slot_combo)
        terms = QVBoxLayout()
        terms.addLayout(self.terms_box)
        terms.addWidget(self.add_term, 0, Qt.AlignmentFlag.AlignLeft)
        form.addRow("Directions", terms)
        form.addRow("", self.recipe_label)
        form.addRow("Amount", amount_row)
        form.addRow("Centre of", centre_row)
        form.addRow("Name", save_row)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(form)
        lay.addWidget(QLabel("Saved values"))
        lay.addWidget(self.saved_list, 1)
        lay.addLayout(saved_buttons)
        lay.addWidget(self.store_label)
        lay.addWidget(self.status)

        self.slot_combo.currentIndexChanged.connect(lambda _i: self._on_slot_chosen())
        self.add_term.clicked.connect(lambda: self._add_row())
        self.amount_slider.sliderPressed.connect(self._new_gesture)
        self.amount_slider.valueChanged.connect(lambda _v: self._apply())
        self.centre_button.clicked.connect(self.jump_to_centre)
        self.save_button.clicked.connect(lambda: self.save_value(self.name_edit.text().strip()))
        self.use_button.clicked.connect(self._use_selected)
        self.delete_button.clicked.connect(self._delete_selected)
        self.saved_list.itemDoubleClicked.connect(lambda _item: self._use_selected())

    # --- public API -----------------------------------------------------------------------------------
    @property
    def store(self) -> MinedValueStore:
        return self._store

    @store.setter
    def store(self, store: MinedValueStore) -> None:
        """Keep values in another file (a project's, say)."""
        self._store = store
        self.store_label.setText(f"saved in {store.path}")
        self.refresh_saved()

    def show_slot(self, slot: str) -> None:
        """Choose ``slot`` (what a card's "Mine values…" button does)."""
        k = self.slot_combo.findData(slot)
        if k < 0:
            raise StudioError(f"slot {slot!r} has no attribute directions to mine")
        self.slot_combo.setCurrentIndex(k)

    def slot(self) -> str | None:
        data = self.slot_combo.currentData()
        return str(data) if data else None

    def recipe(self) -> tuple[tuple[str, float], ...]:
        return tuple(r.term() for r in self._rows if r.term()[1] != 0)

    def set_recipe(self, recipe: list[tuple[str, float]]) -> None:
        for row in list(self._rows):
            self._remove_row(row, apply=False)
        for value, weight in recipe:
            self._add_row(value, weight, apply=False)
        self._show_recipe()
        self._apply()

    def amount(self) -> float:
        return self.amount_slider.value() / AMOUNT_STEPS * self._reach()

    def set_amount(self, amount: float) -> None:
        self._new_gesture()
        self.amount_slider.setValue(round(amount / self._reach() * AMOUNT_STEPS))

    def jump_to_centre(self) -> None:
        slot, value = self.slot(), self.centre_combo.currentText()
        if slot is None or not value:
            return
        run_in_background(self.service.jump_to_centre, self.composer.composition, slot, value, owner=self,
                          on_result=lambda comp: self.composer.set_composition(comp, f"{slot}: centre of {value}"),
                          on_error=self._failed)

    def save_value(self, name: str) -> None:
        """Capture the slot's current value (off the GUI thread) and save it under ``name``."""
        slot = self.slot()
        if slot is None:
            self._failed(StudioError("choose a slot first"))
            return
        composition = self.composer.composition

        def work() -> Path:
            value = capture(self.service, composition, slot, name)
            return self.store.save(value)

        run_in_background(work, owner=self, on_result=lambda path: self._saved(name, path), on_error=self._failed)

    def use_value(self, name: str) -> None:
        try:
            value = self.store.get(name)
            composition = value.apply(self.service, self.composer.composition)
        except StudioError as e:
            self._failed(e)
            return
        self.composer.set_composition(composition, f"{value.slot}: {name}")

    def refresh_saved(self) -> None:
        self.saved_list.clear()
        try:
            values = self.store.load()
        except StudioError as e:
            self._failed(e)
            return
        for value in values:
            item = QListWidgetItem(value.describe())
            item.setToolTip(value.describe())
            item.setData(Qt.ItemDataRole.UserRole, value.name)
            self.saved_list.addItem(item)
        has = bool(values)
        self.use_button.setEnabled(has)
        self.delete_button.setEnabled(has)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.slot() is not None and self.slot() not in self._directions:
            self._on_slot_chosen()

    # --- the cards' Directions sections ------------------------------------------------------------------
    def attach_cards(self) -> None:
        """Give every slot card with directions a "Mine values…" button (new cards come with a new model)."""
        for name, card in self.composer.slot_widgets.items():
            if card.spec.attribute is None or card.findChild(QToolButton, "mineValuesButton") is not None:
                continue
            button = QToolButton()
            button.setText("Mine values…")
            button.setObjectName("mineValuesButton")
            button.setToolTip("combine this slot's directions, jump to centres, save what you find")
            button.clicked.connect(lambda _=False, slot=name: self._open_from_card(slot))
            grid = card.directions_box.layout()
            grid.addWidget(button, grid.rowCount(), 0, 1, grid.columnCount())

    def _open_from_card(self, slot: str) -> None:
        self.show_slot(slot)
        self.requested.emit()

    # --- handlers -------------------------------------------------------------------------------------
    def _on_composition_changed(self, _composition: Any) -> None:
        model = self.service.model
        slots = [s for s in (model.slots if model is not None else []) if s.attribute]
        names = [s.name for s in slots]
        if names != [self.slot_combo.itemData(k) for k in range(self.slot_combo.count())]:
            current = self.slot()
            self._directions.clear()
            self.slot_combo.blockSignals(True)
            self.slot_combo.clear()
            for s in slots:
                self.slot_combo.addItem(s.title, s.name)
            self.slot_combo.blockSignals(False)
            if current in names:
                self.slot_combo.setCurrentIndex(names.index(current))
            self._on_slot_chosen()
        self.attach_cards()

    def _on_slot_chosen(self) -> None:
        slot = self.slot()
        for row in list(self._rows):
            self._remove_row(row, apply=False)
        self.amount_slider.blockSignals(True)
        self.amount_slider.setValue(0)
        self.amount_slider.blockSignals(False)
        self._set_enabled(False)
        if slot is None:
            self._note("This model has no slot with attribute directions.")
            return
        if slot in self._directions:
            self._show_directions(slot, self._directions[slot])
            return
        if not self.isVisible():  # fitting encodes thousands of items: only for a panel someone looks at
            self._note("")
            return
        self._note(f"fitting the directions of {slot}…")
        run_in_background(self.service.directions, slot, owner=self,
                          on_result=lambda d, slot=slot: self._show_directions(slot, d), on_error=self._failed)

    def _show_directions(self, slot: str, directions: Any) -> None:
        if not isValid(self):
            return
        self._directions[slot] = directions
        if slot != self.slot():
            return
        values = [v for k, v in enumerate(directions.values) if directions.counts[k] > 0]
        self.centre_combo.clear()
        self.centre_combo.addItems(values)
        if not self._rows and values:
            self._add_row(values[0], 1.0, apply=False)
        self._set_enabled(True)
        self._note(f"{directions.attribute}: {len(values)} values; SVM accuracy "
                            f"{directions.accuracy:.0%} on encoded items")
        self._show_recipe()

    def _values(self) -> list[str]:
        directions = self._directions.get(self.slot() or "")
        if directions is None:
            return []
        return [v for k, v in enumerate(directions.values) if directions.counts[k] > 0]

    def _add_row(self, value: str | None = None, weight: float | None = None, apply: bool = True) -> None:
        """A new term; by default the next unused value, added, except the third, which subtracts (the paper's
        v_blue + v_red - v_green)."""
        values = self._values()
        if not values or len(self._rows) >= MAX_TERMS:
            return
        used = {r.term()[0] for r in self._rows}
        value = value or next((v for v in values if v not in used), values[0])
        if weight is None:
            weight = -1.0 if len(self._rows) == 2 else 1.0
        row = TermRow(values, value, weight)
        row.changed.connect(self._on_terms_changed)
        row.removed.connect(lambda r: self._remove_row(r))
        self.terms_box.addWidget(row)
        self._rows.append(row)
        self.add_term.setEnabled(len(self._rows) < MAX_TERMS)
        if apply:
            self._on_terms_changed()

    def _remove_row(self, row: TermRow, apply: bool = True) -> None:
        if row in self._rows:
            self._rows.remove(row)
        row.setParent(None)
        row.deleteLater()
        self.add_term.setEnabled(len(self._rows) < MAX_TERMS)
        if apply:
            self._on_terms_changed()

    def _on_terms_changed(self) -> None:
        self._show_recipe()
        self._new_gesture()
        self._apply()

    def _show_recipe(self) -> None:
        recipe = self.recipe()
        self.recipe_label.setText("v(" + recipe_text(recipe).replace(" + ", ") + v(").replace(" - ", ") − v(") + ")"
                                  if recipe else "no direction: add one")

    def _reach(self) -> float:
        from studio.ui.composer import direction_reach

        directions = self._directions.get(self.slot() or "")
        return direction_reach(directions) if directions is not None else 1.0

    def _new_gesture(self) -> None:
        self._gesture += 1

    def _apply(self) -> None:
        """The slot's step becomes amount x the combination, as the card's own direction edit (mergeable)."""
        slot, recipe = self.slot(), self.recipe()
        amount = self.amount()
        self.amount_label.setText(f"{amount:+.2f}")
        card = self.composer.slot_widgets.get(slot) if slot else None
        directions = self._directions.get(slot or "")
        if card is None or directions is None or not recipe:
            return
        (first, w0), rest = recipe[0], recipe[1:]
        value = self.composer.composition.slot(slot)
        if amount == 0:
            new = replace(value, steps=())
        else:
            step = DirectionStep(directions.attribute, first, amount * w0, tuple((v, w / w0) for v, w in rest))
            new = replace(value, steps=(step,))
        if new != value:
            card.edited.emit(slot, new, f"{card.spec.title}: toward {recipe_text(recipe)}",
                             f"mine:{slot}:{self._gesture}")

    def _set_enabled(self, on: bool) -> None:
        for w in (self.add_term, self.amount_slider, self.centre_combo, self.centre_button, self.name_edit,
                  self.save_button):
            w.setEnabled(on)

    def _saved(self, name: str, path: Path) -> None:
        self.refresh_saved()
        self.name_edit.clear()
        self._note(f"saved {name!r} in {path}")
        self.status_changed.emit(f"Saved mined value {name!r}")

    def _selected_name(self) -> str | None:
        item = self.saved_list.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def _use_selected(self) -> None:
        name = self._selected_name()
        if name:
            self.use_value(name)

    def _delete_selected(self) -> None:
        name = self._selected_name()
        if not name:
            return
        try:
            self.store.remove(name)
        except StudioError as e:
            self._failed(e)
            return
        self.refresh_saved()

    def _note(self, text: str) -> None:
        self.status.setStyleSheet("color: palette(placeholder-text);")
        self.status.setText(text)

    def _failed(self, error: BaseException) -> None:
        if not isValid(self):
            return
        self.status.setText(str(error))
        self.status.setStyleSheet("color: #c0392b;")
        self.status_changed.emit(str(error))


__all__ = ["TermRow", "ValueMiningPanel"]
