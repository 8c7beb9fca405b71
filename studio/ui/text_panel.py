"""The Text panel: type a word or line and see it drawn in the composer's current style, live; drop a few
glyph images of an unseen font and get the whole alphabet in that font.

The panel only observes the composer (``composition_changed``) and never edits it, except on "Use in composer",
which puts the glyphs' font into the font slot as one undoable step. All model work goes through
``TextLineComposer`` (latest wins per channel, off the GUI thread); results come back through ``gui_callback``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.errors import StudioError
from studio.service.composition import Composition, SlotValue
from studio.service.font_completion import (
    alphabet_sheet,
    font_slot,
    glyph_source,
    known_font_source,
    morph_sheets,
    nearest_known_font,
    sheet_grid,
    style_from_files,
    style_with_glyphs,
)
from studio.service.text_line import TextLineComposer, alphabet, save_image
from studio.ui.image_view import ImageView
from studio.ui.mime import image_files
from studio.ui.workers import gui_callback

#: Words tried, in order, for the starting text: the first the model can draw whole.
STARTING_WORDS = ("Attribute Studio", "BADGE", "CAGED", "FACE", "HELLO")
TRACKING_STEPS = 40  # slider ticks for tracking 0 .. 0.4 of the height
MAX_SHOWN_GLYPHS = 8
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp)"
SCREEN_SHEET_COLUMNS = 26  # letters per row of the sheet shown in the dock (the export keeps its own grid)


def starting_text(letters: tuple[str, ...]) -> str:
    known = set(letters)
    for word in STARTING_WORDS:
        if all(c == " " or c in known for c in word):
            return word
    return "".join(letters[:8])


class GlyphDropZone(QFrame):
    """Where glyph images are dropped (image files only); shows their thumbnails."""

    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setObjectName("glyphZone")
        self.setMinimumHeight(64)
        self.setStyleSheet("QFrame#glyphZone { border: 1px dashed palette(mid); border-radius: 4px; }")
        self.hint = QLabel("Drop 1-5 images of letters in a font the model has not seen")
        self.hint.setStyleSheet("color: palette(placeholder-text);")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(6, 4, 6, 4)
        self.row.addWidget(self.hint, 1)
        self.row.addStretch(0)  # thumbnails sit together on the left
        self._views: list[ImageView] = []

    def show_glyphs(self, thumbs: list[np.ndarray]) -> None:
        for view in self._views:
            view.setParent(None)
            view.deleteLater()
        self._views = []
        self.hint.setVisible(not thumbs)
        for thumb in thumbs[:MAX_SHOWN_GLYPHS]:
            view = ImageView("", 48)
            view.setFixedSize(48, 48)
            view.set_image(thumb)
            self.row.insertWidget(len(self._views), view)
            self._views.append(view)

    def dragEnterEvent(self, event) -> None:
        if image_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        files = image_files(event.mimeData())
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.files_dropped.emit(files)


class TextPanel(QWidget):
    """See the module docstring. Signals: ``line_changed(TextLineResult)``, ``sheet_changed(AlphabetSheet)``,
    ``status_changed(str)``."""

    line_changed = Signal(object)
    sheet_changed = Signal(object)
    status_changed = Signal(str)

    def __init__(self, service: Any, composer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.composer = composer
        self.lines = TextLineComposer(service)
        self._glyphs: list[str] = []
        self._line: Any = None
        self._sheet: Any = None
        self._model_key: Any = None
        # why the last glyph files were refused; it stays in the message line (a line redrawn meanwhile must not
        # wipe it) until glyphs are given or cleared again
        self._glyph_error: str | None = None
        self._build()
        self.composer.composition_changed.connect(self._on_composition_changed)
        self._relay_model = gui_callback(self._on_model_changed, owner=self)
        events = self.service.events
        events.model_changed.connect(self._relay_model)
        relay = self._relay_model
        self.destroyed.connect(lambda *_: events.model_changed.disconnect(relay, missing_ok=True))
        self._on_model_changed()

    # --- layout ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("Type a word or a line")
        self.text_edit.setClearButtonEnabled(True)
        self.source_combo = QComboBox()
        self.source_combo.addItem("letters from dataset items", "item")
        self.source_combo.addItem("mean letter codes", "mean")
        self.source_combo.setToolTip("where each character's letter slot comes from: a dataset item showing the "
                                     "letter (sharpest), or the mean code of such items")
        self.tracking_slider = QSlider(Qt.Orientation.Horizontal)
        self.tracking_slider.setRange(0, TRACKING_STEPS)
        self.tracking_slider.setValue(round(self.lines.tracking * 100))
        self.tracking_slider.setToolTip("space between the glyphs' ink")
        self.tracking_slider.setMaximumWidth(120)
        self.export_button = QPushButton("Export PNG…")
        top = QHBoxLayout()
        top.addWidget(self.text_edit, 1)
        top.addWidget(self.source_combo)
        top.addWidget(QLabel("Spacing"))
        top.addWidget(self.tracking_slider)
        top.addWidget(self.export_button)
        self.line_view = ImageView("Open a Fonts model to type with it", 64)
        self.line_view.setMinimumHeight(72)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: palette(placeholder-text);")

        self.glyph_zone = GlyphDropZone()
        self.choose_button = QPushButton("Choose glyphs…")
        self.clear_glyphs_button = QPushButton("Clear")
        self.style_check = QCheckBox("size and colours from the glyphs too")
        self.style_check.setChecked(True)
        self.use_button = QPushButton("Use in composer")
        self.use_button.setToolTip("put the glyphs' font into the composer's font slot (undoable)")
        self.sheet_button = QPushButton("Export sheet…")
        self.morph_button = QPushButton("Morph GIF…")
        self.morph_button.setToolTip("the sheet morphing from the nearest known font to the glyphs' font")
        self.morph_frames = QSpinBox()
        self.morph_frames.setRange(2, 60)
        self.morph_frames.setValue(12)
        self.morph_frames.setSuffix(" frames")
        buttons = QHBoxLayout()
        for w in (self.choose_button, self.clear_glyphs_button, self.style_check):
            buttons.addWidget(w)
        buttons.addStretch(1)
        for w in (self.use_button, self.sheet_button, self.morph_frames, self.morph_button):
            buttons.addWidget(w)
        self.sheet_view = ImageView("The alphabet in the glyphs' font appears here", 48)
        self.sheet_view.setMinimumHeight(56)
        self.font_box = QGroupBox("Font from a few glyphs")
        font_lay = QVBoxLayout(self.font_box)
        font_lay.addWidget(self.glyph_zone)
        font_lay.addLayout(buttons)
        font_lay.addWidget(self.sheet_view, 1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.line_view, 2)
        lay.addWidget(self.message)
        lay.addWidget(self.font_box, 2)

        self.text_edit.textChanged.connect(lambda _text: self.refresh_line())
        self.source_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.tracking_slider.valueChanged.connect(lambda _v: self.refresh_line())
        self.export_button.clicked.connect(self._choose_line_export)
        self.glyph_zone.files_dropped.connect(self.set_glyphs)
        self.choose_button.clicked.connect(self._choose_glyphs)
        self.clear_glyphs_button.clicked.connect(lambda: self.set_glyphs([]))
        self.style_check.toggled.connect(lambda _on: self.refresh())
        self.use_button.clicked.connect(self.use_in_composer)
        self.sheet_button.clicked.connect(self._choose_sheet_export)
        self.morph_button.clicked.connect(self._choose_morph_export)
        self._sync_buttons()

    # --- public API -----------------------------------------------------------------------------------
    @property
    def line(self) -> Any:
        """The TextLineResult on show, or None."""
        return self._line

    @property
    def sheet(self) -> Any:
        """The AlphabetSheet on show, or None."""
        return self._sheet

    @property
    def glyphs(self) -> list[str]:
        return list(self._glyphs)

    def set_text(self, text: str) -> None:
        self.text_edit.setText(text)

    def letter_source(self) -> str:
        return str(self.source_combo.currentData())

    def tracking(self) -> float:
        return self.tracking_slider.value() / 100

    def style(self) -> Composition:
        """The composer's composition, with the glyphs' font (and size and colours, if chosen) when there are
        glyphs."""
        composition = self.composer.composition
        if not self._glyphs:
            return composition
        if self.style_check.isChecked():
            return style_with_glyphs(self.service, self._glyphs, composition)
        return composition.with_slot(font_slot(self.service), SlotValue(a=glyph_source(self._glyphs)))

    def set_glyphs(self, paths: list[str]) -> None:
        """Encode the glyph files (off the GUI thread); bad files are named in the message line."""
        paths = [str(Path(p)) for p in paths]
        self._glyph_error = None
        if not paths:
            self._glyphs = []
            self._sheet = None
            self.glyph_zone.show_glyphs([])
            self.sheet_view.set_image(None)
            self._sync_buttons()
            self.refresh_line()
            return
        self._show_message(f"encoding {len(paths)} glyph image(s)…")
        self.lines.latest("glyphs", lambda _rid: style_from_files(self.service, paths),
                          gui_callback(lambda _style: self._on_glyphs_encoded(paths), owner=self),
                          gui_callback(self._on_glyphs_failed, owner=self))

    def refresh(self) -> None:
        self.refresh_line()
        self.refresh_sheet()

    def refresh_line(self) -> None:
        text = self.text_edit.text()
        if self.service.model is None or not text.strip():
            self._line = None
            self.line_view.set_image(None)
            self.line_view.set_placeholder("Type a word above" if self.service.model is not None
                                           else "Open a Fonts model to type with it")
            self._sync_buttons()
            return
        try:
            style = self.style()
        except StudioError as e:
            self._on_failed(e)
            return
        self.lines.request(text, style, gui_callback(self._on_line, owner=self),
                           gui_callback(self._on_failed, owner=self), self.letter_source(), self.tracking())

    def refresh_sheet(self) -> None:
        if not self._glyphs or self.service.model is None:
            return
        try:
            style = self.style()
        except StudioError as e:
            self._on_failed(e)
            return
        source = self.letter_source()
        self.lines.latest("sheet", lambda _rid: alphabet_sheet(self.service, style, letter_source=source),
                          gui_callback(self._on_sheet, owner=self), gui_callback(self._on_failed, owner=self))

    def use_in_composer(self) -> None:
        if not self._glyphs:
            self._show_message("drop glyph images first", error=True)
            return
        slot = font_slot(self.service)
        composition = self.composer.composition.with_slot(slot, SlotValue(a=glyph_source(self._glyphs)))
        self.composer.set_composition(composition, f"font from {len(self._glyphs)} glyph(s)")

    def export_line(self, path: str | Path, scale: int = 4) -> Path:
        if self._line is None:
            raise StudioError("nothing to export yet: type a word first")
        return save_image(path, self._line.image, scale)

    def export_sheet(self, path: str | Path, scale: int = 4) -> Path:
        if self._sheet is None:
            raise StudioError("no alphabet sheet yet: drop glyph images first")
        return save_image(path, self._sheet.image, scale)

    def export_morph(self, path: str | Path, frames: int = 12, scale: int = 4) -> Path:
        """Blocking (call it off the GUI thread for long morphs): the sheet from the nearest known font to the
        glyphs' font, forth and back."""
        if not self._glyphs:
            raise StudioError("no glyphs yet: drop glyph images first")
        style = self.style()
        start_font, _ = nearest_known_font(self.service, style)
        sheets = morph_sheets(self.service, style, known_font_source(self.service, start_font), frames,
                              letter_source=self.letter_source())
        return save_image(path, sheets + sheets[-2:0:-1], scale)

    def shutdown(self) -> None:
        self.lines.shutdown()

    # --- handlers -------------------------------------------------------------------------------------
    def _on_model_changed(self, *_: Any) -> None:
        model = self.service.model
        key = (id(model), getattr(model, "path", None))
        if key == self._model_key:
            return
        self._model_key = key
        usable = model is not None
        try:
            letters = alphabet(self.service) if usable else ()
        except StudioError as e:
            usable = False
            letters = ()
            self._show_message(str(e), error=True)
        self.setEnabled(usable)
        if usable:
            self._show_message(f"The model draws {''.join(letters)}.")
            if not self.text_edit.text().strip() or any(c not in letters and c != " " for c in self.text_edit.text()):
                self.text_edit.blockSignals(True)
                self.text_edit.setText(starting_text(letters))
                self.text_edit.blockSignals(False)
        if self.isVisible():  # a hidden panel costs the model nothing; it catches up when shown
            self.refresh()

    def _on_composition_changed(self, _composition: Composition) -> None:
        if self.isVisible():
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def _on_line(self, result: Any) -> None:
        self._line = result
        self.line_view.set_image(result.image)
        h, w = result.image.shape[:2]
        note = result.plan.message()
        if self._glyph_error is not None:
            self._show_message(self._glyph_error, error=True)
        else:
            self._show_message(note or f"{len(result.plan.drawn)} glyphs · {w}×{h} px · "
                               f"{result.seconds * 1000:.0f} ms", error=bool(result.plan.missing))
        self._sync_buttons()
        self.line_changed.emit(result)

    def _on_sheet(self, sheet: Any) -> None:
        self._sheet = sheet
        # On screen the sheet goes in rows of up to 26 letters: the dock is wide and low, and the export's
        # near-square grid (13 x 4 for 52 letters) came out a third of the size there.
        self.sheet_view.set_image(sheet_grid(sheet.tiles, min(SCREEN_SHEET_COLUMNS, len(sheet.tiles))))
        self._sync_buttons()
        self.sheet_changed.emit(sheet)

    def _on_glyphs_encoded(self, paths: list[str]) -> None:
        self._glyphs = paths
        thumbs = []
        from PIL import Image

        for p in paths:
            with Image.open(p) as im:
                thumb = im.convert("RGB")
                thumb.thumbnail((64, 64))
                thumbs.append(np.asarray(thumb))
        self.glyph_zone.show_glyphs(thumbs)
        self._show_message(f"font from {len(paths)} glyph image(s)")
        self._sync_buttons()
        self.refresh()

    def _on_failed(self, error: BaseException) -> None:
        self._show_message(str(error), error=True)

    def _on_glyphs_failed(self, error: BaseException) -> None:
        self._glyph_error = str(error)
        self._on_failed(error)

    def _show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c0392b;" if error else "color: palette(placeholder-text);")
        self.message.setText(text)
        if error:
            self.status_changed.emit(text)

    def _sync_buttons(self) -> None:
        has_glyphs = bool(self._glyphs)
        self.export_button.setEnabled(self._line is not None)
        for b in (self.use_button, self.morph_button, self.morph_frames, self.clear_glyphs_button):
            b.setEnabled(has_glyphs)
        self.sheet_button.setEnabled(self._sheet is not None)

    # --- dialogs --------------------------------------------------------------------------------------
    def _choose_glyphs(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Choose 1-5 glyph images", str(Path.home()), IMAGE_FILTER)
        if paths:
            self.set_glyphs(paths)

    def _save_path(self, title: str, name: str, file_filter: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / name), file_filter)
        return path

    def _run(self, work) -> None:
        try:
            written = work()
        except StudioError as e:
            self._show_message(str(e), error=True)
            return
        self._show_message(f"wrote {written}")

    def _choose_line_export(self) -> None:
        path = self._save_path("Export Text", "text.png", "PNG images (*.png)")
        if path:
            self._run(lambda: self.export_line(path))

    def _choose_sheet_export(self) -> None:
        path = self._save_path("Export Alphabet Sheet", "alphabet.png", "PNG images (*.png)")
        if path:
            self._run(lambda: self.export_sheet(path))

    def _choose_morph_export(self) -> None:
        path = self._save_path("Export Morph", "morph.gif", "GIF animations (*.gif)")
        if not path:
            return
        frames = self.morph_frames.value()
        self._show_message("writing the morph…")
        self.lines.latest("morph", lambda _rid: self.export_morph(path, frames),
                          gui_callback(lambda written: self._show_message(f"wrote {written}"), owner=self),
                          gui_callback(self._on_failed, owner=self))


__all__ = ["GlyphDropZone", "TextPanel", "starting_text"]
