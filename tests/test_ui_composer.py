"""The composer on a real tiny GZS-Net model: drops, sliders, query mode, undo, files, projects, exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

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
from studio.service.model_service import ModelService
from studio.ui.composer import ComposerPanel
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
@pytest.fixture
def service(ui_service, tiny_gzs_run) -> ModelService:
    """The shared per-test service (shut down and checked for leaks by conftest) with the tiny GZS-Net loaded."""
    ui_service.load_checkpoint(tiny_gzs_run)
    return ui_service


@pytest.fixture
def panel(qtbot, service) -> ComposerPanel:
    widget = ComposerPanel(service)
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitUntil(lambda: widget.image is not None, timeout=WAIT_MS)
    return widget


def _other_item(service: ModelService, item: int) -> int:
    """An item that differs from ``item`` in every attribute (so any slot it goes into changes its value)."""
    codes = service.dataset.codes
    differs = np.flatnonzero((codes != codes[item]).all(axis=1))
    return int(differs[0])


def _drop(qtbot, target, mime: QMimeData) -> bool:
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return True


def test_drag_items_into_a_slot_changes_the_image(qtbot, panel, service) -> None:
    before = panel.image.copy()
    base = panel.composition.base.index
    item = _other_item(service, base)
    card = panel.slot_widgets["letter"]
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        assert _drop(qtbot, card.tile_a, encode_items([item], service.dataset.fingerprint))
    assert panel.composition.slot("letter").a == ItemSource(item)
    assert not np.array_equal(panel.image, before)
    assert card.tile_a.caption.text() == f"item {item}"
    # items of another dataset are refused at the drag-enter
    assert not _drop(qtbot, panel.slot_widgets["size"].tile_a, encode_items([item], "0123456789abcdef"))
    assert panel.composition.slot("size").a is None


def test_slider_changes_the_image_and_global_slider_moves_unlocked_slots(qtbot, panel, service) -> None:
    base = panel.composition.base.index
    other = _other_item(service, base)
    card = panel.slot_widgets["font_color"]
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        assert _drop(qtbot, card.tile_b, encode_items([other], service.dataset.fingerprint))
    at_a = panel.image.copy()
    assert card.slider.isEnabled()
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        card.slider.setValue(1000)
    assert panel.composition.slot("font_color").t == 1.0
    assert not np.array_equal(panel.image, at_a)

    panel.set_composition(panel.composition.with_slot("size", SlotValue(b=ItemSource(other), locked=True)))
    qtbot.waitUntil(lambda: panel.global_slider.isEnabled())
    panel.global_slider.setValue(250)
    assert panel.composition.slot("font_color").t == 0.25
    assert panel.composition.slot("size").t == 0.0  # locked


def test_undo_restores_the_previous_image(qtbot, panel, service) -> None:
    base = panel.composition.base.index
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        panel.set_slot_item("letter", _other_item(service, base))
    first = panel.image.copy()
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        panel.set_slot_item("background_color", _other_item(service, base))
    second = panel.image.copy()
    assert not np.array_equal(first, second)
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        panel.undo_stack.undo()
    np.testing.assert_array_equal(panel.image, first)
    assert panel.composition.slot("background_color").a is None
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        panel.undo_stack.redo()
    np.testing.assert_array_equal(panel.image, second)

    # one slider drag is one undo step
    card = panel.slot_widgets["letter"]
    panel.set_composition(panel.composition.with_slot("letter", SlotValue(a=ItemSource(base),
                                                                          b=ItemSource(_other_item(service, base)))))
    depth = panel.undo_stack.index()
    card.slider.setSliderDown(True)
    for position in (100, 300, 600):
        card.slider.setValue(position)
    card.slider.setSliderDown(False)
    assert panel.undo_stack.index() == depth + 1
    panel.undo_stack.undo()
    assert panel.composition.slot("letter").t == 0.0


def test_keyboard_clears_and_locks_the_focused_slot(qtbot, panel, service) -> None:
    panel.set_slot_item("font", _other_item(service, panel.composition.base.index))
    card = panel.slot_widgets["font"]
    panel.activateWindow()
    card.setFocus()
    qtbot.waitUntil(lambda: card.hasFocus())
    qtbot.keyClick(card, Qt.Key.Key_L)
    assert panel.composition.slot("font").locked
    kept = panel.composition.slot("font")
    qtbot.keyClick(card, Qt.Key.Key_Delete)  # a locked slot keeps its value (issue 17's definition of Lock)
    assert panel.composition.slot("font") == kept
    assert "locked" in panel.status.text()
    qtbot.keyClick(card, Qt.Key.Key_L)
    qtbot.keyClick(card, Qt.Key.Key_Delete)
    assert panel.composition.slot("font") == SlotValue()


def test_query_mode_fills_every_slot(qtbot, panel, service) -> None:
    dataset = service.dataset
    wanted = dataset.values(17)
    panel.query_panel.set_values(wanted)
    with qtbot.waitSignal(panel.composition_changed, timeout=WAIT_MS):
        panel.query_panel.synthesise_button.click()
    comp = panel.composition
    for spec in service.model.slots:
        source = comp.resolved_source(spec.name)
        assert isinstance(source, ItemSource)
        if spec.attribute is not None:
            assert dataset.values(source.index)[spec.attribute] == wanted[spec.attribute]
    assert panel.exact_box.isVisibleTo(panel)
    exact = dataset.index_of(dataset.codes[17])
    assert panel.exact_caption.text() == f"in the dataset: item {exact}"
    np.testing.assert_array_equal(panel.exact_view.image(), dataset.image(exact))
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.request_id > 0, timeout=WAIT_MS)

    # a combination the dataset does not hold is synthesised all the same
    schema = dataset.schema
    seen = {tuple(row) for row in dataset.codes.tolist()}
    missing = next(row for row in np.ndindex(*schema.cardinalities) if tuple(row) not in seen)
    panel.query_panel.set_values(schema.decode_row(missing))
    with qtbot.waitSignal(panel.composition_changed, timeout=WAIT_MS):
        panel.query_panel.synthesise_button.click()
    assert "no item of the dataset has exactly these values" in panel.query_panel.result_label.text()
    assert panel.exact_caption.text() == "in the dataset: none"


def test_a_dropped_image_file_is_encoded(qtbot, panel, service, tmp_path) -> None:
    before = panel.image.copy()
    picture = tmp_path / "dropped.png"
    Image.fromarray(service.dataset.image(_other_item(service, panel.composition.base.index))).resize(
        (64, 64)).save(picture)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(picture))])
    assert _drop(qtbot, panel.slot_widgets["letter"].tile_a, mime)
    qtbot.waitUntil(lambda: isinstance(panel.composition.slot("letter").a, FileSource), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not np.array_equal(panel.image, before), timeout=WAIT_MS)
    assert Path(panel.composition.slot("letter").a.path) == picture.resolve()
    assert panel.slot_widgets["letter"].tile_a.view.image() is not None

    # a file that is no image is reported, and the composition stays as it was
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(broken))])
    kept = panel.composition
    assert _drop(qtbot, panel.slot_widgets["size"].tile_a, mime)
    qtbot.waitUntil(lambda: "cannot be read as an image" in panel.status.text(), timeout=WAIT_MS)
    assert panel.composition == kept


def test_project_save_and_open_round_trip(qtbot, panel, service, tmp_path) -> None:
    base = panel.composition.base.index
    other = _other_item(service, base)
    picture = tmp_path / "p.png"
    Image.fromarray(service.dataset.image(other)).save(picture)
    comp = (panel.composition
            .with_slot("letter", SlotValue(a=ItemSource(other), b=ItemSource(base), t=0.4, locked=True))
            .with_slot("font", SlotValue(a=MixtureSource(((ItemSource(other), 1.0), (FileSource(str(picture)), 0.5)))))
            .with_slot("size", SlotValue(a=ItemSource(other))))
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        panel.set_composition(comp)
    image = panel.image.copy()
    path = tmp_path / "session.json"
    panel.save_project(path)
    assert Project.load(path).checkpoint == str(service.model.path)

    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        panel.clear_all()
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        panel.open_project(path)
    assert panel.composition == comp
    np.testing.assert_array_equal(panel.image, image)
    assert panel.slot_widgets["font"].parts_box.isVisibleTo(panel)
    assert panel.slot_widgets["letter"].lock_button.isChecked()

    alien = tmp_path / "alien.json"
    Project(Composition({"top_left": SlotValue(a=ItemSource(0))})).save(alien)
    with pytest.raises(StudioError, match="top_left"):
        panel.open_project(alien)


def test_exports(qtbot, panel, service, tmp_path) -> None:
    with pytest.raises(StudioError, match="second source"):
        panel.export_strip(tmp_path / "strip.png")
    base = panel.composition.base.index
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        panel.set_composition(panel.composition.with_slot(
            "letter", SlotValue(a=ItemSource(base), b=ItemSource(_other_item(service, base)))))
    res = service.model.resolution
    panel.export_image(tmp_path / "one.png", scale=2)
    assert Image.open(tmp_path / "one.png").size == (2 * res, 2 * res)
    panel.export_strip(tmp_path / "strip.png", frames=5)
    assert Image.open(tmp_path / "strip.png").size == (5 * res, res)
    panel.export_gif(tmp_path / "loop.gif", frames=6)
    with Image.open(tmp_path / "loop.gif") as gif:
        assert gif.n_frames >= 6
    with pytest.raises(StudioError, match="unknown image type"):
        panel.export_image(tmp_path / "one.xyz")


def test_mixture_and_direction_sliders(qtbot, panel, service) -> None:
    base = panel.composition.base.index
    other = _other_item(service, base)
    card = panel.slot_widgets["font_color"]
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        assert _drop(qtbot, card.tile_mix, encode_items([other], service.dataset.fingerprint))
    assert panel.composition.slot("font_color").a == MixtureSource(((ItemSource(base), 1.0), (ItemSource(other), 1.0)))
    assert len(card._part_rows) == 2
    mixed = panel.image.copy()
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        card._part_rows[1].weight.setValue(10)
    assert panel.composition.slot("font_color").a.parts[1][1] == pytest.approx(0.1)
    assert not np.array_equal(panel.image, mixed)

    card.directions_button.click()
    qtbot.waitUntil(lambda: card.direction_combo.count() == 3, timeout=WAIT_MS)
    card.direction_combo.setCurrentIndex(card.direction_combo.findText("Font colour: green"))
    before = panel.image.copy()
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        card.amount_slider.setValue(card.amount_slider.maximum())
    (step,) = panel.composition.slot("font_color").steps
    assert (step.attribute, step.value) == ("font_color", "green") and step.amount > 0
    assert not np.array_equal(panel.image, before)
    with qtbot.waitSignal(panel.image_changed, timeout=WAIT_MS):
        card.direction_reset.click()
    assert panel.composition.slot("font_color").steps == ()
