"""One composer slot: source A, an optional second source B with a slider between them, an optional mixture of
further sources with weights, and an optional step toward an attribute value.

The widget never edits the composition itself. It shows a ``SlotValue`` and reports what the user asked for:
drops (``dropped``; the composer turns files into sources off the GUI thread) and finished edits (``edited``,
carrying the new ``SlotValue``, an undo text and a merge key for continuous gestures). The pure edit functions
below are what those gestures do, so they are testable without a window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.service.composition import (
    DirectionStep,
    FileSource,
    ItemSource,
    LatentSource,
    MixtureSource,
    SlotValue,
    Source,
)
from studio.slots import SlotSpec
from studio.ui.image_view import ImageView
from studio.ui.mime import decode_items, image_files
from studio.ui.names import slot_title, value_phrase

T_STEPS = 1000          # slider resolution of t in [0, 1]
#: What Lock means, everywhere: the slot keeps its value until unlocked (undo and redo still step through it).
LOCK_TIP = ("lock this slot: it keeps its value; drops, its own sliders, Swap, Clear, Clear all, the global "
            "slider and Synthesise leave it alone until it is unlocked (L)")
WEIGHT_STEPS = 100      # slider resolution of a mixture weight in [0, 1]
AMOUNT_STEPS = 300      # slider ticks on each side of zero for a direction step

#: Describes a source for display: (thumbnail or None, short caption, tooltip).
Describer = Callable[[Source], tuple[np.ndarray | None, str, str]]


# --- pure edits ---------------------------------------------------------------------------------------------------
def drop_payload(mime: QMimeData, fingerprint: str) -> tuple[list[int], list[str]] | None:
    """Dataset items and image files a drop carries, or None if it carries nothing a slot can take.

    Items of another dataset (a different fingerprint) are refused: their indices would mean other images here.
    """
    items = decode_items(mime)
    if items is not None:
        indices, source_fp = items
        if source_fp and fingerprint and source_fp != fingerprint:
            return None
        return (indices, []) if indices else None
    files = image_files(mime)
    return ([], files) if files else None


def mixture_parts(value: SlotValue) -> list[tuple[Source, float]]:
    """Source A as a list of weighted parts (a plain source is one part of weight 1)."""
    if isinstance(value.a, MixtureSource):
        return list(value.a.parts)
    return [] if value.a is None else [(value.a, 1.0)]


def with_parts(value: SlotValue, parts: Sequence[tuple[Source, float]]) -> SlotValue:
    """Source A from weighted parts: none -> empty, one -> the plain source, several -> a mixture."""
    if not parts:
        return replace(value, a=None)
    if len(parts) == 1:
        return replace(value, a=parts[0][0])
    return replace(value, a=MixtureSource(tuple((s, float(w)) for s, w in parts)))


def put_sources(value: SlotValue, target: str, sources: Sequence[Source], base: Source | None = None) -> SlotValue:
    """What a drop does: onto A several sources fill A and B (a pair to interpolate); onto B the first becomes B;
    onto "mix" they join A as mixture parts with weight 1 (an empty A joins as the ``base`` it shows)."""
    if not sources:
        return value
    if target == "mix":
        parts = mixture_parts(value) or ([(base, 1.0)] if base is not None else [])
        return with_parts(value, [*parts, *((s, 1.0) for s in sources)])
    if target == "b":
        return replace(value, b=sources[0])
    if len(sources) >= 2:
        return replace(value, a=sources[0], b=sources[1])
    return replace(value, a=sources[0])


def swap_sources(value: SlotValue) -> SlotValue:
    return replace(value, a=value.b, b=value.a)


def clear_slot(value: SlotValue) -> SlotValue:
    """Forget the sources, the position and the steps; the lock stays (it is about the slot, not its content)."""
    return SlotValue(locked=value.locked)


def set_weight(value: SlotValue, part: int, weight: float) -> SlotValue:
    parts = mixture_parts(value)
    parts[part] = (parts[part][0], max(0.0, float(weight)))
    return with_parts(value, parts)


def remove_part(value: SlotValue, part: int) -> SlotValue:
    parts = mixture_parts(value)
    del parts[part]
    return with_parts(value, parts)


def set_step(value: SlotValue, step: DirectionStep | None) -> SlotValue:
    """The composer offers one direction step per slot; a zero amount removes it."""
    if step is None or step.amount == 0:
        return replace(value, steps=())
    return replace(value, steps=(step,))


def source_kind(source: Source | None) -> str:
    if source is None:
        return "empty"
    if isinstance(source, ItemSource):
        return "item"
    if isinstance(source, FileSource):
        return "file"
    if isinstance(source, LatentSource):
        return "latent"
    return "mixture"


# --- widgets --------------------------------------------------------------------------------------------------------
class SourceTile(QFrame):
    """A drop target that shows one source's thumbnail and a caption."""

    dropped = Signal(list, list)  # item indices, image file paths

    def __init__(self, letter: str, placeholder: str, fingerprint: Callable[[], str], side: int = 72,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fingerprint = fingerprint
        self.locked = False  # the card's slot is locked: drops are refused (the card sets this)
        self.setAcceptDrops(True)
        self.setObjectName("sourceTile")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.view = ImageView(placeholder, side)
        self.view.setFixedSize(side, side)
        self.caption = QLabel("")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("color: palette(placeholder-text); font-size: 8pt;")
        self.caption.setFixedWidth(side + 8)
        self.letter = QLabel(letter)
        self.letter.setStyleSheet("font-weight: bold; font-size: 8pt;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(3, 2, 3, 2)
        lay.setSpacing(1)
        lay.addWidget(self.letter, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.view, 0, Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.caption, 0, Qt.AlignmentFlag.AlignCenter)
        self._set_highlight(False)

    def show_source(self, image: np.ndarray | None, caption: str, tooltip: str, dimmed: bool = False) -> None:
        self.view.set_image(image)
        self.view.set_dimmed(dimmed)
        self.caption.setText(caption)
        self.setToolTip(tooltip)

    def _set_highlight(self, on: bool) -> None:
        self.setStyleSheet("QFrame#sourceTile { border: 2px solid palette(highlight); border-radius: 4px; }" if on
                           else "QFrame#sourceTile { border: 1px dashed palette(mid); border-radius: 4px; }")

    # drag and drop -------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if self.locked or drop_payload(event.mimeData(), self._fingerprint()) is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self._set_highlight(True)

    def dragMoveEvent(self, event) -> None:
        if self.locked or drop_payload(event.mimeData(), self._fingerprint()) is None:
            event.ignore()
        else:
            event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self._set_highlight(False)

    def dropEvent(self, event) -> None:
        self._set_highlight(False)
        payload = None if self.locked else drop_payload(event.mimeData(), self._fingerprint())
        if payload is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.dropped.emit(*payload)


class MixturePartRow(QWidget):
    """One extra mixture part: its thumbnail, a weight slider and a remove button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView("", 28)
        self.view.setFixedSize(28, 28)
        self.caption = QLabel("")
        self.caption.setMinimumWidth(70)
        self.weight = QSlider(Qt.Orientation.Horizontal)
        self.weight.setRange(0, WEIGHT_STEPS)
        self.weight.setToolTip("weight of this source in the mixture (weights are normalised)")
        self.weight_label = QLabel("")
        self.weight_label.setMinimumWidth(34)
        self.remove = QToolButton()
        self.remove.setText("×")
        self.remove.setToolTip("remove this source from the mixture")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.view, self.caption, self.weight, self.weight_label, self.remove):
            lay.addWidget(w)
        lay.setStretch(2, 1)


class SlotWidget(QFrame):
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
        self._direction_choices: list[tuple[str, str]] = []
        self._reach = 1.0  # latent units at the amount slider's ends
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

        # mixture parts beyond the first
        self.parts_box = QWidget()
        self.parts_layout = QVBoxLayout(self.parts_box)
        self.parts_layout.setContentsMargins(0, 0, 0, 0)
        self.parts_layout.setSpacing(2)
        self._part_rows: list[MixturePartRow] = []

        # directions
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
        self.directions_button.setVisible(spec.attribute is not None)

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
        self.amount_slider.sliderPressed.connect(self._new_gesture)
        self.amount_slider.valueChanged.connect(self._on_amount)
        self.direction_combo.currentIndexChanged.connect(self._on_direction_choice)
        self.direction_reset.clicked.connect(lambda: self._edit(set_step(self._value, None), "remove direction"))
        self.lock_button.toggled.connect(self._on_lock)
        self.swap_button.clicked.connect(self.swap)
        self.clear_button.clicked.connect(self.clear)
        self.directions_button.toggled.connect(self._on_directions_toggled)
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
            self.tile_a.show_source(image, "base: " + caption,
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

    def _show_parts(self, parts: list[tuple[Source, float]]) -> None:
        rows = parts if len(parts) > 1 else []
        while len(self._part_rows) < len(rows):
            row = MixturePartRow()
            k = len(self._part_rows)
            row.weight.sliderPressed.connect(self._new_gesture)
            row.weight.valueChanged.connect(lambda pos, k=k: self._on_weight(k, pos))
            row.remove.clicked.connect(lambda _=False, k=k: self._edit(remove_part(self._value, k), "unmix"))
            self.parts_layout.addWidget(row)
            self._part_rows.append(row)
        while len(self._part_rows) > len(rows):
            row = self._part_rows.pop()
            row.setParent(None)
            row.deleteLater()
        for k, row in enumerate(self._part_rows):
            source, weight = rows[k]
            image, caption, tip = self._describe(source)
            row.view.set_image(image)
            row.caption.setText(caption)
            row.setToolTip(tip)
            row.weight.blockSignals(True)
            row.weight.setValue(round(min(1.0, weight) * WEIGHT_STEPS))
            row.weight.blockSignals(False)
            row.weight_label.setText(self._weight_share(rows, k))
        self.parts_box.setVisible(bool(rows))

    def _on_weight(self, part: int, position: int) -> None:
        self._edit(set_weight(self._value, part, position / WEIGHT_STEPS), "mixture weight",
                   f"w:{self.spec.name}:{part}:{self._gesture}")

    @staticmethod
    def _weight_share(parts: list[tuple[Source, float]], k: int) -> str:
        total = sum(w for _, w in parts)
        return f"{(parts[k][1] / total if total > 0 else 0):.0%}"

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
