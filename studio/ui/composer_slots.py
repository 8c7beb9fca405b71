"""The composer's slot cards: one per slot of the loaded model, in a scrolling column, with the attribute
directions each card offers.

A new model rebuilds the cards and starts a fresh composition; another model with the same slots on the same data
(a later checkpoint, "Use in composer", a fine-tuned copy) keeps the composition and its undo history, because they
still mean the same. ``SlotCards`` is mixed into ``ComposerPanel``: it works on the panel's service, composition,
cards and undo stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget
from shiboken6 import isValid

from studio.service.composition import Composition, ItemSource, SlotValue
from studio.ui.composer_sources import has_any_source
from studio.ui.encoding_readiness import can_encode, cannot_encode_message
from studio.ui.slot_widget import SlotWidget
from studio.ui.workers import watch

MIN_SLOT_COLUMN = 300  # px; the cards ask for more when their headers need it
NO_SLOTS = "The model's slots appear here:\none card per attribute, to drop items into."
#: how many of the first items are compared when the service names no opening item
DEFAULT_ITEM_CANDIDATES = 32


def direction_reach(directions: Any) -> float:
    """How far the amount slider should reach: twice the largest distance of a value's centre from the middle of
    all centres along that value's direction, so every value is within reach whatever the latent scale."""
    present = np.asarray(directions.counts) > 0
    if not present.any():
        return 1.0
    centres = np.asarray(directions.centres, np.float64)[present]
    dirs = np.asarray(directions.directions, np.float64)[present]
    middle = centres.mean(axis=0)
    spread = np.abs(((centres - middle) * dirs).sum(axis=1)).max()
    return float(max(0.25, 2.0 * spread)) if np.isfinite(spread) else 1.0


