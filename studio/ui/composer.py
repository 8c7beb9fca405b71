"""The composer: one card per model slot, the composed image, a global A→B slider and query mode.

Every change is a ``CompositionChange`` on ``undo_stack``; the panel's only mutable state is the current
``Composition``, and ``_set_composition`` is the single place that shows it and asks the service for pixels.
Every edit asks the service for pixels with ``compose_latest``: the service keeps at most one compose of the
panel's channel running and one queued, a newer edit replaces the queued one (its future is cancelled), and
results arrive in order through ``watch``. So a slider drag shows a fresh image as often as the model can make
one, and a result always belongs to a composition the user really had.

This module is the panel's core: edits, undo and showing a composition. The rest lives beside it, each in its own
module: the slot cards and their directions (composer_slots), drops of items and files (composer_drops), query
mode (composer_queries), exports and projects (composer_exports), the output column's widgets (composer_output),
what a source shows on its card (composer_sources) and whether the model can encode yet (encoding_readiness).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import QApplication, QHBoxLayout, QSplitter, QWidget

from studio.errors import StudioError
from studio.service.composer_model import ComposerModel
from studio.service.composition import Composition, ItemSource, SlotValue
from studio.ui.composer_commands import CompositionChange
from studio.ui.composer_drops import SlotDrops
from studio.ui.composer_exports import ComposerExports
from studio.ui.composer_output import EMPTY, GLOBAL_SLIDER_TIP, NO_MODEL, ComposerOutput
from studio.ui.composer_queries import QUERY_ANSWERS_KEPT, QueryMode
from studio.ui.composer_slots import MIN_SLOT_COLUMN, NO_SLOTS, SlotCards, direction_reach
from studio.ui.composer_sources import THUMB_SIDE, SourceDescriptions, has_any_source
from studio.ui.encoding_readiness import CANNOT_ENCODE, can_encode, cannot_encode_message
from studio.ui.names import attribute_title, slot_title
from studio.ui.slot_directions import AMOUNT_STEPS
from studio.ui.slot_edits import put_sources
from studio.ui.slot_widget import T_STEPS, SlotWidget
from studio.ui.workers import gui_callback, watch

#: The names importers of this module have always found here (several now live in the modules above).
__all__ = ["AMOUNT_STEPS", "CANNOT_ENCODE", "EMPTY", "MIN_SLOT_COLUMN", "NO_MODEL", "NO_SLOTS", "QUERY_ANSWERS_KEPT",
           "THUMB_SIDE", "ComposerPanel", "can_encode", "cannot_encode_message", "direction_reach", "has_any_source"]


class ComposerPanel(SlotCards, SlotDrops, QueryMode, ComposerExports, QWidget):
    """See the module docstring. Signals: ``composition_changed(Composition)``, ``image_changed(np.ndarray)``,
    ``result_changed(ComposeResult)`` (the image with its latents, for the latent plot), ``slot_activated(str)``
    (the user focused a slot card) and ``status_changed(str)``."""

    composition_changed = Signal(object)
    image_changed = Signal(object)
    result_changed = Signal(object)
    slot_activated = Signal(str)
    status_changed = Signal(str)

    def __init__(self, service: Any, parent: QWidget | None = None, channel: str = "composer") -> None:
        super().__init__(parent)
        self.service = service
        self._channel = channel
        self._composition = Composition()
        self._slot_widgets: dict[str, SlotWidget] = {}
        self._descriptions = SourceDescriptions(lambda: self.service.items)
        self._compose_future: Future | None = None
        self._shown_request = 0
        self._image: np.ndarray | None = None
        self._result: Any = None
        self._global_gesture = 0
        # (composition a query made, its exact item, the answer): shown whenever that composition is, undo or not
        self._query_answers: list[tuple[Composition, int | None, str]] = []
        self._query_pending = False
        self._file_warnings: dict[str, str] = {}  # image file -> why the model may not represent it ('' if fine)
        self._paths_prepared: set[str] = set()
        self._layout: tuple[Any, ...] | None = None  # slots and data the composition was made for
        self._model_key: tuple[Any, ...] | None = None
        self._directions: dict[str, Any] = {}

        self.undo_stack = QUndoStack(self)
        self.undo_action: QAction = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts(QKeySequence.StandardKey.Undo)
        self.redo_action: QAction = self.undo_stack.createRedoAction(self, "&Redo")
        redo_keys = list(QKeySequence.keyBindings(QKeySequence.StandardKey.Redo))
        if QKeySequence("Ctrl+Shift+Z") not in redo_keys:
            redo_keys.append(QKeySequence("Ctrl+Shift+Z"))
        self.redo_action.setShortcuts(redo_keys)
        self.addAction(self.undo_action)
        self.addAction(self.redo_action)

        #: the Qt-free state others observe (``model.events.composition``, ``.result``, ``.active_slot``)
        self.model = ComposerModel()
        self._build()
        self._relay_model = gui_callback(self._on_model_or_dataset_changed, owner=self)
        self.service.events.model_changed.connect(self._relay_model)
        self.service.events.dataset_changed.connect(self._relay_model)
        events, relay = self.service.events, self._relay_model
        self.destroyed.connect(lambda *_: [s.disconnect(relay, missing_ok=True)
                                           for s in (events.model_changed, events.dataset_changed)])
        self._on_model_or_dataset_changed()

    # --- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        slot_column = self._build_slot_column()
        self.output_column = ComposerOutput()
        self._expose_output(self.output_column)
        self.undo_button.clicked.connect(self.undo_stack.undo)
        self.redo_button.clicked.connect(self.undo_stack.redo)
        self.undo_stack.indexChanged.connect(self._sync_undo_buttons)
        self._sync_undo_buttons()
        self.clear_all_button.clicked.connect(self.clear_all)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(slot_column)
        self.splitter.addWidget(self.output_column)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.splitter)

        self.global_slider.sliderPressed.connect(self._on_global_pressed)
        self.global_slider.valueChanged.connect(self._on_global_slider)
        self.query_panel.synthesise_requested.connect(self.synthesise)
        QApplication.instance().focusChanged.connect(self._on_focus_changed)

    def _expose_output(self, column: ComposerOutput) -> None:
        """The output column's widgets under the panel's names, which the window, the screenshots and the tests
        use."""
        self.output = column.output
        self.output_caption = column.output_caption
        self.exact_view = column.exact_view
        self.exact_caption = column.exact_caption
        self.exact_box = column.exact_box
        self.status = column.status
        self.global_slider = column.global_slider
        self.global_label = column.global_label
        self.undo_button = column.undo_button
        self.redo_button = column.redo_button
        self.clear_all_button = column.clear_all_button
        self.query_panel = column.query_panel
        self.query_box = column.query_box

    # --- public API --------------------------------------------------------------------------------
    @property
    def composition(self) -> Composition:
        return self._composition

    @property
    def image(self) -> np.ndarray | None:
        """The image on show (the newest composed one)."""
        return self._image

    @property
    def result(self) -> Any:
        """The ComposeResult on show (image and per-slot latents), or None."""
        return self._result

    @property
    def slot_widgets(self) -> dict[str, SlotWidget]:
        return dict(self._slot_widgets)

    def slot_names(self) -> list[str]:
        return list(self._slot_widgets)

    def set_slot_item(self, slot: str, index: int) -> None:
        """Put dataset item ``index`` into ``slot``'s source A (the latent plot and the browser call this)."""
        self._check_slot(slot)
        value = put_sources(self._composition.slot(slot), "a", [ItemSource(int(index))])
        self._edit_slot(slot, value, f"{self._title(slot)}: item {int(index)}")

    def set_composition(self, composition: Composition, text: str = "set composition") -> None:
        """Replace the whole composition as one undoable step."""
        self._push(composition, text)

    def clear_all(self) -> None:
        slots = {k: (v if v.locked else SlotValue()) for k, v in self._composition.slots.items()}
        self._push(replace(self._composition, slots=slots), "clear all")

    # --- edits -------------------------------------------------------------------------------------
    def _push(self, after: Composition, text: str, merge_key: str | None = None) -> None:
        if after == self._composition:
            return
        self.undo_stack.push(CompositionChange(self._set_composition, self._composition, after, text, merge_key))

    def _edit_slot(self, slot: str, value: SlotValue, text: str, merge_key: str | None = None) -> None:
        """Every edit of one slot comes through here, so a lock holds whatever asks: drops, the browser, plot
        clicks, the slot's own sliders, Swap, Clear. Only the Lock button itself (or undo) changes a locked slot."""
        current = self._composition.slot(slot)
        if current.locked and replace(value, locked=True) != current:
            self._show_status(f"{self._title(slot)} is locked: unlock it (Lock button or L) to change it",
                              error=True)
            widget = self._slot_widgets.get(slot)
            if widget is not None:  # put the card's sliders back where the composition is
                widget.set_value(current, self._composition.base)
            return
        self._push(self._composition.with_slot(slot, value), text, merge_key)

    def _on_slot_edited(self, slot: str, value: SlotValue, text: str, merge_key: str | None) -> None:
        self._edit_slot(slot, value, text, merge_key)

    def _on_global_pressed(self) -> None:
        self._global_gesture += 1

    def _on_global_slider(self, position: int) -> None:
        t = position / T_STEPS
        self.global_label.setText(f"t = {t:.2f}")
        self._push(self._composition.with_global_t(t), "move all slots A→B", f"global:{self._global_gesture}")

    def _sync_undo_buttons(self, *_: Any) -> None:
        """Fixed-width buttons; what they would undo or redo goes in the tooltip."""
        stack = self.undo_stack
        self.undo_button.setEnabled(stack.canUndo())
        self.redo_button.setEnabled(stack.canRedo())
        self.undo_button.setToolTip(f"Undo {stack.undoText()} (Ctrl+Z)" if stack.canUndo() else "nothing to undo")
        self.redo_button.setToolTip(f"Redo {stack.redoText()} (Ctrl+Shift+Z)" if stack.canRedo() else
                                    "nothing to redo")

    # --- showing a composition -----------------------------------------------------------------------
    def _set_composition(self, composition: Composition) -> None:
        """The single setter (undo commands call it): refresh the cards, then compose."""
        self._composition = composition
        for name, widget in self._slot_widgets.items():
            value = composition.slot(name)
            if widget.value != value or widget.base != composition.base:
                widget.set_value(value, composition.base)
        self._sync_global_slider()
        self._show_query_match()
        self.model.composition = composition
        self.composition_changed.emit(composition)
        self._request_compose()
        self._prepare_paths(composition)

    def _prepare_paths(self, composition: Composition) -> None:
        """A slot with a second source will be interpolated: sample where its data lies now, off the GUI thread,
        so that the first slider move does not wait for it (the service keeps paths on the data)."""
        manifold = getattr(self.service, "manifold", None)
        if manifold is None or self.service.items is None or not can_encode(self.service.model):
            return
        for name, value in composition.slots.items():
            if value.b is not None and name in self._slot_widgets and name not in self._paths_prepared:
                self._paths_prepared.add(name)
                watch(self.service.submit(manifold, name), owner=self,
                      on_error=lambda _e, n=name: self._paths_prepared.discard(n))

    def _sync_global_slider(self) -> None:
        movable = [v for v in self._composition.slots.values() if v.b is not None and not v.locked]
        self.global_slider.setEnabled(bool(movable))
        if movable and len({v.t for v in movable}) == 1:
            self.global_slider.blockSignals(True)
            self.global_slider.setValue(round(movable[0].t * T_STEPS))
            self.global_slider.blockSignals(False)
            self.global_label.setText(f"t = {movable[0].t:.2f}")
        elif movable:
            self.global_label.setText("mixed")
        else:
            self.global_label.setText("")
            self.global_slider.blockSignals(True)
            self.global_slider.setValue(0)
            self.global_slider.blockSignals(False)
        self.global_slider.setToolTip(GLOBAL_SLIDER_TIP if movable else
                                      "drop a second source (B) into a slot to interpolate")

    def _request_compose(self) -> None:
        if self.service.model is None:
            self._show_image(None, NO_MODEL)
            return
        if not can_encode(self.service.model):
            self._show_image(None, CANNOT_ENCODE)  # a drop says it again, in the status line
            return
        if not has_any_source(self._composition):
            self._show_image(None, EMPTY)
            return
        try:
            future = self.service.compose_latest(self._composition, channel=self._channel)
        except StudioError as e:
            self._show_status(str(e), error=True)
            return
        self._compose_future = future
        watch(future, self._on_composed, self._on_compose_failed, owner=self)

    @property
    def composing(self) -> bool:
        """Whether the newest composition's image is still being made."""
        return self._compose_future is not None and not self._compose_future.done()

    def _on_composed(self, result: Any) -> None:
        if result.request_id >= self._shown_request:
            self._shown_request = result.request_id
            self._result = result
            self.model.result = result
            h, w = result.image.shape[:2]
            self._show_image(result.image, "")
            warnings = self.file_warnings()  # they stay under the image while the composition uses such a file
            if warnings:
                self._show_status(" ".join(warnings), error=True, announce=False)
            else:
                self._show_status(f"{w}×{h} px · composed in {result.seconds * 1000:.0f} ms", announce=False)
            self.image_changed.emit(result.image)
            self.result_changed.emit(result)

    def _on_compose_failed(self, error: BaseException) -> None:
        self._show_status(str(error), error=True)

    def _show_image(self, image: np.ndarray | None, placeholder: str) -> None:
        if image is None:
            self._image = None
            self._result = None
            self.model.result = None
            self.output.set_placeholder(placeholder)
            self._show_status("", announce=False)
        self.output.set_image(image)
        if image is not None:
            self._image = image

    def _show_status(self, text: str, error: bool = False, announce: bool = True) -> None:
        """The line under the image; ``announce`` also tells the window (its status bar), which routine
        compose timings would only flood."""
        self.status.setStyleSheet("color: #c0392b;" if error else "color: palette(placeholder-text);")
        self.status.setText(text)
        if announce:
            self.status_changed.emit(text)

    def _on_background_error(self, error: BaseException) -> None:
        self._show_status(str(error), error=True)

    # --- helpers -------------------------------------------------------------------------------------
    def _title(self, slot: str) -> str:
        widget = self._slot_widgets.get(slot)
        return slot_title(widget.spec) if widget is not None else attribute_title(slot)

    def _check_slot(self, slot: str) -> None:
        if slot not in self._slot_widgets:
            known = ", ".join(self._slot_widgets) or "none (no model loaded)"
            raise StudioError(f"no slot named {slot!r}; the model's slots are: {known}")

