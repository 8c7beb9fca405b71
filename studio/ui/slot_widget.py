"""One composer slot: source A, an optional second source B with a slider between them, an optional mixture of
further sources with weights, and an optional step toward an attribute value.

The widget never edits the composition itself. It shows a ``SlotValue`` and reports what the user asked for:
drops (``dropped``; the composer turns files into sources off the GUI thread) and finished edits (``edited``,
carrying the new ``SlotValue``, an undo text and a merge key for continuous gestures).

This module builds the card and shows its value; the rest lives beside it: the pure edits the gestures make
(slot_edits), the drop tiles (source_tile), the mixture rows (slot_mixture) and the directions section
(slot_directions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget

from studio.service.composition import SlotValue, Source
from studio.slots import SlotSpec
from studio.ui.names import slot_title
from studio.ui.slot_directions import AMOUNT_STEPS, SlotDirections
from studio.ui.slot_edits import (
    clear_slot,
    drop_payload,
    mixture_parts,
    put_sources,
    remove_part,
    set_step,
    set_weight,
    swap_sources,
    with_parts,
)
from studio.ui.slot_mixture import WEIGHT_STEPS, MixturePartRow, SlotMixture
from studio.ui.source_tile import SourceTile

T_STEPS = 1000          # slider resolution of t in [0, 1]
#: What Lock means, everywhere: the slot keeps its value until unlocked (undo and redo still step through it).
LOCK_TIP = ("lock this slot: it keeps its value; drops, its own sliders, Swap, Clear, Clear all, the global "
            "slider and Synthesise leave it alone until it is unlocked (L)")

#: Describes a source for display: (thumbnail or None, short caption, tooltip).
Describer = Callable[[Source], tuple[np.ndarray | None, str, str]]

#: The names importers of this module have always found here (several now live in the modules above).
__all__ = ["AMOUNT_STEPS", "LOCK_TIP", "T_STEPS", "WEIGHT_STEPS", "Describer", "MixturePartRow", "SlotWidget",
           "SourceTile", "clear_slot", "drop_payload", "mixture_parts", "put_sources", "remove_part", "set_step",
           "set_weight", "swap_sources", "with_parts"]


class SlotWidget(SlotDirections, SlotMixture, QFrame):
    """The card for one slot (see the module docstring)."""

    dropped = Signal(str, str, list, list)            # slot, target ('a' | 'b' | 'mix'), item indices, file paths
    edited = Signal(str, object, str, object)         # slot, new SlotValue, undo text, merge key (str | None)
    directions_wanted = Signal(str)                   # slot: the user opened the directions section
    activated = Signal(str)                           # slot: the user clicked or focused this card

    def __init__(self, spec: SlotSpec, describe: Describer, fingerprint: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._describe = describe
        self._value = SlotValue()
        self._base: Source | None = None
        self._gesture = 0
        self.setObjectName("slotCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

        # header: title, shape, buttons
        self.title = QLabel(slot_title(spec))
        self.title.setStyleSheet("font-weight: bold; font-size: 11pt;")
        shape = "×".join(str(s) for s in spec.shape)
        self.shape_label = QLabel(f"spatial {shape}" if spec.spatial else f"{shape}-d")
        self.shape_label.setStyleSheet("color: palette(placeholder-text); font-size: 8pt;")
        self.shape_label.setToolTip(f"slot '{spec.name}'" + (f", attribute '{spec.attribute}'" if spec.attribute
                                                            else "") + f", latent shape {shape}")
        self.lock_button = self._tool("Lock", LOCK_TIP, True)
        self.lock_button.setMinimumWidth(self.lock_button.fontMetrics().horizontalAdvance("Locked") + 14)
        self.swap_button = self._tool("Swap", "swap sources A and B (S)")
        self.clear_button = self._tool("Clear", "clear this slot (Delete)")
        head = QHBoxLayout()
        head.setSpacing(4)
        head.addWidget(self.title)
        head.addWidget(self.shape_label)
        head.addStretch(1)

        # sources and the A-B slider
        fp = fingerprint
        self.tile_a = SourceTile("A", "drop an item\nor image", fp)
        self.tile_b = SourceTile("B", "drop a second\nsource", fp)
        self.tile_mix = SourceTile("+ mix", "drop\nhere", fp, side=44)
        self.tile_mix.setToolTip("drop items or images here to mix them into A, each with a weight slider")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, T_STEPS)
        self.slider.setMinimumWidth(90)
        self.slider.setToolTip("interpolate this slot from A to B")
        self.t_label = QLabel("")
        self.t_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.t_label.setStyleSheet("color: palette(placeholder-text);")
        middle = QVBoxLayout()
        middle.setSpacing(2)
        middle.addStretch(1)
        middle.addWidget(self.slider)
        middle.addWidget(self.t_label)
        middle.addStretch(1)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.tile_a)
        row.addLayout(middle, 1)
        row.addWidget(self.tile_b)
        row.addWidget(self.tile_mix, 0, Qt.AlignmentFlag.AlignTop)

        self._build_parts_box()  # mixture parts beyond the first (slot_mixture)
        self._build_directions()  # the directions section and its disclosure (slot_directions)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(4)
        lay.addLayout(head)
        lay.addLayout(row)
        lay.addWidget(self.parts_box)
        lay.addWidget(self.directions_box)
        # The disclosure sits under the A-B slider, in the room the tiles leave, right above the section it
        # opens; in the header it made every card (and so the composer) wider.
        middle.addWidget(self.directions_button, 0, Qt.AlignmentFlag.AlignLeft)
        for b in (self.lock_button, self.swap_button, self.clear_button):
            head.addWidget(b)

        # wiring
        self.tile_a.dropped.connect(lambda items, files: self.dropped.emit(self.spec.name, "a", items, files))
        self.tile_b.dropped.connect(lambda items, files: self.dropped.emit(self.spec.name, "b", items, files))
        self.tile_mix.dropped.connect(lambda items, files: self.dropped.emit(self.spec.name, "mix", items, files))
        self.slider.sliderPressed.connect(self._new_gesture)
        self.slider.valueChanged.connect(self._on_slider)
        self.lock_button.toggled.connect(self._on_lock)
        self.swap_button.clicked.connect(self.swap)
        self.clear_button.clicked.connect(self.clear)
        for keys, action in (((QKeySequence.StandardKey.Delete, Qt.Key.Key_Backspace), self.clear),
                             ((Qt.Key.Key_S,), self.swap), ((Qt.Key.Key_L,), self.lock_button.toggle)):
            for key in keys:
                sc = QShortcut(QKeySequence(key), self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(action)
        self.set_active(False)
        self.set_value(SlotValue(), None)

    # --- what the composer calls -------------------------------------------------------------------
    @property
    def value(self) -> SlotValue:
        return self._value

    @property
    def base(self) -> Source | None:
        return self._base

    def set_value(self, value: SlotValue, base: Source | None) -> None:
        """Show ``value`` (``base`` is what an empty A falls back to). Emits nothing."""
        self._value, self._base = value, base
        parts = mixture_parts(value)
        # a mixture shows its heaviest part (the one the result looks most like), not merely its first
        first = max(parts, key=lambda part: part[1])[0] if parts else None
        if first is not None:
            image, caption, tip = self._describe(first)
            if len(parts) > 1:
                caption, tip = f"mix of {len(parts)}", "a weighted mixture; set the weights below"
            self.tile_a.show_source(image, caption, tip)
        elif base is not None:
            image, caption, tip = self._describe(base)
            # "base 268488", not "base: item 268488": a six-digit item of the full Fonts set must fit the tile
            self.tile_a.show_source(image, "base " + caption.removeprefix("item "),
                                    "empty: this slot takes the base source; drop an item to set it\n" + tip,
                                    dimmed=True)
        else:
            self.tile_a.show_source(None, "", "drop a dataset item or an image file")
        if value.b is not None:
            self.tile_b.show_source(*self._describe(value.b))
        else:
            self.tile_b.show_source(None, "", "drop a second source to interpolate toward")
        self._show_parts(parts)
        has_b = value.b is not None
        self.slider.blockSignals(True)
        self.slider.setValue(round(value.t * T_STEPS))
        self.slider.blockSignals(False)
        # a locked slot keeps its value: nothing on the card may change it until it is unlocked
        free = not value.locked
        self.slider.setEnabled(has_b and free)
        self.t_label.setText(f"t = {value.t:.2f}" if has_b else "A only")
        self.swap_button.setEnabled((has_b or value.a is not None) and free)
        self.clear_button.setEnabled(value != SlotValue(locked=value.locked) and free)
        self.amount_slider.setEnabled(bool(self._direction_choices) and free)
        self.direction_combo.setEnabled(bool(self._direction_choices) and free)
        for row in self._part_rows:
            row.setEnabled(free)
        for tile in (self.tile_a, self.tile_b, self.tile_mix):
            tile.locked = value.locked
        self.lock_button.blockSignals(True)
        self.lock_button.setChecked(value.locked)
        self.lock_button.setText("Locked" if value.locked else "Lock")
        self.lock_button.blockSignals(False)
        self._show_step(value.steps[0] if value.steps else None)

    def set_active(self, active: bool) -> None:
        """The focused card: Delete, S and L act on it; a highlighted border shows which."""
        border = "2px solid palette(highlight)" if active else "1px solid palette(mid)"
        self.setStyleSheet(f"QFrame#slotCard {{ border: {border}; border-radius: 6px; }}")

    # --- gestures ----------------------------------------------------------------------------------
    def clear(self) -> None:
        if self._value != clear_slot(self._value):
            self._edit(clear_slot(self._value), "clear")

    def swap(self) -> None:
        if self._value.a is not None or self._value.b is not None:
            self._edit(swap_sources(self._value), "swap A/B")

    def _edit(self, value: SlotValue, text: str, merge_key: str | None = None) -> None:
        self.edited.emit(self.spec.name, value, f"{slot_title(self.spec)}: {text}", merge_key)

    def _new_gesture(self) -> None:
        self._gesture += 1

    def _on_slider(self, position: int) -> None:
        t = position / T_STEPS
        self.t_label.setText(f"t = {t:.2f}")
        self._edit(self._value.with_t(t), "move A→B", f"t:{self.spec.name}:{self._gesture}")

    def _on_lock(self, locked: bool) -> None:
        self._edit(replace(self._value, locked=locked), "lock" if locked else "unlock")

    def _tool(self, text: str, tip: str, checkable: bool = False) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.setCheckable(checkable)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return b

    # --- Qt ----------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        self.tile_a.dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        self.tile_a.dragMoveEvent(event)

    def dragLeaveEvent(self, event) -> None:
        self.tile_a.dragLeaveEvent(event)

    def dropEvent(self, event) -> None:
        self.tile_a.dropEvent(event)

    def mousePressEvent(self, event) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        super().mousePressEvent(event)

    def focusInEvent(self, event) -> None:
        self.activated.emit(self.spec.name)
        super().focusInEvent(event)
