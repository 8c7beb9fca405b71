"""The live latent plot on a real tiny GZS-Net model: projection, colours, the moving point, hover, click, cancel."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from ui_helpers import other_item

from studio.service.composition import ItemSource, SlotValue
from studio.ui.composer import ComposerPanel
from studio.ui.latent_plot import GROUPS, LatentPlotPanel, colour_groups, nearest_point

WAIT_MS = 20000
pytestmark = pytest.mark.usefixtures("no_leaks")


def test_colour_groups_keep_the_most_frequent_values_apart() -> None:
    codes = np.array([0, 2, 2, 1, 0, 2])
    groups = colour_groups(codes, ("a", "b", "c"))
    assert [g[2] for g in groups] == ["a", "b", "c"]
    assert [sorted(g[0].tolist()) for g in groups] == [[0, 4], [3], [1, 2, 5]]
    many = np.arange(100).repeat(np.arange(1, 101))  # value k appears k + 1 times
    groups = colour_groups(many, tuple(str(v) for v in range(100)))
    assert len(groups) == GROUPS
    assert groups[-1][2] == f"other ({100 - GROUPS + 1} values)"
    assert sum(len(g[0]) for g in groups) == len(many)
    assert {g[2] for g in groups[:-1]} == {str(v) for v in range(100 - GROUPS + 1, 100)}


def test_the_full_fonts_52_letters_each_get_a_colour_of_their_own() -> None:
    letters = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    groups = colour_groups(np.arange(52).repeat(3), letters)
    assert [g[2] for g in groups] == list(letters)  # no grey "other"
    assert len({g[1].rgb() for g in groups}) == 52


def test_nearest_point_respects_the_pixel_radius() -> None:
    xy = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    assert nearest_point(xy, 0.9, 1.05, (0.1, 0.1)) == 1
    assert nearest_point(xy, 0.5, 0.5, (0.01, 0.01)) is None


def test_the_plot_shows_every_item_coloured_by_the_slot_attribute(composer_and_plot, gzs_service) -> None:
    _, plot = composer_and_plot
    assert plot.point_count() == len(gzs_service.dataset)
    assert plot.colour_attribute == "font_color"
    labels = plot.legend_entries()
    assert labels == list(gzs_service.dataset.schema["font_color"].values)
    assert sum(len(g.data) for g in plot.groups) == len(gzs_service.dataset)
    assert "Font colour" in plot.plot_item.titleLabel.text and "PCA" in plot.plot_item.titleLabel.text
    plot.set_colour_attribute("letter")
    assert plot.legend_entries() == list(gzs_service.dataset.schema["letter"].values)


def test_a_slider_move_changes_the_image_and_moves_the_plot_point(qtbot, composer_and_plot, gzs_service) -> None:
    composer, plot = composer_and_plot
    base = composer.composition.base.index
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.set_composition(composer.composition.with_slot(
            "font_color", SlotValue(a=ItemSource(base), b=ItemSource(other_item(gzs_service, base)))))
    qtbot.waitUntil(lambda: len(plot.path_xy()) > 1, timeout=WAIT_MS)
    start = plot.current_xy
    image = composer.image.copy()
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.slot_widgets["font_color"].slider.setValue(750)
    assert not np.array_equal(composer.image, image)
    qtbot.waitUntil(lambda: not np.allclose(plot.current_xy, start), timeout=WAIT_MS)
    # the point moves along the drawn path: t=0.75 is its 7th of 9 points (the path follows the data, so it need
    # not be the straight A→B segment)
    path = plot.path_xy()
    expected = path[6]
    np.testing.assert_allclose(plot.current_xy, expected, atol=1e-4 * (1 + np.abs(path).max()))


def _screen_pos(plot: LatentPlotPanel, row: int) -> QPoint:
    """Where point ``row`` is drawn, in the plot view's viewport coordinates (where mouse events go)."""
    x, y = (float(v) for v in plot._xy[row])
    return plot.plot_widget.mapFromScene(plot.view_box.mapViewToScene(QPointF(x, y)))