class SlotCards:
    """The slot column of ``ComposerPanel``; see the module docstring."""

    def _build_slot_column(self) -> QScrollArea:
        self.slots_box = QWidget()
        self.slots_layout = QVBoxLayout(self.slots_box)
        self.slots_layout.setContentsMargins(4, 4, 4, 4)
        self.slots_layout.setSpacing(6)
        self.slots_hint = QLabel(NO_SLOTS)
        self.slots_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.slots_hint.setStyleSheet("color: palette(placeholder-text);")
        self.slots_layout.addWidget(self.slots_hint)
        self.slots_layout.addStretch(1)
        self.slots_scroll = QScrollArea()
        self.slots_scroll.setWidgetResizable(True)
        self.slots_scroll.setWidget(self.slots_box)
        self.slots_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.slots_scroll.setMinimumWidth(MIN_SLOT_COLUMN)
        self.slots_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return self.slots_scroll

    # --- model and dataset ---------------------------------------------------------------------------
    def _on_model_or_dataset_changed(self, *_: Any) -> None:
        """Rebuild the cards for a new model; start from the dataset's most legible item as the base."""
        model, dataset = self.service.model, self.service.items
        key = (id(model), getattr(model, "path", None), id(dataset))
        if key == self._model_key:
            return
        self._model_key = key
        self._descriptions.clear()
        self._directions.clear()
        self._file_warnings.clear()
        self._paths_prepared.clear()
        layout = self._layout_of(model, dataset)
        if layout is not None and layout == self._layout and has_any_source(self._composition):
            self._keep_composition(model)
            return
        replaced = self._layout is not None and layout is not None and self.undo_stack.count() > 0
        self._layout = layout
        self._query_answers.clear()
        self._query_pending = False
        for widget in self._slot_widgets.values():
            widget.setParent(None)
            widget.deleteLater()
        self._slot_widgets.clear()
        self.query_panel.set_schema(model.schema if model is not None else None)
        # query mode needs slots that stand for attributes (not so for unsupervised quadrant mixing)
        self.query_box.setVisible(model is not None and any(s.attribute for s in model.slots))
        self.query_box.setEnabled(can_encode(model))
        self.clear_all_button.setEnabled(model is not None)
        if model is None:
            self.slots_hint.setVisible(True)
        else:
            self.slots_hint.setVisible(False)
            for k, spec in enumerate(model.slots):
                self._add_card(k, spec, model)
        self._fit_slot_column()
        base = self._default_item()
        start = Composition({name: SlotValue() for name in self._slot_widgets},
                            ItemSource(base) if base is not None else None)
        self._composition = Composition()
        self._set_composition(start)
        self.undo_stack.clear()
        if replaced:
            self._show_status("The new model's slots or data differ from the composition's, so it starts afresh "
                              "(its undo history went with it)")

    def _add_card(self, row: int, spec: Any, model: Any) -> None:
        widget = SlotWidget(spec, self._descriptions.describe, self._fingerprint)
        widget.edited.connect(self._on_slot_edited)
        widget.dropped.connect(self._on_slot_dropped)
        widget.directions_wanted.connect(self._fetch_directions)
        widget.activated.connect(self.slot_activated)
        widget.activated.connect(self._on_slot_activated)
        if not can_encode(model):  # directions are fitted on encoded items
            widget.directions_button.setEnabled(False)
            widget.directions_button.setToolTip(cannot_encode_message(model))
        self.slots_layout.insertWidget(row, widget)
        self._slot_widgets[spec.name] = widget

    @staticmethod
    def _layout_of(model: Any, dataset: Any) -> tuple[Any, ...] | None:
        """What a composition depends on: the slots (names and shapes) and the dataset its item numbers index."""
        if model is None:
            return None
        slots = tuple((s.name, tuple(s.shape)) for s in model.slots)
        data = (getattr(dataset, "fingerprint", ""), len(dataset)) if dataset is not None else None
        return slots, data

    def _keep_composition(self, model: Any) -> None:
        """Another model with the same slots on the same data (a later checkpoint, "Use in composer", a fine-tuned
        copy): the composition and its undo history still mean the same, so keep both and compose anew."""
        for widget in self._slot_widgets.values():
            widget.spec = model.slot(widget.spec.name)
            widget.set_direction_choices([], "")  # directions belong to a model: fitted again when opened
            if widget.directions_button.isChecked():
                self._fetch_directions(widget.spec.name)
            widget.set_value(self._composition.slot(widget.spec.name), self._composition.base)
        self.query_box.setEnabled(can_encode(model))
        self._show_status(f"Kept the composition and its undo history for {getattr(model, 'title', 'the model')}",
                          announce=True)
        self._request_compose()
        self._prepare_paths(self._composition)

    def _fit_slot_column(self) -> None:
        """Never cut a card off: the column is at least as wide as the widest card wants (long attribute names
        and spatial shapes make wider headers)."""
        want = max((w.minimumSizeHint().width() for w in self._slot_widgets.values()), default=0)
        margins = self.slots_layout.contentsMargins()
        scrollbar = self.slots_scroll.verticalScrollBar().sizeHint().width()
        self.slots_scroll.setMinimumWidth(max(MIN_SLOT_COLUMN, want + margins.left() + margins.right() + scrollbar + 2))

    def _default_item(self) -> int | None:
        """A legible starting item: the one the service found the model draws back best (an opening that shows
        what the model can do), else the most contrasted of the first few (some items are blank by design, e.g. a
        letter in its background's colour)."""
        dataset = self.service.items
        if dataset is None or len(dataset) == 0:
            return None
        opening = getattr(self.service, "opening_item", None)
        if isinstance(opening, int) and 0 <= opening < len(dataset):
            return opening
        candidates = np.arange(min(DEFAULT_ITEM_CANDIDATES, len(dataset)))
        contrast = [float(dataset.image(int(i)).std()) for i in candidates]
        return int(candidates[int(np.argmax(contrast))])

    def _fingerprint(self) -> str:
        dataset = self.service.items
        return str(getattr(dataset, "fingerprint", "") or "") if dataset is not None else ""

    # --- directions ------------------------------------------------------------------------------------
    def _fetch_directions(self, slot: str) -> None:
        if slot in self._directions:
            self._show_directions(slot, self._directions[slot])
            return
        watch(self.service.directions_async(slot), owner=self, on_result=lambda d: self._show_directions(slot, d),
              on_error=lambda e: self._directions_failed(slot, e))

    def _show_directions(self, slot: str, directions: Any) -> None:
        self._directions[slot] = directions
        widget = self._slot_widgets.get(slot)
        if widget is None:
            return
        choices = [(directions.attribute, v) for k, v in enumerate(directions.values) if directions.counts[k] > 0]
        widget.set_direction_choices(choices, f"SVM accuracy {directions.accuracy:.0%} on encoded items",
                                     reach=direction_reach(directions))

    def _directions_failed(self, slot: str, error: BaseException) -> None:
        widget = self._slot_widgets.get(slot)
        if widget is not None:
            widget.set_direction_choices([], str(error))

    # --- which card is active ----------------------------------------------------------------------------
    def _on_slot_activated(self, slot: str) -> None:
        self.model.active_slot = slot

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if not isValid(self):
            return
        for widget in self._slot_widgets.values():
            widget.set_active(new is not None and (new is widget or widget.isAncestorOf(new)))
