"""The Shapes dataset: presets, colours as labelled, every label combination a distinct image, fixed pixels."""

import numpy as np
import PIL
import pytest

from studio.data import open_dataset
from studio.data.fonts import COLORS
from studio.data.shapes import RENDERER_VERSION, ShapesDataset
from studio.errors import DatasetError


def test_schema_and_preset_sizes(tiny_shapes):
    assert tiny_shapes.schema.names == ["shape", "scale", "rotation", "pos_x", "pos_y", "color", "background_color"]
    assert len(tiny_shapes) == 3 * 2 * 2 * 2 * 2 * 6
    small = open_dataset("shapes:small")
    assert 2000 <= len(small) <= 6000 and small.resolution == 64
    full = open_dataset("shapes")
    assert len(full) > 100_000
    assert full.schema["color"].rgb == tuple(COLORS[c] for c in full.schema["color"].values)


def test_colour_never_equals_background(tiny_shapes):
    for ds in (tiny_shapes, open_dataset("shapes")):
        s = ds.schema
        fg = np.array(s["color"].values)[ds.codes[:, 5]]
        bg = np.array(s["background_color"].values)[ds.codes[:, 6]]
        assert (fg != bg).all()
    red = tiny_shapes.schema["color"].index("red")
    assert tiny_shapes.render_values([0, 0, 0, 0, 0, red, red]) is None


def test_pixels_show_colour_at_the_labelled_position(tiny_shapes):
    res = tiny_shapes.resolution
    for i in range(len(tiny_shapes)):
        img = tiny_shapes.image(i)
        v = tiny_shapes.values(i)
        bg, fg = COLORS[v["background_color"]], COLORS[v["color"]]
        for corner in (img[0, 0], img[0, -1], img[-1, 0], img[-1, -1]):
            assert tuple(corner) == bg
        cx, cy = float(v["pos_x"]) * res, float(v["pos_y"]) * res
        centre = img[int(cy) - 1:int(cy) + 1, int(cx) - 1:int(cx) + 1].reshape(-1, 3)
        assert any(tuple(p) == fg for p in centre), f"item {i} {v}: no {v['color']} pixel at its centre"


@pytest.mark.parametrize("spec", ["shapes:tiny,res=32", "shapes:small,res=32"])
def test_every_label_combination_is_a_distinct_image(spec):
    ds = open_dataset(spec)
    flat = ds.images(np.arange(len(ds))).reshape(len(ds), -1)
    assert len(np.unique(flat, axis=0)) == len(ds)


def test_rotation_turns_the_shape(tiny_shapes):
    row = list(tiny_shapes.codes[0])
    turned = row.copy()
    turned[2] = 1
    a, b = tiny_shapes.render_values(row), tiny_shapes.render_values(turned)
    assert a is not None and b is not None
    # Same amount of ink (area is kept by a rotation, up to anti-aliasing), drawn differently.
    ink_a = (a != a[0, 0]).any(axis=2).sum()
    ink_b = (b != b[0, 0]).any(axis=2).sum()
    assert abs(int(ink_a) - int(ink_b)) <= 0.25 * ink_a
    assert not np.array_equal(a, b)


def test_same_spec_same_pixels_and_fingerprint(tiny_shapes):
    again = ShapesDataset("tiny", 32)
    idx = np.arange(0, len(again), 3)
    assert np.array_equal(again.images(idx), tiny_shapes.images(idx))
    assert again.fingerprint == tiny_shapes.fingerprint
    assert open_dataset(tiny_shapes.spec).fingerprint == tiny_shapes.fingerprint


def test_fingerprint_pins_resolution_preset_and_renderer(tiny_shapes):
    assert open_dataset("shapes:tiny,res=64").fingerprint != tiny_shapes.fingerprint
    assert open_dataset("shapes:small,res=32").fingerprint != tiny_shapes.fingerprint
    parts = tiny_shapes._fingerprint_parts()
    assert RENDERER_VERSION in parts and f"pillow={PIL.__version__}" in parts


def test_bad_preset_and_resolution():
    with pytest.raises(DatasetError, match="medium"):
        open_dataset("shapes:medium")
    with pytest.raises(DatasetError, match="res=8"):
        open_dataset("shapes:tiny,res=8")