def test_hover_shows_the_item_and_click_puts_it_into_the_chosen_slot(qtbot, composer_and_plot, gzs_service) -> None:
    composer, plot = composer_and_plot
    plot.target_combo.setCurrentIndex(plot.target_combo.findData("letter"))
    # a point with no close neighbour, so the click is unambiguous
    xy = plot._xy
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    row = int(np.argmax(d.min(axis=1)))
    item = int(plot.projection.indices[row])
    pos = _screen_pos(plot, row)
    viewport = plot.plot_widget.viewport()
    move = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(viewport.mapToGlobal(pos)), Qt.MouseButton.NoButton,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, move)  # QTest's mouseMove moves no pointer on the offscreen platform
    qtbot.waitUntil(lambda: plot.preview_label.text().startswith(f"item {item} "), timeout=WAIT_MS)
    assert plot.preview.image() is not None
    with qtbot.waitSignal(composer.composition_changed, timeout=WAIT_MS):
        qtbot.mouseClick(plot.plot_widget.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert composer.composition.slot("letter").a == ItemSource(item)


def test_direction_arrows(qtbot, composer_and_plot, gzs_service) -> None:
    _, plot = composer_and_plot
    plot.directions_check.setChecked(True)
    qtbot.waitUntil(lambda: len(plot._arrow_heads) > 0, timeout=WAIT_MS)
    assert sorted(label.textItem.toPlainText() for label in plot._arrow_labels) == sorted(
        gzs_service.dataset.schema["font_color"].values)
    plot.directions_check.setChecked(False)
    assert not plot._arrow_heads


def test_cancelling_a_projection_leaves_the_plot_empty(qtbot, gzs_service) -> None:
    composer = ComposerPanel(gzs_service)
    plot = LatentPlotPanel(gzs_service, composer)  # starts projecting the first slot at once
    qtbot.addWidget(composer)
    qtbot.addWidget(plot)
    started = plot._projecting.future
    plot.cancel()
    assert started is not None and started.cancelled()  # a cancelled future delivers nothing
    qtbot.waitUntil(lambda: plot._projecting.future is None, timeout=WAIT_MS)
    for _ in range(3):  # deliver whatever the stopped job queued for the GUI thread
        QApplication.processEvents()
    assert plot.point_count() == 0
    assert "cancelled" in plot.status.text()
    assert not plot.progress.isVisible()


def test_a_first_sample_fills_the_plot_while_the_rest_encode(qtbot, gzs_service, monkeypatch) -> None:
    monkeypatch.setattr(gzs_service, "preview_points", 40)
    composer = ComposerPanel(gzs_service)
    plot = LatentPlotPanel(gzs_service, composer)
    for w in (composer, plot):
        qtbot.addWidget(w)
        w.show()
    seen: list[tuple[int, str, bool]] = []
    shown = plot._on_projected

    def record(slot, projection, preliminary=False):
        shown(slot, projection, preliminary)
        seen.append((plot.point_count(), plot.plot_item.titleLabel.text, plot.progress.isVisible()))

    monkeypatch.setattr(plot, "_on_projected", record)
    plot.set_slot("letter")
    qtbot.waitUntil(lambda: plot.projection is not None and plot.point_count() == len(gzs_service.dataset),
                    timeout=WAIT_MS)
    assert seen[0][0] == 40 and "more coming" in seen[0][1] and seen[0][2]  # the bar stays while the rest encode
    assert seen[-1][0] == len(gzs_service.dataset) and "more coming" not in seen[-1][1] and not seen[-1][2]


def test_cancelling_after_the_first_sample_keeps_it_and_says_so(qtbot, gzs_service, monkeypatch) -> None:
    monkeypatch.setattr(gzs_service, "preview_points", 40)
    monkeypatch.setattr(gzs_service, "job_items", 20)  # the rest encodes in several jobs, so a cancel lands between
    composer = ComposerPanel(gzs_service)
    plot = LatentPlotPanel(gzs_service, composer)
    for w in (composer, plot):
        qtbot.addWidget(w)
        w.show()
    shown = plot._on_projected

    def cancel_after_the_preview(slot, projection, preliminary=False):
        shown(slot, projection, preliminary)
        if preliminary:
            plot.cancel()

    monkeypatch.setattr(plot, "_on_projected", cancel_after_the_preview)
    plot.set_slot("letter")
    qtbot.waitUntil(lambda: "only the first" in plot.status.text(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: plot._projecting.future is None, timeout=WAIT_MS)
    for _ in range(3):
        QApplication.processEvents()
    assert plot.point_count() == 40 and "first 40 items only" in plot.plot_item.titleLabel.text
    assert not plot.progress.isVisible()


def test_a_projection_arriving_after_the_dataset_changed_is_dropped(qtbot, composer_and_plot, gzs_service) -> None:
    """A preview queued for the GUI thread just before the service swapped its dataset (the panel has not heard
    of the swap yet) belongs to the old items: it is dropped, not coloured by attributes the new dataset lacks."""
    import threading

    from studio.paths import shipped_models

    shapes_model = next(p for p in shipped_models() if p.parent.name == "shapes-gzs")
    _, plot = composer_and_plot
    old = plot.projection
    swap = threading.Thread(target=gzs_service.load_checkpoint, args=(shapes_model, "shapes:tiny"))
    swap.start()
    swap.join()  # the service has the shapes model and dataset; its dataset_changed relay is still queued
    assert "font_color" not in gzs_service.dataset.schema.names
    plot._on_projected("font_color", old, preliminary=True)
    assert plot.projection is old  # nothing new was shown (and nothing raised)
    qtbot.waitUntil(lambda: plot.projection is None or plot.projection is not old, timeout=WAIT_MS)
