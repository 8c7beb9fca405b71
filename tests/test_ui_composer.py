"""The composer on a real tiny GZS-Net model: drops, sliders, query mode, undo, files, projects, exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QUrl
from ui_helpers import drop, other_item

from studio.errors import StudioError
from studio.service.composition import (
    Composition,
    DirectionStep,
    FileSource,
    ItemSource,
    MixtureSource,
    Project,
    SlotValue,
)
from studio.ui.composer_commands import CompositionChange
from studio.ui.mime import encode_items
from studio.ui.slot_widget import (
    clear_slot,
    drop_payload,
    put_sources,
    remove_part,
    set_step,
    set_weight,
    swap_sources,
)

WAIT_MS = 20000
pytestmark = pytest.mark.usefixtures("no_leaks")


# --- pure logic -----------------------------------------------------------------------------------------------------
def test_drop_payload_reads_items_and_refuses_other_datasets(qapp) -> None:
    assert drop_payload(encode_items([3, 4], "abc"), "abc") == ([3, 4], [])
    assert drop_payload(encode_items([3], "abc"), "other") is None
    files = QMimeData()
    files.setUrls([QUrl.fromLocalFile("/tmp/a.png"), QUrl.fromLocalFile("/tmp/notes.txt")])
    assert drop_payload(files, "abc") == ([], ["/tmp/a.png"])
    assert drop_payload(QMimeData(), "abc") is None


def test_slot_edits() -> None:
    a, b, c = ItemSource(1), ItemSource(2), FileSource("/x.png")
    v = put_sources(SlotValue(locked=True), "a", [a])
    assert v == SlotValue(a=a, locked=True)
    assert put_sources(v, "b", [b]).b == b
    assert put_sources(SlotValue(), "a", [a, b]) == SlotValue(a=a, b=b)
    swapped = swap_sources(SlotValue(a=a, b=b, t=0.3))
    assert (swapped.a, swapped.b, swapped.t) == (b, a, 0.3)
    assert clear_slot(SlotValue(a=a, b=b, t=0.5, locked=True)) == SlotValue(locked=True)
    assert put_sources(SlotValue(), "mix", [b], base=a).a == MixtureSource(((a, 1.0), (b, 1.0)))
    mixed = put_sources(v, "mix", [b, c])
    assert mixed.a == MixtureSource(((a, 1.0), (b, 1.0), (c, 1.0)))
    assert set_weight(mixed, 1, 0.25).a.parts[1] == (b, 0.25)
    assert remove_part(remove_part(mixed, 2), 0).a == b
    step = DirectionStep("font_color", "red", 0.5)
    assert set_step(v, step).steps == (step,)
    assert set_step(set_step(v, step), DirectionStep("font_color", "red", 0.0)).steps == ()


def test_slider_drags_merge_into_one_undo_step(qapp) -> None:
    from PySide6.QtGui import QUndoStack

    shown: list[Composition] = []
    stack = QUndoStack()
    start = Composition({"x": SlotValue(a=ItemSource(1), b=ItemSource(2))})
    current = start
    for t in (0.1, 0.2, 0.3):
        after = current.with_slot("x", current.slot("x").with_t(t))
        stack.push(CompositionChange(shown.append, current, after, "drag", "t:x:1"))
        current = after
    after = current.with_slot("x", current.slot("x").with_t(0.9))
    stack.push(CompositionChange(shown.append, current, after, "drag", "t:x:2"))  # a second drag
    assert stack.count() == 2
    stack.undo()
    stack.undo()
    assert shown[-1] == start


# --- on a real model -------------------------------------------------------------------------------------------------
def test_drag_items_into_a_slot_changes_the_image(qtbot, composer, gzs_service) -> None:
    before = composer.image.copy()
    base = composer.composition.base.index
    item = other_item(gzs_service, base)
    card = composer.slot_widgets["letter"]
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        assert drop(card.tile_a, encode_items([item], gzs_service.dataset.fingerprint))
    assert composer.composition.slot("letter").a == ItemSource(item)
    assert not np.array_equal(composer.image, before)
    assert card.tile_a.caption.text() == f"item {item}"
    # items of another dataset are refused at the drag-enter
    assert not drop(composer.slot_widgets["size"].tile_a, encode_items([item], "0123456789abcdef"))
    assert composer.composition.slot("size").a is None


def test_slider_changes_the_image_and_global_slider_moves_unlocked_slots(qtbot, composer, gzs_service) -> None:
    base = composer.composition.base.index
    other = other_item(gzs_service, base)
    card = composer.slot_widgets["font_color"]
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        assert drop(card.tile_b, encode_items([other], gzs_service.dataset.fingerprint))
    at_a = composer.image.copy()
    assert card.slider.isEnabled()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        card.slider.setValue(1000)
    assert composer.composition.slot("font_color").t == 1.0
    assert not np.array_equal(composer.image, at_a)

    composer.set_composition(composer.composition.with_slot("size", SlotValue(b=ItemSource(other), locked=True)))
    qtbot.waitUntil(lambda: composer.global_slider.isEnabled())
    composer.global_slider.setValue(250)
    assert composer.composition.slot("font_color").t == 0.25
    assert composer.composition.slot("size").t == 0.0  # locked


def test_undo_restores_the_previous_image(qtbot, composer, gzs_service) -> None:
    base = composer.composition.base.index
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.set_slot_item("letter", other_item(gzs_service, base))
    first = composer.image.copy()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.set_slot_item("background_color", other_item(gzs_service, base))
    second = composer.image.copy()
    assert not np.array_equal(first, second)
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.undo_stack.undo()
    np.testing.assert_array_equal(composer.image, first)
    assert composer.composition.slot("background_color").a is None
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.undo_stack.redo()
    np.testing.assert_array_equal(composer.image, second)

    # one slider drag is one undo step
    card = composer.slot_widgets["letter"]
    pair = SlotValue(a=ItemSource(base), b=ItemSource(other_item(gzs_service, base)))
    composer.set_composition(composer.composition.with_slot("letter", pair))
    depth = composer.undo_stack.index()
    card.slider.setSliderDown(True)
    for position in (100, 300, 600):
        card.slider.setValue(position)
    card.slider.setSliderDown(False)
    assert composer.undo_stack.index() == depth + 1
    composer.undo_stack.undo()
    assert composer.composition.slot("letter").t == 0.0


def test_keyboard_clears_and_locks_the_focused_slot(qtbot, composer, gzs_service) -> None:
    composer.set_slot_item("font", other_item(gzs_service, composer.composition.base.index))
    card = composer.slot_widgets["font"]
    composer.activateWindow()
    card.setFocus()
    qtbot.waitUntil(lambda: card.hasFocus())
    qtbot.keyClick(card, Qt.Key.Key_L)
    assert composer.composition.slot("font").locked
    kept = composer.composition.slot("font")
    qtbot.keyClick(card, Qt.Key.Key_Delete)  # a locked slot keeps its value (issue 17's definition of Lock)
    assert composer.composition.slot("font") == kept
    assert "locked" in composer.status.text()
    qtbot.keyClick(card, Qt.Key.Key_L)
    qtbot.keyClick(card, Qt.Key.Key_Delete)
    assert composer.composition.slot("font") == SlotValue()


def test_query_mode_fills_every_slot(qtbot, composer, gzs_service) -> None:
    dataset = gzs_service.dataset
    wanted = dataset.values(17)
    composer.query_panel.set_values(wanted)
    with qtbot.waitSignal(composer.composition_changed, timeout=WAIT_MS):
        composer.query_panel.synthesise_button.click()
    comp = composer.composition
    for spec in gzs_service.model.slots:
        source = comp.resolved_source(spec.name)
        assert isinstance(source, ItemSource)
        if spec.attribute is not None:
            assert dataset.values(source.index)[spec.attribute] == wanted[spec.attribute]
    assert composer.exact_box.isVisibleTo(composer)
    exact = dataset.index_of(dataset.codes[17])
    assert composer.exact_caption.text() == f"in the dataset: item {exact}"
    np.testing.assert_array_equal(composer.exact_view.image(), dataset.image(exact))
    qtbot.waitUntil(lambda: composer.result is not None and composer.result.request_id > 0, timeout=WAIT_MS)

    # a combination the dataset does not hold is synthesised all the same
    schema = dataset.schema
    seen = {tuple(row) for row in dataset.codes.tolist()}
    missing = next(row for row in np.ndindex(*schema.cardinalities) if tuple(row) not in seen)
    composer.query_panel.set_values(schema.decode_row(missing))
    with qtbot.waitSignal(composer.composition_changed, timeout=WAIT_MS):
        composer.query_panel.synthesise_button.click()
    assert "no item of the dataset has exactly these values" in composer.query_panel.result_label.text()
    assert composer.exact_caption.text() == "in the dataset: none"


def test_a_dropped_image_file_is_encoded(qtbot, composer, gzs_service, tmp_path) -> None:
    before = composer.image.copy()
    picture = tmp_path / "dropped.png"
    Image.fromarray(gzs_service.dataset.image(other_item(gzs_service, composer.composition.base.index))).resize(
        (64, 64)).save(picture)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(picture))])
    assert drop(composer.slot_widgets["letter"].tile_a, mime)
    qtbot.waitUntil(lambda: isinstance(composer.composition.slot("letter").a, FileSource), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not np.array_equal(composer.image, before), timeout=WAIT_MS)
    assert Path(composer.composition.slot("letter").a.path) == picture.resolve()
    assert composer.slot_widgets["letter"].tile_a.view.image() is not None

    # a file that is no image is reported, and the composition stays as it was
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(broken))])
    kept = composer.composition
    assert drop(composer.slot_widgets["size"].tile_a, mime)
    qtbot.waitUntil(lambda: "cannot be read as an image" in composer.status.text(), timeout=WAIT_MS)
    assert composer.composition == kept


def test_project_save_and_open_round_trip(qtbot, composer, gzs_service, tmp_path) -> None:
    base = composer.composition.base.index
    other = other_item(gzs_service, base)
    picture = tmp_path / "p.png"
    Image.fromarray(gzs_service.dataset.image(other)).save(picture)
    comp = (composer.composition
            .with_slot("letter", SlotValue(a=ItemSource(other), b=ItemSource(base), t=0.4, locked=True))
            .with_slot("font", SlotValue(a=MixtureSource(((ItemSource(other), 1.0), (FileSource(str(picture)), 0.5)))))
            .with_slot("size", SlotValue(a=ItemSource(other))))
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.set_composition(comp)
    image = composer.image.copy()
    path = tmp_path / "session.json"
    composer.save_project(path)
    assert Project.load(path).checkpoint == str(gzs_service.model.path)

    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.clear_all()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.open_project(path)
    assert composer.composition == comp
    np.testing.assert_array_equal(composer.image, image)
    assert composer.slot_widgets["font"].parts_box.isVisibleTo(composer)
    assert composer.slot_widgets["letter"].lock_button.isChecked()

    alien = tmp_path / "alien.json"
    Project(Composition({"top_left": SlotValue(a=ItemSource(0))})).save(alien)
    with pytest.raises(StudioError, match="top_left"):
        composer.open_project(alien)


def test_exports(qtbot, composer, gzs_service, tmp_path) -> None:
    with pytest.raises(StudioError, match="second source"):
        composer.export_strip(tmp_path / "strip.png")
    base = composer.composition.base.index
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.set_composition(composer.composition.with_slot(
            "letter", SlotValue(a=ItemSource(base), b=ItemSource(other_item(gzs_service, base)))))
    res = gzs_service.model.resolution
    composer.export_image(tmp_path / "one.png", scale=2)
    assert Image.open(tmp_path / "one.png").size == (2 * res, 2 * res)
    composer.export_strip(tmp_path / "strip.png", frames=5)
    assert Image.open(tmp_path / "strip.png").size == (5 * res, res)
    composer.export_gif(tmp_path / "loop.gif", frames=6)
    with Image.open(tmp_path / "loop.gif") as gif:
        assert gif.n_frames >= 6
    with pytest.raises(StudioError, match="unknown image type"):
        composer.export_image(tmp_path / "one.xyz")


def test_mixture_and_direction_sliders(qtbot, composer, gzs_service) -> None:
    base = composer.composition.base.index
    other = other_item(gzs_service, base)
    card = composer.slot_widgets["font_color"]
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        assert drop(card.tile_mix, encode_items([other], gzs_service.dataset.fingerprint))
    assert composer.composition.slot("font_color").a == MixtureSource(((ItemSource(base), 1.0),
                                                                        (ItemSource(other), 1.0)))
    assert len(card._part_rows) == 2
    mixed = composer.image.copy()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        card._part_rows[1].weight.setValue(10)
    assert composer.composition.slot("font_color").a.parts[1][1] == pytest.approx(0.1)
    assert not np.array_equal(composer.image, mixed)

    card.directions_button.click()
    qtbot.waitUntil(lambda: card.direction_combo.count() == 3, timeout=WAIT_MS)
    card.direction_combo.setCurrentIndex(card.direction_combo.findText("Font colour: green"))
    before = composer.image.copy()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        card.amount_slider.setValue(card.amount_slider.maximum())
    (step,) = composer.composition.slot("font_color").steps
    assert (step.attribute, step.value) == ("font_color", "green") and step.amount > 0
    assert not np.array_equal(composer.image, before)
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        card.direction_reset.click()
    assert composer.composition.slot("font_color").steps == ()
