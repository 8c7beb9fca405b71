"""Slider paths stay on the data, and images far from it are noticed (issue 17): SlotManifold on its own, then
through the real service with a tiny real GZS-Net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.service.composition import Composition, ItemSource, SlotValue
from studio.service.data_manifold import FAR_SPACINGS, PULL_START, SlotManifold


def _two_clusters(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 0.1, size=(200, 8)) + 5.0
    b = rng.normal(0.0, 0.1, size=(200, 8)) - 5.0
    return np.vstack([a, b]).astype(np.float32)


def test_follow_pulls_a_midpoint_onto_the_data_and_leaves_data_points_alone() -> None:
    data = _two_clusters()
    manifold = SlotManifold.fit("colour", data)
    assert 0.0 < manifold.spacing < 1.0
    inside = data[3] + 0.01
    np.testing.assert_array_equal(manifold.follow(inside), inside.astype(np.float32))
    midpoint = 0.5 * (data[0] + data[250])
    assert manifold.distance(midpoint)[0] > 10 * FAR_SPACINGS
    pulled = manifold.follow(midpoint)
    assert manifold.distance(pulled)[0] < PULL_START
    # a path between two points that are themselves off the data may stray as far as they do
    far_a, far_b = data[0] + 3.0, data[1] + 3.0
    allowed = float(manifold.distance(np.stack([far_a, far_b])).max())
    line = 0.5 * (far_a + far_b)
    np.testing.assert_array_equal(manifold.follow(line, allowed), line.astype(np.float32))
    assert manifold.is_far(far_a) and not manifold.is_far(data[5])


@pytest.fixture
def service(ui_service, tiny_gzs_run):
    ui_service.load_checkpoint(tiny_gzs_run)
    return ui_service


def _pair(service, attribute: str) -> tuple[int, int]:
    """Two training items that differ in ``attribute`` and in everything else too."""
    train = service._train_items(service._state)
    codes = service.dataset.codes
    a = int(train[0])
    b = next(int(i) for i in train if (codes[i] != codes[a]).all())
    return a, b


def test_interpolation_frames_stay_near_the_data(service) -> None:
    slot = "background_color"
    a, b = _pair(service, slot)
    names = service.model.slot_names
    comp = Composition({n: SlotValue() for n in names}, ItemSource(a)).with_slot(
        slot, SlotValue(a=ItemSource(a), b=ItemSource(b)))
    manifold = service.manifold(slot)
    ts = np.linspace(0.0, 1.0, 9)

    def path(follow: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        service.follow_data = follow
        latents = np.stack([service.compose(comp.with_slot(slot, comp.slot(slot).with_t(float(t)))).latents[slot]
                            for t in ts])
        return latents, service.interpolate(comp, slot, len(ts))

    line, line_frames = path(False)
    data, data_frames = path(True)
    ends = manifold.distance(line[[0, -1]])
    np.testing.assert_array_equal(line[[0, -1]], data[[0, -1]])  # the ends are A and B themselves
    np.testing.assert_array_equal(line_frames[0], data_frames[0])
    on_data = manifold.distance(data)
    # never further from the data than the ends' own distance plus the margin where the pull starts, however far
    # the straight line strays
    assert on_data.max() <= 2 * (ends.max() + PULL_START) + 1e-3
    assert on_data.max() <= manifold.distance(line).max() + 1e-3


def test_familiarity_tells_a_dataset_image_from_noise(service, tmp_path: Path) -> None:
    train = service._train_items(service._state)
    item = tmp_path / "item.png"
    Image.fromarray(service.dataset.image(int(train[3]))).save(item)
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(noise)
    known = service.image_familiarity(item)
    strange = service.image_familiarity(noise)
    assert set(known.distances) == set(service.model.slot_names)
    assert not known.far and known.summary() == ""
    assert strange.far
    assert strange.reconstruction_error > known.reconstruction_error
    assert "unlike the training data" in strange.summary("noise.png")
