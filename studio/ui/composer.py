"""The composer: one card per model slot, the composed image, a global A→B slider and query mode.

Every change is a ``CompositionChange`` on ``undo_stack``; the panel's only mutable state is the current
``Composition``, and ``_set_composition`` is the single place that shows it and asks the service for pixels.
Every edit asks the service for pixels with ``compose_latest``: the service keeps at most one compose of the
panel's channel running and one queued, a newer edit replaces the queued one (its future is cancelled), and
results arrive in order through ``watch``. So a slider drag shows a fresh image as often as the model can make
one, and a result always belongs to a composition the user really had.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from studio.data.image_files import ImageFileError, open_image
from studio.errors import StudioError
from studio.service.composer_model import ComposerModel
from studio.service.composition import (
    Composition,
    FileSource,
    ItemSource,
    LatentSource,
    MixtureSource,
    Project,
    SlotValue,
    Source,
)
from studio.service.exports import enlarged, save_image_atomically
from studio.ui.composer_commands import CompositionChange
from studio.ui.image_view import ImageView
from studio.ui.names import attribute_title, slot_title, values_phrase
from studio.ui.query_panel import QueryPanel
from studio.ui.slot_widget import AMOUNT_STEPS, T_STEPS, SlotWidget, put_sources
from studio.ui.workers import gui_callback, watch

THUMB_SIDE = 72
QUERY_ANSWERS_KEPT = 64
MIN_SLOT_COLUMN = 300  # px; the cards ask for more when their headers need it
NO_MODEL = "No model loaded.\nOpen a model (File ▸ Open model…)\nor train one in the Training tab."
NO_SLOTS = "The model's slots appear here:\none card per attribute, to drop items into."
EMPTY = "Drag items from the browser,\nor image files from the desktop,\ninto the slots."
CANNOT_ENCODE = ("This model cannot encode images yet:\nits encoders are trained in a later stage.\n"
                 "Train it further (Train tab)\nor open a later checkpoint.")


def _source_files(source: Source | None) -> list[str]:
    if isinstance(source, FileSource):
        return [source.path]
    if isinstance(source, MixtureSource):
        return [p for s, _ in source.parts for p in _source_files(s)]
    return []


def _source_items(source: Source | None) -> list[int]:
    if isinstance(source, ItemSource):
        return [source.index]
    if isinstance(source, MixtureSource):
        return [i for s, _ in source.parts for i in _source_items(s)]
    return []


def can_encode(model: Any) -> bool:
    """Whether the model can turn images into latents (LORD cannot before its second stage); every source the
    composer offers, dataset items included, is an image to encode."""
    return model is not None and bool(getattr(model, "can_encode", True))


def cannot_encode_message(model: Any) -> str:
    """One line for status bars and error labels (``CANNOT_ENCODE`` is the multi-line placeholder)."""
    step = getattr(model, "step", None)
    at = f" at step {step:,}" if isinstance(step, int) else ""
    return (f"This model{at} cannot encode images yet: its encoders are trained in a later stage. Train it further "
            "(Train tab) or open a later checkpoint.")


def has_any_source(composition: Composition) -> bool:
    return composition.base is not None or any(v.a is not None for v in composition.slots.values())


class ComposerPanel(QWidget):
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
        self._thumbs: OrderedDict[Source, tuple[np.ndarray | None, str, str]] = OrderedDict()
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

        # output: the synthesis and, after a query, the dataset's real image beside it
        self.output = ImageView(NO_MODEL, 256)
        self.output.setMinimumSize(160, 160)
        self.output_caption = QLabel("composed")
        self.exact_view = ImageView("", 128)
        self.exact_view.setMinimumSize(96, 96)
        self.exact_caption = QLabel("")
        self.exact_caption.setWordWrap(True)
        self.exact_box = QWidget()
        exact_lay = QVBoxLayout(self.exact_box)
        exact_lay.setContentsMargins(0, 0, 0, 0)
        exact_lay.addWidget(self.exact_caption)
        exact_lay.addWidget(self.exact_view, 1)
        self.exact_box.setVisible(False)
        synth_lay = QVBoxLayout()
        synth_lay.addWidget(self.output_caption)
        synth_lay.addWidget(self.output, 1)
        images = QHBoxLayout()
        images.addLayout(synth_lay, 3)
        images.addWidget(self.exact_box, 2)

        self.status = QLabel("")
        self.status.setStyleSheet("color: palette(placeholder-text);")
        self.status.setWordWrap(True)

        self.global_slider = QSlider(Qt.Orientation.Horizontal)
        self.global_slider.setRange(0, T_STEPS)
        self.global_slider.setToolTip("move every unlocked slot that has a second source from A to B together")
        self.global_label = QLabel("")
        global_row = QHBoxLayout()
        global_row.addWidget(QLabel("All slots  A"))
        global_row.addWidget(self.global_slider, 1)
        global_row.addWidget(QLabel("B"))
        global_row.addWidget(self.global_label)

        self.undo_button = QToolButton()
        self.undo_button.setText("Undo")
        self.undo_button.clicked.connect(self.undo_stack.undo)
        self.redo_button = QToolButton()
        self.redo_button.setText("Redo")
        self.redo_button.clicked.connect(self.undo_stack.redo)
        self.undo_stack.indexChanged.connect(self._sync_undo_buttons)
        self._sync_undo_buttons()
        self.clear_all_button = QToolButton()
        self.clear_all_button.setText("Clear all")
        self.clear_all_button.setToolTip("clear every unlocked slot")
        self.clear_all_button.clicked.connect(self.clear_all)
        tools = QHBoxLayout()
        tools.addWidget(self.undo_button)
        tools.addWidget(self.redo_button)
        tools.addStretch(1)
        tools.addWidget(self.clear_all_button)

        self.query_panel = QueryPanel()
        self.query_box = QGroupBox("Query: synthesise attribute values")
        qlay = QVBoxLayout(self.query_box)
        qlay.addWidget(self.query_panel)

        out = QWidget()
        out_lay = QVBoxLayout(out)
        out_lay.setContentsMargins(4, 4, 4, 4)
        out_lay.addLayout(tools)
        out_lay.addLayout(images, 1)
        out_lay.addWidget(self.status)
        out_lay.addLayout(global_row)
        out_lay.addWidget(self.query_box)
        out.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.slots_scroll)
        self.splitter.addWidget(out)
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

    def export_image(self, path: str | Path, scale: int = 1) -> Path:
        """Save the composed image (``scale`` enlarges it with crisp pixels)."""
        if self._image is None:
            raise StudioError("nothing to export yet: compose an image first (drop items into the slots)")
        return save_image_atomically(path, enlarged(self._image, scale))

    def export_interpolation(self, path: str | Path, kind: str, frames: int, scale: int = 1, frame_ms: int = 80,
                             progress: Callable[[float], None] | None = None) -> Future:
        """The interpolation of every unlocked slot with a second source, from A to B, as a ``strip`` (one row
        of images) or a ``gif`` (A → B and back, so it loops without a jump), made and written off the GUI thread:
        the future holds the written path, cancelling it stops between frames. StudioError at once when there is
        nothing to interpolate."""
        self._check_interpolation(frames)
        return self.service.export_interpolation_async(self._composition, path, kind, int(frames), scale,
                                                       frame_ms, progress)

    def export_strip(self, path: str | Path, frames: int = 9, scale: int = 1) -> Path:
        """``export_interpolation`` as a strip, waited for (scripts and tests; the window does not wait)."""
        return self.export_interpolation(path, "strip", frames, scale).result()

    def export_gif(self, path: str | Path, frames: int = 24, scale: int = 1, frame_ms: int = 80) -> Path:
        """``export_interpolation`` as a looping GIF, waited for."""
        return self.export_interpolation(path, "gif", frames, scale, frame_ms).result()

    def save_project(self, path: str | Path) -> Path:
        model = self.service.model
        dataset = self.service.items
        Project(self._composition, checkpoint=str(getattr(model, "path", "") or ""),
                dataset=str(getattr(dataset, "spec", "") or "")).save(path)
        return Path(path)

    def open_project(self, path: str | Path) -> Project:
        """Load a project's composition into the composer (undoable). The project must fit the loaded model."""
        project = Project.load(path)
        self._check_fits(project, Path(path))
        self._push(project.composition, f"open {Path(path).name}")
        return project

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

    def _on_slot_dropped(self, slot: str, target: str, items: list[int], files: list[str]) -> None:
        model = self.service.model
        if model is not None and not can_encode(model):  # say why at once, instead of failing on every compose
            self._show_status(cannot_encode_message(model), error=True)
            return
        if items:
            sources = [ItemSource(int(i)) for i in items]
            what = f"item {items[0]}" + (f" and {len(items) - 1} more" if len(items) > 1 else "")
            self._edit_slot(slot, put_sources(self._composition.slot(slot), target, sources, self._composition.base),
                            f"{self._title(slot)}: {what}")
        elif files:
            self._show_status(f"encoding {Path(files[0]).name}…")
            watch(self.service.submit(self._encode_files, files), owner=self,
                  on_result=lambda encoded: self._on_files_encoded(slot, target, encoded),
                  on_error=self._on_background_error)

    def _encode_files(self, files: list[str]) -> tuple[list[str], list[str]]:
        """Worker thread: encode each file once through the service (it caches), so a bad file is reported at
        the drop instead of breaking every later compose; and ask how far each lies from the training data, so
        that an image the model cannot represent (a letter outside its alphabet, a photo) is not used silently."""
        warnings = []
        familiarity = getattr(self.service, "image_familiarity", None)
        for path in files:
            self.service.encode_image(path)
            text = ""
            if familiarity is not None and self.service.items is not None:
                try:
                    text = familiarity(path).summary(Path(path).name)
                except StudioError:
                    text = ""
            warnings.append(text)
        return files, warnings

    def _on_files_encoded(self, slot: str, target: str, encoded: tuple[list[str], list[str]]) -> None:
        files, warnings = encoded
        if slot not in self._slot_widgets:
            return
        sources = [FileSource(str(Path(p).resolve())) for p in files]
        for source, text in zip(sources, warnings):
            self._file_warnings[source.path] = text
        self._edit_slot(slot, put_sources(self._composition.slot(slot), target, sources, self._composition.base),
                        f"{self._title(slot)}: {Path(files[0]).name}")
        self._announce_file_warnings()

    def file_warnings(self) -> list[str]:
        """Warnings about the image files the composition on show uses (far from the training data)."""
        used = {p for v in self._composition.slots.values() for src in (v.a, v.b) for p in _source_files(src)}
        return [text for path, text in self._file_warnings.items() if text and path in used]

    def _announce_file_warnings(self) -> None:
        warnings = self.file_warnings()
        if warnings:
            self._show_status(" ".join(warnings), error=True)

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

    # --- query mode ----------------------------------------------------------------------------------
    def synthesise(self, values: dict[str, str]) -> None:
        """Fill every slot from the service's cover set for ``values`` (off the GUI thread)."""
        if self.service.model is None or self.service.items is None:
            self.query_panel.show_result("Open a model and a dataset first.")
            return
        self._query_pending = True
        self.query_panel.show_result("finding a cover set…")
        watch(self.service.query_async(dict(values)), owner=self,
              on_result=lambda result: self._on_query_answered(values, result), on_error=self._on_query_failed)

    def _on_query_answered(self, values: dict[str, str], result: Any) -> None:
        composition = result.composition
        for name in self._slot_widgets:  # slots the cover does not name take its base
            if name not in composition.slots:
                composition = composition.with_slot(name, SlotValue())
        kept = []
        for name in self._slot_widgets:  # a locked slot keeps its value, even one that showed the old base
            current = self._composition.slot(name)
            if current.locked:
                if current.a is None and self._composition.base is not None:
                    current = replace(current, a=self._composition.base)
                composition = composition.with_slot(name, current)
                kept.append(self._title(name))
        text = values_phrase(values) or "any values"
        if result.exact_index is None:
            answer = "Zero-shot: no item of the dataset has exactly these values; the image is a synthesis."
        else:
            where = "training" if getattr(result, "exact_in_training", False) else "held-out"
            answer = f"The dataset has this exact image (item {result.exact_index}, {where}), shown beside."
        if kept:
            answer += f" Locked, kept: {', '.join(kept)}."
        self._query_pending = False
        self._query_answers.append((composition, result.exact_index, f"{text}. {answer}"))
        del self._query_answers[:-QUERY_ANSWERS_KEPT]
        if composition == self._composition:
            self._show_query_match()
        self._push(composition, f"query {text}")

    def _on_query_failed(self, error: BaseException) -> None:
        self._query_pending = False
        self.query_panel.show_result(str(error))

    def query_answer(self) -> tuple[int | None, str] | None:
        """(exact item, answer text) of the query that made the composition on show, or None."""
        return next(((exact, text) for comp, exact, text in reversed(self._query_answers)
                     if comp == self._composition), None)

    def _show_query_match(self) -> None:
        """The exact image beside the synthesis and the query's answer, while (and whenever, after undo and redo)
        the composition is the one a query made."""
        match = self.query_answer()
        if not self._query_pending:
            self.query_panel.show_result(match[1] if match is not None else "")
        if match is None:
            self.exact_box.setVisible(False)
            self.output_caption.setText("composed")
            return
        exact = match[0]
        self.output_caption.setText("synthesis")
        if exact is None:
            self.exact_view.set_image(None)
            self.exact_view.set_placeholder("not in the dataset\n(zero-shot)")
            self.exact_caption.setText("in the dataset: none")
        else:
            self.exact_view.set_image(self.service.items.image(int(exact)))
            self.exact_caption.setText(f"in the dataset: item {exact}")
        self.exact_box.setVisible(True)

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
        self.global_slider.setToolTip("move every unlocked slot that has a second source from A to B together"
                                      if movable else "drop a second source (B) into a slot to interpolate")

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

    # --- model and dataset ---------------------------------------------------------------------------
    def _on_model_or_dataset_changed(self, *_: Any) -> None:
        """Rebuild the cards for a new model; start from the dataset's most legible item as the base."""
        model, dataset = self.service.model, self.service.items
        key = (id(model), getattr(model, "path", None), id(dataset))
        if key == self._model_key:
            return
        self._model_key = key
        self._thumbs.clear()
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
                widget = SlotWidget(spec, self._describe, self._fingerprint)
                widget.edited.connect(self._on_slot_edited)
                widget.dropped.connect(self._on_slot_dropped)
                widget.directions_wanted.connect(self._fetch_directions)
                widget.activated.connect(self.slot_activated)
                widget.activated.connect(self._on_slot_activated)
                if not can_encode(model):  # directions are fitted on encoded items
                    widget.directions_button.setEnabled(False)
                    widget.directions_button.setToolTip(cannot_encode_message(model))
                self.slots_layout.insertWidget(k, widget)
                self._slot_widgets[spec.name] = widget
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
        candidates = np.arange(min(32, len(dataset)))
        contrast = [float(dataset.image(int(i)).std()) for i in candidates]
        return int(candidates[int(np.argmax(contrast))])

    def _fingerprint(self) -> str:
        dataset = self.service.items
        return str(getattr(dataset, "fingerprint", "") or "") if dataset is not None else ""

    def _describe(self, source: Source) -> tuple[np.ndarray | None, str, str]:
        """Thumbnail, caption and tooltip of a source (cached: cards refresh on every slider step)."""
        hit = self._thumbs.get(source)
        if hit is not None:
            return hit
        described = self._describe_uncached(source)
        self._thumbs[source] = described
        while len(self._thumbs) > 512:
            self._thumbs.popitem(last=False)
        return described

    def _describe_uncached(self, source: Source) -> tuple[np.ndarray | None, str, str]:
        dataset = self.service.items
        if isinstance(source, ItemSource):
            if dataset is None or not 0 <= source.index < len(dataset):
                return None, f"item {source.index}?", "this item is not in the open dataset"
            values = dataset.values(source.index)
            tip = f"item {source.index}\n" + "\n".join(f"{k}: {v}" for k, v in values.items())
            return dataset.image(source.index), f"item {source.index}", tip
        if isinstance(source, FileSource):
            name = Path(source.path).name
            caption = name if len(name) <= 14 else name[:11] + "…"
            try:
                with open_image(source.path) as im:
                    thumb = im.convert("RGB")
                    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.NEAREST)
                    return np.asarray(thumb), caption, source.path
            except ImageFileError as e:
                state = "missing" if e.reason == "no such file" else "unreadable"
                return None, f"{caption} ({state})", f"{source.path}\n{e.reason}"
        if isinstance(source, LatentSource):
            return None, "stored latent", "a latent value stored in the project"
        if isinstance(source, MixtureSource) and source.parts:
            image, _, _ = self._describe(source.parts[0][0])
            return image, f"mix of {len(source.parts)}", "a weighted mixture of several sources"
        return None, "", ""

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

    # --- helpers -------------------------------------------------------------------------------------
    def _title(self, slot: str) -> str:
        widget = self._slot_widgets.get(slot)
        return slot_title(widget.spec) if widget is not None else attribute_title(slot)

    def _check_slot(self, slot: str) -> None:
        if slot not in self._slot_widgets:
            known = ", ".join(self._slot_widgets) or "none (no model loaded)"
            raise StudioError(f"no slot named {slot!r}; the model's slots are: {known}")

    def _check_fits(self, project: Project, path: Path) -> None:
        model = self.service.model
        if model is None:
            raise StudioError(f"{path}: open a model first (the project was made with {project.checkpoint or '?'})")
        unknown = sorted(set(project.composition.slots) - set(self._slot_widgets))
        if unknown:
            raise StudioError(f"{path}: slots {', '.join(unknown)} are not in the loaded model ({model.method}: "
                              f"{', '.join(self._slot_widgets)}); open the project's model "
                              f"{project.checkpoint or ''} first")
        comp = project.composition
        items = [i for v in comp.slots.values() for s in (v.a, v.b) for i in _source_items(s)]
        items += _source_items(comp.base)
        dataset = self.service.items
        if items and dataset is None:
            raise StudioError(f"{path}: the project uses dataset items; open its dataset {project.dataset} first")
        bad = [i for i in items if not 0 <= i < len(dataset)] if items else []
        if bad:
            raise StudioError(f"{path}: items {bad[:5]} are outside the open dataset {dataset.spec} "
                              f"({len(dataset)} items); open the project's dataset {project.dataset} first")

    def _check_interpolation(self, frames: int) -> None:
        if self.service.model is None:
            raise StudioError("no model loaded: open a model before exporting")
        if frames < 2:
            raise StudioError(f"an interpolation needs at least 2 frames, not {frames}")
        if not any(v.b is not None and not v.locked for v in self._composition.slots.values()):
            raise StudioError("nothing to interpolate: no unlocked slot has a second source. Drop an item onto a "
                              "slot's B tile first.")

    def _on_slot_activated(self, slot: str) -> None:
        self.model.active_slot = slot

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if not isValid(self):
            return
        for widget in self._slot_widgets.values():
            widget.set_active(new is not None and (new is widget or widget.isAncestorOf(new)))


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


__all__ = ["AMOUNT_STEPS", "ComposerPanel", "direction_reach"]
