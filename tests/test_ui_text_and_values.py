"""The Text panel (typed words, a font from a few glyphs) and the Value Mining panel, driven as a person would:
typing, dropping files, moving sliders, clicking; on a real tiny GZS-Net (letters A-E)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QToolButton
from ui_helpers import drop_files

from studio.data.fonts import FontsDataset, builtin_font_dir
from studio.service.composition import FileSource, ItemSource, LatentSource, MixtureSource, SlotValue
from studio.service.mined_values import MinedValueStore
from studio.ui.text_panel import TextPanel
from studio.ui.value_mining import ValueMiningPanel

pytestmark = pytest.mark.usefixtures("no_leaks")
WAIT_MS = 30_000


@pytest.fixture
def text_panel(qtbot, gzs_service, composer) -> TextPanel:
    panel = TextPanel(gzs_service, composer)
    qtbot.addWidget(panel)
    panel.resize(900, 420)
    panel.show()
    yield panel
    panel.shutdown()


@pytest.fixture
def glyph_files(tmp_path: Path) -> list[str]:
    """Two letters in a font fonts:tiny does not have, rendered as a user's own TTF would be (fonts=DIR)."""
    folder = tmp_path / "fonts"
    folder.mkdir()
    shutil.copy(builtin_font_dir() / "DejaVuSansMono-Bold.ttf", folder)
    truth = FontsDataset("tiny", 32, str(folder))
    s = truth.schema
    paths = []
    for letter in "BD":
        img = truth.render_values([s["letter"].index(letter), s["size"].index("large"), s["font_color"].index("red"),
                                   s["background_color"].index("blue"), s["font"].index("DejaVuSansMono-Bold")])
        path = tmp_path / f"glyph-{letter}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


# --- the Text panel ---------------------------------------------------------------------------------------------
def test_typing_draws_the_line_live_in_the_composers_style(qtbot, text_panel, composer, gzs_service, tmp_path) -> None:
    assert text_panel.isEnabled()
    assert text_panel.text_edit.text() == "ABCDE"  # no starting word fits the alphabet A-E: the alphabet
    text_panel.text_edit.clear()
    with qtbot.waitSignal(text_panel.line_changed, timeout=WAIT_MS):
        qtbot.keyClicks(text_panel.text_edit, "CAB")
    qtbot.waitUntil(lambda: text_panel.line is not None and text_panel.line.plan.text == "CAB", timeout=WAIT_MS)
    first = text_panel.line
    assert [g.value for g in first.plan.glyphs] == ["C", "A", "B"]
    assert first.image.shape[0] == 32 and np.array_equal(text_panel.line_view.image(), first.image)
    # every glyph keeps the composer's sources except the letter
    for glyph in first.plan.drawn:
        assert glyph.composition.slot("font") == composer.composition.slot("font")
        assert glyph.composition.base == composer.composition.base

    # a slider in the composer restyles the line: a second font for the font slot, dragged to B
    other = next(i for i in range(len(gzs_service.dataset)) if gzs_service.dataset.values(i)["font"] !=
                 gzs_service.dataset.values(composer.composition.base.index)["font"])
    composer.set_composition(composer.composition.with_slot("font", SlotValue(b=ItemSource(other))))
    with qtbot.waitSignal(text_panel.line_changed, timeout=WAIT_MS):
        composer.slot_widgets["font"].slider.setValue(1000)
    qtbot.waitUntil(lambda: text_panel.line.plan.drawn[0].composition.slot("font").t == 1.0, timeout=WAIT_MS)
    assert not np.array_equal(text_panel.line.glyph_images[0], first.glyph_images[0])

    # characters the model lacks: a clear message, gaps in the line
    text_panel.text_edit.setText("BOX")
    qtbot.waitUntil(lambda: text_panel.line.plan.text == "BOX", timeout=WAIT_MS)
    assert "cannot draw 'O' 'X'" in text_panel.message.text() and "ABCDE" in text_panel.message.text()
    # spacing slider: a looser line is wider
    text_panel.text_edit.setText("ABBA")
    qtbot.waitUntil(lambda: text_panel.line.plan.text == "ABBA", timeout=WAIT_MS)
    narrow = text_panel.line.image.shape[1]
    text_panel.tracking_slider.setValue(30)
    qtbot.waitUntil(lambda: text_panel.line.image.shape[1] > narrow, timeout=WAIT_MS)

    path = text_panel.export_line(tmp_path / "abba.png", scale=2)
    assert Image.open(path).size == (2 * text_panel.line.image.shape[1], 64)
    assert text_panel.export_button.isEnabled()


