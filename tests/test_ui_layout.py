"""The main window on a 1366×768 laptop screen: every panel fits at a usable width, and the side panels fold away
and come back."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.ui.main_window import COMPOSE_PROPORTIONS, MainWindow

pytestmark = pytest.mark.usefixtures("no_leaks")
LAPTOP = (1366, 768)


def open_laptop_window(qtbot, ui_service, ui_settings, tiny_gzs_run: Path) -> MainWindow:
    """The main window at 1366×768 on the tiny model, with its first composed image on show. (Not a fixture:
    pytest would hold the window until after ``no_leaks`` has looked for leaked widgets.)"""
    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.resize(*LAPTOP)
    window.show()
    with qtbot.waitSignal(window.composer.image_changed, timeout=60_000):
        window.start_session(tiny_gzs_run)
    qtbot.waitUntil(lambda: window.compose_splitter.sizes()[0] > 0, timeout=10_000)
    return window


def test_the_main_window_fits_a_1366x768_screen(qtbot, ui_service, ui_settings, tiny_gzs_run, tmp_path: Path):
    window = open_laptop_window(qtbot, ui_service, ui_settings, tiny_gzs_run)
    assert (window.width(), window.height()) == LAPTOP
    assert window.minimumSizeHint().width() <= LAPTOP[0] - 60  # room to move the splitters, not only to fit
    assert window.training.minimumSizeHint().width() <= LAPTOP[0]

    splitter = window.compose_splitter
    sizes = splitter.sizes()
    for k, size in enumerate(sizes):  # nothing folded away, nothing squeezed below what it needs
        assert size >= splitter.widget(k).minimumSizeHint().width() > 0, (k, sizes)
    assert sizes[1] == max(sizes), sizes  # the composer gets the most room
    assert abs(sizes[0] / sum(sizes) - COMPOSE_PROPORTIONS[0] / 100) < 0.1

    composer = window.composer
    column = composer.slots_scroll.viewport().width()
    for card in composer.slot_widgets.values():  # no slot card is cut off on the right
        assert card.minimumSizeHint().width() <= column
    assert composer.output.width() >= 160 and composer.output.height() >= 160
    assert window.latent_plot.plot_widget.width() >= 240

    shot = tmp_path / "compose-1366x768.png"
    assert window.grab().save(str(shot)) and shot.stat().st_size > 10_000


def test_browser_filters_stack_in_one_column_when_narrow(qtbot, ui_service, ui_settings, tiny_gzs_run):
    window = open_laptop_window(qtbot, ui_service, ui_settings, tiny_gzs_run)
    facets = window.browser.facets
    assert facets._columns == 1  # at 1366 px the browser is too narrow for two columns of filters
    assert window.browser.minimumSizeHint().width() <= 260
    window.resize(1920, 1000)  # a wide screen has room for them
    two_columns = 2 * facets._one_column_width() + 3 * facets._grid.horizontalSpacing()
    qtbot.waitUntil(lambda: sum(window.compose_splitter.sizes()) > 1800, timeout=5_000)
    width = sum(window.compose_splitter.sizes())
    window.compose_splitter.setSizes([two_columns + 40, width - two_columns - 40 - 400, 400])
    qtbot.waitUntil(lambda: facets._columns == 2, timeout=5_000)
    def row_of(widget) -> int:
        return facets._grid.getItemPosition(facets._grid.indexOf(widget))[0]

    assert row_of(facets._combos[0]) == row_of(facets._combos[1]) == 0  # side by side
    window.compose_splitter.setSizes([280, width - 280 - 400, 400])
    qtbot.waitUntil(lambda: facets._columns == 1, timeout=5_000)
    assert [row_of(c) for c in facets._combos] == list(range(len(facets._combos)))  # one under another


def test_a_side_panel_dragged_shut_is_hidden_and_comes_back(qtbot, ui_service, ui_settings, tiny_gzs_run):
    window = open_laptop_window(qtbot, ui_service, ui_settings, tiny_gzs_run)
    splitter = window.compose_splitter
    splitter.moveSplitter(splitter.width(), 2)  # what dragging the plot's handle to the right edge does
    assert splitter.sizes()[2] == 0
    assert not window.show_plot_action.isChecked() and not window.latent_plot.isVisible()

    window.show_plot_action.setChecked(True)
    qtbot.waitUntil(lambda: window.latent_plot.isVisible(), timeout=5_000)
    assert splitter.sizes()[2] >= window.latent_plot.minimumSizeHint().width()
    assert splitter.sizes()[1] >= window.composer.minimumSizeHint().width()


def test_a_tile_caption_too_wide_for_it_is_elided_in_the_middle_and_whole_in_the_tooltip(qtbot) -> None:
    from studio.ui.source_tile import SourceTile

    tile = SourceTile("A", "drop here", lambda: "")
    qtbot.addWidget(tile)
    tile.show_source(None, "item 268488", "a dataset item")
    assert tile.caption.text() == "item 268488"  # six digits fit as they are
    assert tile.toolTip() == "a dataset item"
    long = "base: mixture of 12 sources from a folder"
    tile.show_source(None, long, "the base source")
    shown = tile.caption.text()
    assert "…" in shown and shown.startswith("ba") and shown.endswith("er")
    assert tile.caption.fontMetrics().horizontalAdvance(shown) <= tile.caption.width()
    assert tile.toolTip() == f"{long}\nthe base source"
