"""The Fonts dataset: presets, font colour never equal to background, and pixels fixed by the spec."""

import numpy as np
import pytest

from studio.data import open_dataset
from studio.data.fonts import COLORS, FontsDataset
from studio.errors import DatasetError


def test_preset_sizes_follow_the_issue():
    assert len(open_dataset("fonts:tiny,res=16")) == 5 * 2 * 6 * 4
    assert len(open_dataset("fonts:small,res=16")) == 10 * 3 * 20 * 10  # 6,000
    full = open_dataset("fonts")
    assert len(full) == 52 * 3 * 90 * len(full.schema["font"].values)
    assert full.resolution == 64


def test_font_colour_never_equals_background_in_codes(tiny_fonts):
    for spec in ("fonts:small,res=16", "fonts"):
        ds = open_dataset(spec)
        fc = np.array(ds.schema["font_color"].values)[ds.codes[:, 2]]
        bg = np.array(ds.schema["background_color"].values)[ds.codes[:, 3]]
        assert (fc != bg).all()
        assert len(np.unique(ds.codes, axis=0)) == len(ds)


def test_images_show_the_labelled_colours(tiny_fonts):
    schema = tiny_fonts.schema
    for i in range(0, len(tiny_fonts), 7):
        img = tiny_fonts.image(i).astype(int)
        values = tiny_fonts.values(i)
        bg = np.array(COLORS[values["background_color"]])
        fg = np.array(COLORS[values["font_color"]])
        assert (img[0, 0] == bg).all() and (img[-1, -1] == bg).all()
        # The pixel that differs most from the background is the glyph's colour, not some other.
        far = img.reshape(-1, 3)[np.abs(img.reshape(-1, 3) - bg).sum(axis=1).argmax()]
        assert np.abs(far - fg).sum() < np.abs(far - bg).sum()
        assert img.shape == (32, 32, 3)
    assert schema["font_color"].rgb is not None and schema["background_color"].rgb is not None


def test_render_values_refuses_equal_colours(tiny_fonts):
    red = tiny_fonts.schema["font_color"].index("red")
    assert tiny_fonts.render_values([0, 0, red, red, 0]) is None
    green = tiny_fonts.schema["background_color"].index("green")
    row = [1, 1, red, green, 2]
    assert np.array_equal(tiny_fonts.render_values(row), tiny_fonts.image(tiny_fonts.index_of(row)))


def test_same_spec_same_pixels_and_fingerprint(tiny_fonts):
    again = FontsDataset("tiny", 32)
    idx = np.arange(0, len(again), 5)
    assert np.array_equal(tiny_fonts.images(idx), again.images(idx))
    assert tiny_fonts.fingerprint == again.fingerprint
    assert open_dataset(tiny_fonts.spec).fingerprint == tiny_fonts.fingerprint


def test_fingerprint_changes_with_resolution_and_preset(tiny_fonts):
    assert open_dataset("fonts:tiny,res=64").fingerprint != tiny_fonts.fingerprint
    assert open_dataset("fonts:small,res=32").fingerprint != tiny_fonts.fingerprint


def test_different_items_look_different(tiny_fonts):
    flat = tiny_fonts.images(np.arange(len(tiny_fonts))).reshape(len(tiny_fonts), -1)
    assert len(np.unique(flat, axis=0)) == len(tiny_fonts)


def test_bad_presets_and_font_folders_are_reported(tmp_path):
    with pytest.raises(DatasetError, match="huge"):
        FontsDataset("huge")
    with pytest.raises(DatasetError, match="res=8"):
        FontsDataset("tiny", 8)
    with pytest.raises(DatasetError, match="does not exist"):
        FontsDataset("tiny", 32, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=r"no \.ttf"):
        FontsDataset("tiny", 32, str(tmp_path))