def test_glyphs_dropped_give_the_alphabet_in_their_font(qtbot, text_panel, composer, gzs_service, glyph_files,
                                                        tmp_path) -> None:
    assert not text_panel.use_button.isEnabled() and not text_panel.sheet_button.isEnabled()
    with qtbot.waitSignal(text_panel.sheet_changed, timeout=WAIT_MS):
        assert drop_files(text_panel.glyph_zone, glyph_files)
    sheet = text_panel.sheet
    assert sheet.letters == ("A", "B", "C", "D", "E")
    assert np.array_equal(text_panel.sheet_view.image(), sheet.image)
    assert text_panel.glyphs == glyph_files
    assert len(text_panel.glyph_zone._views) == 2
    # the line is drawn in the glyphs' font too
    qtbot.waitUntil(lambda: text_panel.line is not None and isinstance(
        text_panel.line.plan.drawn[0].composition.slot("font").a, MixtureSource), timeout=WAIT_MS)
    text_panel.export_sheet(tmp_path / "sheet.png", scale=1)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "sheet.png")), sheet.image)
    gif = text_panel.export_morph(tmp_path / "morph.gif", frames=3, scale=1)
    with Image.open(gif) as animation:
        assert animation.n_frames == 4

    # into the composer, undoably
    before = composer.composition
    text_panel.use_button.click()
    font = composer.composition.slot("font").a
    assert font == MixtureSource(tuple((FileSource(p), 1.0) for p in glyph_files))
    composer.undo_stack.undo()
    assert composer.composition == before

    # a file that is no image is named, and nothing else changes
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    text_panel.set_glyphs([str(bad)])
    qtbot.waitUntil(lambda: "notes.png" in text_panel.message.text(), timeout=WAIT_MS)
    assert text_panel.glyphs == glyph_files
    # a line redrawn afterwards (the composition changed) keeps the refusal in view
    with qtbot.waitSignal(text_panel.line_changed, timeout=WAIT_MS):
        text_panel.refresh_line()
    assert "notes.png" in text_panel.message.text()
    text_panel.clear_glyphs_button.click()
    assert text_panel.glyphs == [] and text_panel.sheet is None and not text_panel.use_button.isEnabled()
    # only image files are accepted at the drop
    assert not drop_files(text_panel.glyph_zone, [str(tmp_path / "readme.txt")])


# --- the Value Mining panel ------------------------------------------------------------------------------------------
@pytest.fixture
def mining(qtbot, gzs_service, composer, tmp_path) -> ValueMiningPanel:
    panel = ValueMiningPanel(gzs_service, composer, MinedValueStore(tmp_path / "values.json"))
    qtbot.addWidget(panel)
    panel.resize(380, 560)
    panel.show()
    return panel


def test_mining_combines_directions_jumps_to_centres_and_saves(qtbot, mining, composer, gzs_service) -> None:
    card = composer.slot_widgets["font_color"]
    button = card.findChild(QToolButton, "mineValuesButton")
    assert button is not None  # the card's Directions section opens the panel on its slot
    with qtbot.waitSignal(mining.requested, timeout=WAIT_MS):
        button.click()
    assert mining.slot() == "font_color"
    qtbot.waitUntil(lambda: mining.amount_slider.isEnabled(), timeout=WAIT_MS)
    assert [r.term() for r in mining._rows] == [("red", 1.0)]
    mining.add_term.click()
    mining.add_term.click()
    assert mining.recipe() == (("red", 1.0), ("green", 1.0), ("blue", -1.0))  # v_a + v_b - v_c
    mining._rows[0].value.setCurrentText("blue")
    mining._rows[1].value.setCurrentText("red")
    mining._rows[2].value.setCurrentText("green")
    assert mining.recipe_label.text() == "v(blue) + v(red) − v(green)"

    start = composer.image.copy()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        mining.set_amount(0.5 * mining._reach())  # within the slider's reach, whatever the latent scale
    (step,) = composer.composition.slot("font_color").steps
    assert (step.value, step.combine) == ("blue", (("red", 1.0), ("green", -1.0)))
    assert step.amount == pytest.approx(0.5 * mining._reach(), abs=mining._reach() / 300)
    assert not np.array_equal(composer.image, start)
    dirs = gzs_service.directions("font_color")
    got = composer.result.latents["font_color"]
    base = gzs_service.compose(composer.composition.with_slot("font_color", SlotValue())).latents["font_color"]
    want = base + step.amount * (dirs.direction("blue") + dirs.direction("red") - dirs.direction("green"))
    assert np.allclose(got, want, atol=1e-4)
    undo_steps = composer.undo_stack.count()
    mining.amount_slider.setValue(mining.amount_slider.value() + 10)  # the same gesture merges
    assert composer.undo_stack.count() == undo_steps

    # name and save it; it appears in the list and in the file
    mining.name_edit.setText("plum")
    mining.save_button.click()
    qtbot.waitUntil(lambda: mining.saved_list.count() == 1, timeout=WAIT_MS)
    assert mining.saved_list.item(0).text().startswith("plum: slot font_color")
    saved = mining.store.get("plum")
    assert np.allclose(saved.latent, gzs_service.compose(composer.composition).latents["font_color"], atol=1e-5)

    # jump to a value's centre
    mining.centre_combo.setCurrentText("green")
    mining.centre_button.click()
    qtbot.waitUntil(lambda: isinstance(composer.composition.slot("font_color").a, LatentSource), timeout=WAIT_MS)
    assert np.allclose(composer.composition.slot("font_color").a.values, dirs.centre("green"))
    assert composer.composition.slot("font_color").steps == ()

    # reuse the saved value on another composition
    composer.set_slot_item("font_color", 7)
    mining.saved_list.setCurrentRow(0)
    mining.use_button.click()
    assert composer.composition.slot("font_color").a == saved.source()
    mining.delete_button.click()
    assert mining.saved_list.count() == 0 and mining.store.load() == []


def test_main_window_has_the_text_and_mining_docks(qtbot, ui_service, ui_settings, tiny_gzs_run) -> None:
    from studio.ui.main_window import MainWindow

    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.show()
    window.start_session(tiny_gzs_run)
    qtbot.waitUntil(lambda: window.composer.image is not None, timeout=60_000)
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    names = [a.text() for a in view.actions()]
    assert "Text" in names and "Value Mining" in names
    assert not window.text_dock.isVisible()
    next(a for a in view.actions() if a.text() == "Text").trigger()
    assert window.text_dock.isVisible()
    qtbot.waitUntil(lambda: window.text_panel.line is not None, timeout=WAIT_MS)
    card = window.composer.slot_widgets["font_color"]
    card.findChild(QToolButton, "mineValuesButton").click()
    assert window.values_dock.isVisible() and window.values_panel.slot() == "font_color"
    window.close()
