"""The composer, the latent plot and the Training tab on tiny real models of the four methods besides GZS-Net: DEAE's
toward-value sliders and arrows, LORD's class/content slots (and its stage-1 model that cannot encode yet), the
adversarial method's spatial codes and mixtures, and quadrant mixing on an unlabelled folder.

Set ``STUDIO_UI_SHOTS`` to a folder to keep a screenshot of every composer and plot these tests build.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QTimer, QUrl
from PySide6.QtWidgets import QWidget
from ui_helpers import drop, other_item

from studio.methods.mixing import QUADRANTS
from studio.service.composition import ItemSource, MixtureSource
from studio.service.model_service import ModelService
from studio.ui import errors
from studio.ui.composer import ComposerPanel
from studio.ui.latent_plot import NO_COLOUR, LatentPlotPanel
from studio.ui.main_window import MainWindow
from studio.ui.mime import encode_items
from studio.ui.names import attribute_title
from studio.ui.training_tab import TrainingTab

WAIT_MS = 30_000
pytestmark = pytest.mark.usefixtures("no_leaks")



def shot(widget: QWidget, name: str) -> None:
    """Keep a screenshot for review when STUDIO_UI_SHOTS names a folder (always check that grabbing works)."""
    picture = widget.grab()
    assert not picture.isNull()
    folder = os.environ.get("STUDIO_UI_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        picture.save(str(Path(folder) / f"{name}.png"))


def items(service: ModelService, *indices: int) -> QMimeData:
    return encode_items(list(indices), service.dataset.fingerprint)


def open_panels(qtbot, service: ModelService, checkpoint: Path, slot: str) -> tuple[ComposerPanel, LatentPlotPanel]:
    """Composer and latent plot on ``checkpoint``, with the first image composed and ``slot`` projected."""
    service.load_checkpoint(checkpoint)
    composer = ComposerPanel(service)
    plot = LatentPlotPanel(service, composer)
    for widget, size in ((composer, (760, 640)), (plot, (420, 600))):
        qtbot.addWidget(widget)
        widget.resize(*size)
        widget.show()
    plot.set_slot(slot)
    wait_for_projection(qtbot, plot, slot)
    qtbot.waitUntil(lambda: composer.image is not None and plot.current_xy is not None, timeout=WAIT_MS)
    return composer, plot


def wait_for_projection(qtbot, plot: LatentPlotPanel, slot: str) -> None:
    qtbot.waitUntil(lambda: plot.projection is not None and plot.projection.slot == slot, timeout=WAIT_MS)


def put(qtbot, composer: ComposerPanel, target: QWidget, mime: QMimeData) -> np.ndarray:
    """Drop onto ``target`` and return the image that was on show before."""
    before = composer.image.copy()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        assert drop(target, mime)
    return before


def no_error_dialogs() -> None:
    dialogs = errors.reporter().dialogs()
    messages = [d.message for d in dialogs]
    for dialog in dialogs:
        dialog.close()
    assert not messages, messages


# --- DEAE ----------------------------------------------------------------------------------------------------------
def test_deae_toward_value_sliders_move_the_image_and_arrows_are_drawn(qtbot, ui_service, tiny_method_run) -> None:
    composer, plot = open_panels(qtbot, ui_service, tiny_method_run("deae"), "font_color")
    dataset = ui_service.dataset
    card = composer.slot_widgets["font_color"]
    base = composer.composition.base.index
    other = other_item(ui_service, base)
    before = put(qtbot, composer, card.tile_a, items(ui_service, other))
    assert composer.composition.slot("font_color").a == ItemSource(other)
    assert not np.array_equal(composer.image, before)
    assert plot.point_count() == len(dataset) and plot.colour_attribute == "font_color"

    # the toward-value slider, built from the slot's fitted directions
    card.directions_button.click()
    values = dataset.schema["font_color"].values
    qtbot.waitUntil(lambda: card.direction_combo.count() == len(values), timeout=WAIT_MS)
    assert [card.direction_combo.itemText(k) for k in range(len(values))] == [f"Font colour: {v}" for v in values]
    assert card.amount_slider.isEnabled() and "SVM accuracy" in card.direction_status.text()
    target = next(v for v in values if v != dataset.values(other)["font_color"])
    card.direction_combo.setCurrentIndex(card.direction_combo.findText(f"Font colour: {target}"))
    start, image = plot.current_xy, composer.image.copy()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        card.amount_slider.setValue(card.amount_slider.maximum())
    (step,) = composer.composition.slot("font_color").steps
    assert (step.attribute, step.value) == ("font_color", target) and step.amount > 0
    assert not np.array_equal(composer.image, image)
    qtbot.waitUntil(lambda: not np.allclose(plot.current_xy, start), timeout=WAIT_MS)  # the point follows

    # one arrow per value, visible: the longest spans a good share of the points, labels at the tips
    plot.directions_check.setChecked(True)
    qtbot.waitUntil(lambda: len(plot._arrow_heads) == len(values), timeout=WAIT_MS)
    assert sorted(label.textItem.toPlainText() for label in plot._arrow_labels) == sorted(values)
    span = np.ptp(plot._xy, axis=0)
    lengths = [np.hypot(*((np.array([b.x(), b.y()]) - np.array([a.x(), a.y()])) / span))
               for a, b in plot._arrow_segments]
    assert max(lengths) == pytest.approx(0.3, rel=1e-3)
    assert "Font colour" in plot.status.text() and "SVM" in plot.status.text()
    shot(composer, "deae_composer")
    shot(plot, "deae_plot")


# --- LORD ----------------------------------------------------------------------------------------------------------
def test_lord_composes_class_and_content(qtbot, ui_service, tiny_method_run) -> None:
    composer, plot = open_panels(qtbot, ui_service, tiny_method_run("lord"), "class")
    assert composer.slot_names() == ["class", "content"]
    class_card, content_card = composer.slot_widgets["class"], composer.slot_widgets["content"]
    assert class_card.directions_button.isVisibleTo(class_card)  # the class code stands for an attribute
    assert not content_card.directions_button.isVisibleTo(content_card)
    base = composer.composition.base.index
    before = put(qtbot, composer, class_card.tile_a, items(ui_service, other_item(ui_service, base)))
    assert not np.array_equal(composer.image, before)
    before = put(qtbot, composer, content_card, items(ui_service, other_item(ui_service, base) + 1))  # onto the card
    assert isinstance(composer.composition.slot("content").a, ItemSource)
    assert not np.array_equal(composer.image, before)

    attribute = ui_service.model.slot("class").attribute
    assert plot.point_count() == len(ui_service.dataset) and plot.colour_attribute == attribute
    assert "8 values" in plot.projection_label.text() and "(pooled)" not in plot.plot_item.titleLabel.text
    shot(composer, "lord_composer")

    # the content code stands for no attribute: its arrows are those of the attribute the points are coloured by
    plot.set_slot("content")
    wait_for_projection(qtbot, plot, "content")
    assert plot.point_count() == len(ui_service.dataset)
    assert plot.directions_check.isEnabled() and plot.directions_attribute() == attribute
    plot.directions_check.setChecked(True)
    qtbot.waitUntil(lambda: len(plot._arrow_heads) > 1, timeout=WAIT_MS)
    assert f"{attribute_title(attribute)} value in Content" in plot.status.text()
    shot(plot, "lord_plot_content")
    plot.set_colour_attribute(NO_COLOUR)
    assert not plot.directions_check.isEnabled() and not plot._arrow_heads
    assert "colour the points" in plot.directions_check.toolTip()


def test_lord_before_stage_2_says_it_cannot_encode(qtbot, ui_service, tiny_method_run, tmp_path) -> None:
    run = tiny_method_run("lord")
    stage1 = sorted((run / "checkpoints").glob("step-*.safetensors"))[0]
    info = ui_service.load_checkpoint(stage1)
    assert not info.can_encode
    composer = ComposerPanel(ui_service)
    plot = LatentPlotPanel(ui_service, composer)
    for widget in (composer, plot):
        qtbot.addWidget(widget)
        widget.resize(700, 560)
        widget.show()
    qtbot.waitUntil(lambda: "cannot encode" in plot.status.text(), timeout=WAIT_MS)
    assert composer.image is None and "cannot encode images yet" in composer.output.placeholder()
    assert not composer.query_box.isEnabled() and not composer.slot_widgets["class"].directions_button.isEnabled()
    assert plot.point_count() == 0 and plot.projection is None and not plot.progress.isVisible()

    picture = tmp_path / "letter.png"
    Image.fromarray(ui_service.dataset.image(3)).save(picture)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(picture))])
    kept = composer.composition
    composer.status.clear()
    assert drop(composer.slot_widgets["class"].tile_a, mime)
    assert drop(composer.slot_widgets["content"].tile_b, items(ui_service, 5))
    qtbot.wait(200)  # anything sent to a worker would come back by now
    assert "cannot encode images yet" in composer.status.text() and "Train it further" in composer.status.text()
    assert composer.composition == kept and composer.image is None
    no_error_dialogs()
    shot(composer, "lord_stage1_composer")
    shot(plot, "lord_stage1_plot")


# --- adversarial ------------------------------------------------------------------------------------------------
def test_adversarial_spatial_codes_mixtures_and_a_pooled_plot(qtbot, ui_service, tiny_method_run) -> None:
    composer, plot = open_panels(qtbot, ui_service, tiny_method_run("adversarial"), "letter")
    spec = ui_service.model.slot("letter")
    c, h, w = spec.shape
    assert spec.spatial and composer.slot_names()[-1] == "residual"
    card = composer.slot_widgets["letter"]
    assert card.shape_label.text() == f"spatial {c}×{h}×{w}"

    # the plot says how the spatial code became a point
    assert plot.point_count() == len(ui_service.dataset)
    assert "(pooled)" in plot.plot_item.titleLabel.text
    text = plot.projection_label.text()
    assert f"spatial {c}×{h}×{w}" in text and f"averaged over its {h}×{w} positions" in text and "PCA" in text

    # a slot takes a convex mixture of several sources, each with a weight slider
    base = composer.composition.base.index
    first, second = other_item(ui_service, base), other_item(ui_service, base) + 7
    before = put(qtbot, composer, card.tile_mix, items(ui_service, first, second))
    mixture = composer.composition.slot("letter").a
    assert isinstance(mixture, MixtureSource) and [s for s, _ in mixture.parts] == [
        ItemSource(base), ItemSource(first), ItemSource(second)]
    assert not np.array_equal(composer.image, before)
    assert len(card._part_rows) == 3 and card.parts_box.isVisibleTo(card)
    assert [row.weight_label.text() for row in card._part_rows] == ["33%", "33%", "33%"]
    start, mixed = plot.current_xy, composer.image.copy()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        card._part_rows[0].weight.setValue(0)
    assert composer.composition.slot("letter").a.parts[0][1] == 0.0
    assert [row.weight_label.text() for row in card._part_rows] == ["0%", "50%", "50%"]
    assert not np.array_equal(composer.image, mixed)
    qtbot.waitUntil(lambda: not np.allclose(plot.current_xy, start), timeout=WAIT_MS)
    shot(composer, "adversarial_composer")
    shot(plot, "adversarial_plot")

    # the residual slot stands for no attribute: no direction section on its card
    assert not composer.slot_widgets["residual"].directions_button.isVisibleTo(composer.slot_widgets["residual"])


def test_adversarial_vector_codes_are_plotted_whole(qtbot, ui_service, tiny_method_run) -> None:
    composer, plot = open_panels(qtbot, ui_service, tiny_method_run("adversarial", code_kind="vector"), "font")
    size = ui_service.model.slot("font").size
    assert composer.slot_widgets["font"].shape_label.text() == f"{size}-d"
    assert "(pooled)" not in plot.plot_item.titleLabel.text
    assert f"vector of {size} values" in plot.projection_label.text()
    before = put(qtbot, composer, composer.slot_widgets["font"].tile_a,
                 items(ui_service, other_item(ui_service, composer.composition.base.index)))
    assert not np.array_equal(composer.image, before)


# --- quadrant mixing -------------------------------------------------------------------------------------------
def test_mixing_quadrants_on_an_unlabelled_folder_in_the_main_window(qtbot, ui_service, ui_settings,
                                                                     tiny_method_run) -> None:
    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    with qtbot.waitSignal(window.composer.image_changed, timeout=WAIT_MS):
        window.start_session(tiny_method_run("mixing"))
    composer, plot = window.composer, window.latent_plot
    assert len(ui_service.dataset.schema) == 0  # the model's own dataset: a folder without labels
    assert composer.slot_names() == list(QUADRANTS)
    assert not composer.query_box.isVisibleTo(composer)  # no attributes to ask for

    # drag an image into every quadrant; each drop changes the composed image (images far in colour from the base,
    # which every quadrant shows at first, so that even a model this small tells them apart)
    dataset = ui_service.dataset
    colours = np.array([dataset.image(i).reshape(-1, 3).mean(axis=0) for i in range(len(dataset))])
    far = np.argsort(-np.linalg.norm(colours - colours[composer.composition.base.index], axis=1))
    chosen = {q: int(far[k]) for k, q in enumerate(QUADRANTS)}
    for quadrant, item in chosen.items():
        before = put(qtbot, composer, composer.slot_widgets[quadrant].tile_a, items(ui_service, item))
        assert composer.composition.slot(quadrant).a == ItemSource(item)
        assert not np.array_equal(composer.image, before), quadrant
    shot(window, "mixing_window")

    # the plot works per quadrant: every item is a point, grey (nothing to colour by), and no directions
    for quadrant in QUADRANTS:
        plot.set_slot(quadrant)
        wait_for_projection(qtbot, plot, quadrant)
        assert plot.point_count() == len(ui_service.dataset)
        assert "values), projected to 2-D by PCA" in plot.projection_label.text()
    assert [plot.colour_combo.itemText(k) for k in range(plot.colour_combo.count())] == [NO_COLOUR]
    assert not plot.directions_check.isEnabled() and "no attribute labels" in plot.directions_check.toolTip()
    qtbot.waitUntil(lambda: plot.current_xy is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        plot.click_item(int(far[-1]))  # a click puts the item into the plotted quadrant
    assert composer.composition.slot(QUADRANTS[-1]).a == ItemSource(int(far[-1]))
    shot(composer, "mixing_composer")
    shot(plot, "mixing_plot")
    no_error_dialogs()


# --- training ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "how"), [("deae", "stop"), ("lord", "cancel"), ("adversarial", "stop"),
                                             ("mixing", "cancel")])
def test_training_tab_runs_and_ends_a_tiny_job_of_each_method(qtbot, ui_service, tmp_path, tiny_method_options,
                                                              unlabelled_fonts_folder, method: str, how: str) -> None:
    tab = TrainingTab(ui_service, runs_dir=tmp_path / "runs")
    qtbot.addWidget(tab)
    tab.show()
    tab.set_dataset(unlabelled_fonts_folder if method == "mixing" else "fonts:tiny")
    tab.resolution_combo.setCurrentIndex(tab.resolution_combo.findData(32))
    tab.set_method(method)
    tab.device_combo.setCurrentText("cpu")
    tab.apply_recipe(None)  # the method's defaults, not the CPU recipe the form starts with on a CPU
    _, batch, options = tiny_method_options[method]
    tab.steps_spin.setValue(100_000)
    tab.batch_spin.setValue(batch)
    for spin in (tab.checkpoint_spin, tab.sample_spin):
        spin.setValue(0)
    tab.log_spin.setValue(1)
    for name, value in options.items():
        tab.config_form.set_value(name, value)
    assert tab.settings().method_options.keys() <= options.keys()

    ticks: list[float] = []  # the GUI thread's timer keeps ticking while the job trains: the window never freezes
    timer = QTimer(tab)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    with qtbot.waitSignal(tab.progressed, timeout=60_000):
        tab.start()
    first = tab.job.history[0].step
    qtbot.waitUntil(lambda: tab._last_step >= first + 2, timeout=60_000)
    timer.stop()
    assert len(ticks) > 3 and max(np.diff(ticks)) < 2.0
    assert tab.plot.history.names and "loss" in tab.plot.history.names

    with qtbot.waitSignal(tab.job_ended, timeout=60_000) as ended:
        if how == "stop":
            tab.stop_button.click()
        else:
            tab.job.cancel()
    state = "finished" if how == "stop" else "cancelled"
    assert ended.args == [state] and tab.job.error is None
    step = tab.job.result.step
    assert 0 < step < 100_000 and tab.state_label.text() == f"{state.capitalize()} at step {step:,}."
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled() and not tab.pause_button.isEnabled()
    assert tab.checkpoint_list.count() == 1 and tab.selected_checkpoint().exists()
    no_error_dialogs()
    shot(tab, f"training_{method}")
    tab.shutdown()
