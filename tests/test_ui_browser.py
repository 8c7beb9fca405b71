"""The dataset browser: facet counts, lazy thumbnails, filtering, details and drag payloads, on real data."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QPixmap

from studio.data.spec import open_dataset
from studio.service.items import DatasetItems
from studio.ui.browser import DatasetBrowser, FacetIndex, ThumbnailCache, ThumbnailModel
from studio.ui.mime import decode_items

pytestmark = pytest.mark.usefixtures("no_leaks")


# --- pure logic ---------------------------------------------------------------------------------------------
def test_facet_counts_match_brute_force(tiny_fonts):
    codes = tiny_fonts.codes
    facets = FacetIndex(codes, tiny_fonts.schema.cardinalities)
    letter, color = tiny_fonts.schema.position("letter"), tiny_fonts.schema.position("font_color")
    result = facets.apply({letter: 2, color: 0})

    expected = np.flatnonzero((codes[:, letter] == 2) & (codes[:, color] == 0))
    assert np.array_equal(result.indices, expected)
    # A facet's counts ignore its own filter (choosing another letter would give these) ...
    only_color = codes[codes[:, color] == 0]
    assert np.array_equal(result.counts[letter], np.bincount(only_color[:, letter], minlength=5))
    # ... and apply every other filter.
    both = codes[(codes[:, letter] == 2) & (codes[:, color] == 0)]
    size = tiny_fonts.schema.position("size")
    assert np.array_equal(result.counts[size], np.bincount(both[:, size], minlength=2))
    assert facets.apply({}).indices.size == len(tiny_fonts)


def test_facets_with_no_match_give_empty_rows(tiny_fonts):
    schema = tiny_fonts.schema
    facets = FacetIndex(tiny_fonts.codes, schema.cardinalities)
    red_on_red = {schema.position("font_color"): 0, schema.position("background_color"): 0}
    assert schema["font_color"].values[0] == schema["background_color"].values[0]
    result = facets.apply(red_on_red)
    assert result.indices.size == 0
    assert result.counts[schema.position("letter")].sum() == 0


def test_thumbnail_cache_evicts_least_recently_used(qapp):
    cache = ThumbnailCache(capacity=2)
    pix = QPixmap(4, 4)
    cache.put(1, pix)
    cache.put(2, pix)
    assert cache.get(1) is not None  # 1 is now newer than 2
    cache.put(3, pix)
    assert 2 not in cache and 1 in cache and 3 in cache


# --- the model ------------------------------------------------------------------------------------------------
def test_thumbnail_model_renders_lazily_and_maps_rows(qtbot, tiny_fonts):
    model = ThumbnailModel(thumbnail_size=32)
    try:
        rows = np.array([3, 10, 200], dtype=np.int64)
        model.set_dataset(DatasetItems(tiny_fonts), rows)
        assert model.rowCount() == 3 and model.row_of(10) == 1 and model.row_of(11) is None
        first = model.data(model.index(1), Qt.ItemDataRole.DecorationRole)
        assert isinstance(first, QPixmap) and not model.cached(10)  # placeholder now, thumbnail later
        with qtbot.waitSignal(model.dataChanged, timeout=20_000):
            pass
        qtbot.waitUntil(lambda: model.cached(10), timeout=20_000)
        assert not model.cached(3) and not model.cached(200)  # nobody asked for them
        thumb = model.data(model.index(1), Qt.ItemDataRole.DecorationRole).toImage()
        pixel = thumb.pixelColor(0, 0)
        expected = tiny_fonts.image(10)[0, 0]
        assert (pixel.red(), pixel.green(), pixel.blue()) == tuple(int(v) for v in expected)
        payload = decode_items(model.mimeData([model.index(0), model.index(2)]))
        assert payload == ([3, 200], tiny_fonts.fingerprint)
    finally:
        model.shutdown()


def test_full_fonts_set_is_browsed_without_rendering_it(qtbot):
    """~309k items: showing, jumping to the end and back renders only what was on screen."""
    full = open_dataset("fonts:full,res=32")
    browser = DatasetBrowser(thumbnail_size=32)
    qtbot.addWidget(browser)
    browser.resize(420, 520)
    browser.show()
    browser.set_dataset(DatasetItems(full))
    assert browser.visible_count() == len(full) > 300_000
    qtbot.waitUntil(lambda: browser.model.cached(0), timeout=20_000)
    last = len(full) - 1
    index = browser.model.index(last)

    def scrolled_to_the_end() -> bool:
        browser.view.scrollTo(index)  # the layout runs in batches: repeat until the last row exists
        return browser.view.viewport().rect().intersects(browser.view.visualRect(index)) and browser.model.cached(last)

    qtbot.waitUntil(scrolled_to_the_end, timeout=30_000)
    assert len(browser.model._cache) < 2000
    browser.shutdown()


# --- the widget ------------------------------------------------------------------------------------------------
def test_browser_shows_items_and_filters_change_the_count(qtbot, ui_service):
    ui_service.open_dataset("fonts:tiny,res=32")
    browser = DatasetBrowser(ui_service)
    qtbot.addWidget(browser)
    browser.resize(420, 600)
    browser.show()
    dataset = ui_service.dataset
    assert browser.visible_count() == len(dataset) == 240
    assert browser.count_label.text() == "240 items"
    qtbot.waitUntil(lambda: browser.model.cached(0), timeout=20_000)

    browser.facets.select("letter", "C")
    assert browser.visible_count() == 48
    assert browser.count_label.text() == "48 of 240 items"
    rows = browser.model.rows()
    assert all(dataset.values(int(i))["letter"] == "C" for i in rows)
    letter_combo = browser.facets._combos[0]
    assert letter_combo.itemText(0) == "Any (240)"

    browser.facets.select("font_color", "red")
    browser.facets.select("background_color", "red")
    assert browser.visible_count() == 0
    assert browser.stack.currentWidget() is browser.empty_label
    browser.facets.clear()
    assert browser.visible_count() == 240
    browser.shutdown()


def test_selecting_an_item_shows_its_values_and_drags_it(qtbot, ui_service):
    ui_service.open_dataset("fonts:tiny,res=32")
    browser = DatasetBrowser(ui_service)
    qtbot.addWidget(browser)
    browser.show()
    dataset = ui_service.dataset
    with qtbot.waitSignal(browser.item_selected) as selected:
        assert browser.select_item(17)
    assert selected.args == [17]
    values = dataset.values(17)
    assert browser.details.title.text() == "Item 17"
    assert all(browser.details.value_text(name) == value for name, value in values.items())

    selection = browser.view.selectionModel()
    selection.select(browser.model.index(20), QItemSelectionModel.SelectionFlag.Select)
    assert browser.selected_items() == [17, 20]
    mime = browser.model.mimeData(selection.selectedIndexes())
    assert decode_items(mime) == ([17, 20], dataset.fingerprint)
    browser.shutdown()


def test_browser_follows_the_service_dataset(qtbot, ui_service):
    browser = DatasetBrowser(ui_service)
    qtbot.addWidget(browser)
    assert browser.visible_count() == 0 and browser.stack.currentWidget() is browser.empty_label
    ui_service.open_dataset_async("shapes:tiny,res=32")
    qtbot.waitUntil(lambda: browser.visible_count() == 288, timeout=20_000)
    assert browser.dataset is ui_service.items and browser.dataset.views(ui_service.dataset)
    assert [c.count() for c in browser.facets._combos] == [a.cardinality + 1 for a in ui_service.dataset.schema]
    browser.shutdown()
