"""What a new user hit in the real window (issue 17), driven through the widgets with a tiny real GZS-Net: Lock
holds on every path, the query answer follows undo, the query panel keeps its height, strange dropped images are
flagged, a model with the same slots keeps the composition, and the app speaks in human titles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from ui_helpers import drop, other_item

from studio.service.composition import FileSource, ItemSource, SlotValue
from studio.ui.mime import encode_items
from studio.ui.names import attribute_title, slot_title, value_phrase

WAIT_MS = 20000
pytestmark = pytest.mark.usefixtures("no_leaks")


def test_human_titles() -> None:
    assert attribute_title("font_color") == "Font colour"
    assert attribute_title("background_color") == "Background colour"
    assert value_phrase("font_color", "red") == "Font colour: red"

    class Spec:
        name, label = "top_left", "top left"

    assert slot_title(Spec()) == "Top left"


def test_a_locked_slot_keeps_its_value_whatever_asks(qtbot, composer, gzs_service) -> None:
    base = composer.composition.base.index
    other = other_item(gzs_service, base)
    card = composer.slot_widgets["letter"]
    composer.set_composition(composer.composition.with_slot("letter", SlotValue(a=ItemSource(base),
                                                                              b=ItemSource(other))))
    card.lock_button.click()
    locked = composer.composition.slot("letter")
    assert locked.locked and card.lock_button.text() == "Locked"
    # the slot's own controls are off, and its tiles refuse drops
    assert not card.slider.isEnabled() and not card.swap_button.isEnabled() and not card.clear_button.isEnabled()
    assert not drop(card.tile_a, encode_items([other], gzs_service.dataset.fingerprint))
    # every other path into the slot is refused too, with a word why
    composer.set_slot_item("letter", other)  # the browser's "Put into slot", a plot click
    assert composer.composition.slot("letter") == locked and "locked" in composer.status.text()
    card.slider.setValue(700)  # a programmatic move of the (disabled) slider
    assert composer.composition.slot("letter") == locked and card.slider.value() == 0
    card.swap()
    assert composer.composition.slot("letter") == locked
    composer.global_slider.setValue(500)
    assert composer.composition.slot("letter").t == 0.0
    # Synthesise fills every other slot and leaves the locked one as it was
    wanted = gzs_service.dataset.values(other_item(gzs_service, base))
    composer.query_panel.set_values(wanted)
    with qtbot.waitSignal(composer.composition_changed, timeout=WAIT_MS):
        composer.query_panel.synthesise_button.click()
    assert composer.composition.slot("letter") == locked
    assert "Locked, kept: Letter" in composer.query_panel.result_label.text()
    # unlocked, it moves again
    card.lock_button.click()
    card.slider.setValue(700)
    assert composer.composition.slot("letter").t == pytest.approx(0.7)


def test_the_query_answer_follows_undo_and_the_panel_keeps_its_height(qtbot, composer, gzs_service) -> None:
    box = composer.query_box
    buttons_at = composer.query_panel.synthesise_button.mapTo(composer, QPoint(0, 0))
    height = box.height()
    composer.query_panel.set_values(gzs_service.dataset.values(17))
    with qtbot.waitSignal(composer.composition_changed, timeout=WAIT_MS):
        composer.query_panel.synthesise_button.click()
    answer = composer.query_panel.result_label.text()
    wanted = gzs_service.dataset.values(17)
    assert f"Letter: {wanted['letter']}" in answer and "Font colour: " in answer
    assert "letter=" not in answer and "font_color" not in answer
    qtbot.wait(50)
    assert box.height() == height  # the buttons stay under the mouse
    assert composer.query_panel.synthesise_button.mapTo(composer, QPoint(0, 0)) == buttons_at
    composer.undo_stack.undo()
    assert composer.query_panel.result_label.text() == "" and not composer.exact_box.isVisibleTo(composer)
    composer.undo_stack.redo()
    assert composer.query_panel.result_label.text() == answer and composer.exact_box.isVisibleTo(composer)
    # the query combos of colour attributes show the colour, as the browser's filters do
    combo = composer.query_panel._combos["font_color"]
    assert not combo.itemIcon(1).isNull()


def test_a_strange_dropped_image_is_flagged_and_a_dataset_image_is_not(qtbot, composer, gzs_service, tmp_path) -> None:
    known = tmp_path / "item.png"
    Image.fromarray(gzs_service.dataset.image(other_item(gzs_service, composer.composition.base.index))).save(known)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(known))])
    assert drop(composer.slot_widgets["letter"].tile_a, mime)
    qtbot.waitUntil(lambda: isinstance(composer.composition.slot("letter").a, FileSource), timeout=WAIT_MS)
    assert composer.file_warnings() == []
    noise = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(noise)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(noise))])
    assert drop(composer.slot_widgets["font"].tile_a, mime)
    qtbot.waitUntil(lambda: isinstance(composer.composition.slot("font").a, FileSource), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "unlike the training data" in composer.status.text(), timeout=WAIT_MS)
    assert len(composer.file_warnings()) == 1 and "photo.png" in composer.file_warnings()[0]
    # the warning stays while the image is used (a compose does not wipe it), and goes with it
    qtbot.waitUntil(lambda: composer.result is not None, timeout=WAIT_MS)
    assert "unlike the training data" in composer.status.text()
    composer.slot_widgets["font"].clear()
    assert composer.file_warnings() == []


def test_a_model_with_the_same_slots_keeps_the_composition_and_undo(qtbot, composer, gzs_service, tiny_gzs_run) -> None:
    base = composer.composition.base.index
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.set_slot_item("letter", other_item(gzs_service, base))
    kept, depth = composer.composition, composer.undo_stack.count()
    earlier = Path(tiny_gzs_run) / "checkpoints" / "step-00000030.safetensors"
    assert earlier.exists()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        gzs_service.load_checkpoint(earlier)  # what the Training tab's "Use in composer" does
    assert composer.composition == kept and composer.undo_stack.count() == depth
    assert "Kept the composition" in composer.status.text() or composer.status.text().endswith("ms")
    composer.undo_stack.undo()
    assert composer.composition.slot("letter").a is None


def test_browser_filters_show_at_the_default_size_and_the_grid_starts_at_the_top(qtbot, ui_service,
                                                                                 ui_settings) -> None:
    from studio.ui.main_window import MainWindow

    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.resize(1480, 900)
    window.show()  # the window is on screen before the dataset opens, as at start-up
    qtbot.waitExposed(window)
    window.open_dataset("fonts:tiny")
    browser = window.browser
    qtbot.waitUntil(lambda: browser.dataset is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: all(c.isVisible() for c in browser.facets._combos), timeout=WAIT_MS)
    assert len(browser.facets._combos) == len(ui_service.dataset.schema)
    assert browser.facets.height() >= sum(c.height() for c in browser.facets._combos) // 2
    bar = browser.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=WAIT_MS)
    bar.setValue(bar.maximum())
    browser.facets.select("letter", ui_service.dataset.schema["letter"].values[1])
    assert bar.value() == 0  # a new set of rows starts at its top, not at the old position
    bar.setValue(bar.maximum())
    window.open_dataset("fonts:tiny,res=16")
    qtbot.waitUntil(lambda: browser.dataset is not None and browser.dataset.resolution == 16, timeout=WAIT_MS)
    assert bar.value() == 0 and browser.facets.selection() == {}
    window.close()


def test_file_dialogs_start_in_the_documents_folder_then_the_last_one(qtbot, ui_service, ui_settings,
                                                                    tmp_path) -> None:
    from PySide6.QtCore import QStandardPaths

    from studio.ui.main_window import MainWindow

    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    first = window.start_folder("dirs/project")
    assert first == (Path(documents) if documents and Path(documents).is_dir() else Path.home())
    assert first != Path.cwd() or Path.cwd() in (Path.home(), Path(documents))
    ui_settings.set_value("dirs/project", str(tmp_path))
    assert window.start_folder("dirs/project") == tmp_path
    ui_settings.set_value("dirs/export", str(tmp_path / "gone"))  # a folder since deleted: back to documents
    assert window.start_folder("dirs/export") == first
    window.close()


def test_an_off_plot_composition_gets_an_edge_arrow_and_reset_view_brings_it_back(qtbot, composer_and_plot,
                                                                                 gzs_service) -> None:
    _, plot = composer_and_plot
    assert not plot.star_off_plot() and not plot.edge_marker.isVisible()
    # a stray drag: the view pans far away from every point and the star
    (x0, x1), (y0, y1) = plot.view_box.viewRange()
    plot.view_box.setRange(xRange=(x1 + 10 * (x1 - x0), x1 + 11 * (x1 - x0)), yRange=(y0, y1), padding=0)
    assert plot.star_off_plot() and plot.edge_marker.isVisible()
    (vx0, vx1), (vy0, vy1) = plot.view_box.viewRange()
    ex, ey = plot.edge_marker.pos().x(), plot.edge_marker.pos().y()
    assert vx0 <= ex <= vx1 and vy0 <= ey <= vy1  # on the edge of what is shown, toward the star
    assert ex < vx0 + 0.1 * (vx1 - vx0)  # the star is to the left
    qtbot.keyClick(plot.plot_widget, Qt.Key.Key_Home)
    assert not plot.star_off_plot() and not plot.edge_marker.isVisible()
    (rx0, rx1), (ry0, ry1) = plot.view_box.viewRange()
    xy = np.asarray(plot.projection.xy)
    assert rx0 <= xy[:, 0].min() and xy[:, 0].max() <= rx1 and ry0 <= xy[:, 1].min() and xy[:, 1].max() <= ry1
    # the legend lies outside the data area: a line under the plot widget
    assert plot.legend.isVisible() and plot.legend.geometry().top() >= plot.plot_widget.geometry().bottom()
    assert plot.legend_entries() == list(gzs_service.dataset.schema["font_color"].values)
    assert plot.colour_combo.currentText() == "Font colour" and plot.colour_attribute == "font_color"


def test_the_platform_check_names_the_missing_packages() -> None:
    from studio.ui.platform_check import XCB_LIBRARIES, check_platform, missing_packages, uses_xcb

    x11 = {"DISPLAY": ":0"}
    assert uses_xcb(x11, "linux") and not uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not uses_xcb({}, "linux") and not uses_xcb(x11, "darwin")
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    gone = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    assert missing_packages(lambda name: name not in gone) == ["libxcb-icccm4", "libxcb-keysyms1"]
    hint = check_platform(x11, lambda name: name not in gone) if uses_xcb(x11) else ""
    if hint:  # on a Linux machine the hint names the packages and the command
        assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in hint
    assert check_platform(x11, lambda name: True) == ""
    assert len(set(XCB_LIBRARIES.values())) == len(XCB_LIBRARIES)


def test_use_in_composer_asks_before_another_kind_of_model_replaces_the_composition(
        qtbot, open_main_window, tiny_gzs_run, tiny_method_run) -> None:
    window = open_main_window(tiny_gzs_run, show=False)
    composer = window.composer
    same_run = Path(tiny_gzs_run) / "checkpoints" / "step-00000030.safetensors"
    asked = []
    window.ask_replace_composition = lambda described: asked.append(described.method) or False
    assert window.confirm_replacing_composition(same_run)  # nothing to lose yet
    composer.set_slot_item("letter", 3)
    assert window.confirm_replacing_composition(same_run) and asked == []  # same method and data: kept
    other = tiny_method_run("deae")
    assert not window.confirm_replacing_composition(other) and asked == ["deae"]
    window.close()


def test_the_query_panel_opens_with_distinct_colours_for_letter_and_background(qtbot) -> None:
    """Font and background colour draw on the same values; both on the first one is a red letter on red."""
    from studio.data.fonts import FontsDataset
    from studio.ui.query_panel import QueryPanel

    query = QueryPanel()
    qtbot.addWidget(query)
    query.set_schema(FontsDataset("small", resolution=32).schema)
    values = query.values()
    assert values["font_color"] != values["background_color"]
    assert values["letter"] == FontsDataset("small", resolution=32).schema["letter"].values[0]
