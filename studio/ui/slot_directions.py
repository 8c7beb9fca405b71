"""A slot card's directions section: a disclosure button, then a drop-down of the attribute values the slot can
move toward and an amount slider for the step (one step per slot, from the service's fitted directions).

``SlotDirections`` is mixed into ``SlotWidget``: it works on the card's value, spec and ``_edit``. Opening the section
before the choices are known asks for them (``directions_wanted``); an amount drag is one gesture, so it merges
into one undo step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QSlider, QToolButton, QWidget

from studio.service.composition import DirectionStep
from studio.ui.names import value_phrase
from studio.ui.slot_edits import set_step

AMOUNT_STEPS = 300      # slider ticks on each side of zero for a direction step


class SlotDirections:
    """The directions section of ``SlotWidget``; see the module docstring."""

    def _build_directions(self) -> None:
        """The disclosure button and the (closed) section, wired; the card lays them out."""
        self._direction_choices: list[tuple[str, str]] = []
        self._reach = 1.0  # latent units at the amount slider's ends
        self.directions_button = QToolButton()
        self.directions_button.setText("Directions")
        self.directions_button.setCheckable(True)
        self.directions_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.directions_button.setArrowType(Qt.ArrowType.RightArrow)
        self.directions_button.setAutoRaise(True)
        self.directions_button.setToolTip("move this slot toward an attribute value along its direction")
        self.directions_box = QWidget()
        grid = QGridLayout(self.directions_box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.direction_combo = QComboBox()
        self.direction_combo.setMinimumContentsLength(18)  # "Background colour: yellow" reads whole
        self.direction_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.amount_slider = QSlider(Qt.Orientation.Horizontal)
        self.amount_slider.setRange(-AMOUNT_STEPS, AMOUNT_STEPS)
        self.amount_slider.setToolTip("how far to move toward the value (latent units along its unit direction)")
        self.amount_label = QLabel("0.00")
        self.amount_label.setMinimumWidth(38)
        self.direction_reset = self._tool("Reset", "remove the direction step")
        self.direction_status = QLabel("")
        self.direction_status.setStyleSheet("color: palette(placeholder-text);")
        grid.addWidget(QLabel("toward"), 0, 0)
        grid.addWidget(self.direction_combo, 0, 1, 1, 3)
        grid.addWidget(self.amount_slider, 1, 0, 1, 2)
        grid.addWidget(self.amount_label, 1, 2)
        grid.addWidget(self.direction_reset, 1, 3)
        grid.addWidget(self.direction_status, 2, 0, 1, 4)
        grid.setColumnStretch(1, 1)
        self.directions_box.setVisible(False)
        self.directions_button.setVisible(self.spec.attribute is not None)

        self.amount_slider.sliderPressed.connect(self._new_gesture)
        self.amount_slider.valueChanged.connect(self._on_amount)
        self.direction_combo.currentIndexChanged.connect(self._on_direction_choice)
        self.direction_reset.clicked.connect(lambda: self._edit(set_step(self._value, None), "remove direction"))
        self.directions_button.toggled.connect(self._on_directions_toggled)

    def set_direction_choices(self, choices: Sequence[tuple[str, str]], status: str = "", reach: float = 1.0) -> None:
        """(attribute, value) pairs this slot can move toward (from the service's fitted directions); ``reach``
        is the step, in latent units, at the amount slider's ends."""
        self._direction_choices = list(choices)
        self._reach = max(1e-6, float(reach))
        self.direction_combo.blockSignals(True)
        self.direction_combo.clear()
        for attribute, val in self._direction_choices:
            self.direction_combo.addItem(value_phrase(attribute, val))
            self.direction_combo.setItemData(self.direction_combo.count() - 1, value_phrase(attribute, val),
                                             Qt.ItemDataRole.ToolTipRole)
        self.direction_combo.blockSignals(False)
        self.direction_status.setText(status)
        has = bool(self._direction_choices)
        self.direction_combo.setEnabled(has and not self._value.locked)
        self.amount_slider.setEnabled(has and not self._value.locked)
        self._show_step(self._value.steps[0] if self._value.steps else None)

    def _on_directions_toggled(self, shown: bool) -> None:
        self.directions_box.setVisible(shown)
        self.directions_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        if shown and not self._direction_choices:
            self.direction_status.setText("fitting directions…")
            self.directions_wanted.emit(self.spec.name)

    def _current_choice(self) -> tuple[str, str] | None:
        i = self.direction_combo.currentIndex()
        return self._direction_choices[i] if 0 <= i < len(self._direction_choices) else None

    def _on_amount(self, position: int) -> None:
        amount = position / AMOUNT_STEPS * self._reach
        self.amount_label.setText(f"{amount:+.2f}")
        choice = self._current_choice()
        if choice is None:
            return
        step = DirectionStep(choice[0], choice[1], amount)
        self._edit(set_step(self._value, step), f"toward {choice[1]}", f"step:{self.spec.name}:{self._gesture}")

    def _on_direction_choice(self, _index: int) -> None:
        choice = self._current_choice()
        if choice is None or not self._value.steps:
            return
        step = replace(self._value.steps[0], attribute=choice[0], value=choice[1])
        self._edit(set_step(self._value, step), f"toward {choice[1]}")

    def _show_step(self, step: DirectionStep | None) -> None:
        self.amount_slider.blockSignals(True)
        self.direction_combo.blockSignals(True)
        if step is None:
            self.amount_slider.setValue(0)
            self.amount_label.setText("0.00")
        else:
            self.amount_slider.setValue(round(step.amount / self._reach * AMOUNT_STEPS))
            self.amount_label.setText(f"{step.amount:+.2f}")
            key = (step.attribute, step.value)
            if key in self._direction_choices:
                self.direction_combo.setCurrentIndex(self._direction_choices.index(key))
            if not self.directions_button.isChecked():
                self.directions_button.setChecked(True)
        self.direction_reset.setEnabled(step is not None)
        self.amount_slider.blockSignals(False)
        self.direction_combo.blockSignals(False)
