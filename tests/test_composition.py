"""Compositions and the model-free parts of the service: JSON round trips, cover queries, the latent cache, PCA
and attribute-direction math on synthetic arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from studio.data.splits import ZeroShotSplit
from studio.errors import StudioError
from studio.service.composition import (
    Composition,
    DirectionStep,
    FileSource,
    ItemSource,
    LatentSource,
    MixtureSource,
    Project,
    SlotValue,
)
from studio.service.directions import fit_directions
from studio.service.latent_cache import LatentCache, checkpoint_fingerprint
from studio.service.projection import PcaFit, pool_features, sample_indices
from studio.service.query import cover_query, parse_values


def _rich_composition() -> Composition:
    mixture = MixtureSource(((ItemSource(3), 2.0), (MixtureSource(((FileSource("a b.png"), 1.0),)), 0.5)))
    return Composition(
        {
            "letter": SlotValue(a=ItemSource(7), b=LatentSource((0.5, -1.25, 3.0, 0.0), (4,)), t=0.3),
            "font_color": SlotValue(a=mixture, steps=(DirectionStep("font_color", "red", 1.5,
                                                                    (("blue", 1.0), ("green", -1.0))),),
                                    locked=True),
            "size": SlotValue(),
        },
        base=FileSource("/tmp/ünïcode.png"),
    )


def test_composition_json_round_trip_keeps_every_field():
    comp = _rich_composition()
    text = json.dumps(comp.to_json())
    back = Composition.from_json(json.loads(text))
    assert back == comp
    assert back.slot("font_color").steps[0].combine == (("blue", 1.0), ("green", -1.0))
    assert back.slot("missing") == SlotValue()
    assert back.resolved_source("size") == FileSource("/tmp/ünïcode.png")


def test_project_file_round_trip_and_errors(tmp_path: Path):
    project = Project(_rich_composition(), checkpoint="runs/a/checkpoints/last.safetensors",
                      dataset="fonts:tiny,res=32", note="hello")
    path = tmp_path / "p.json"
    project.save(path)
    assert Project.load(path) == project
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    (tmp_path / "bad.json").write_text('{"kind": "something-else"}')
    with pytest.raises(StudioError, match=r"bad\.json"):
        Project.load(tmp_path / "bad.json")
    with pytest.raises(StudioError, match="unknown source"):
        Composition.from_json({"slots": {"letter": {"a": {"pixels": 3}}}})
    with pytest.raises(StudioError, match="newer"):
        Composition.from_json({"version": 99, "slots": {}})


def test_global_t_moves_only_unlocked_slots_with_a_second_source():
    comp = Composition({
        "a": SlotValue(ItemSource(1), ItemSource(2)),
        "b": SlotValue(ItemSource(1), ItemSource(2), locked=True),
        "c": SlotValue(ItemSource(1)),
    })
    moved = comp.with_global_t(0.75)
    assert moved.slot("a").t == 0.75
    assert moved.slot("b").t == 0.0
    assert moved.slot("c").t == 0.0


def test_parse_values_accepts_pairs_and_names_bad_parts():
    assert parse_values("letter=A, font_color=red,") == {"letter": "A", "font_color": "red"}
    with pytest.raises(StudioError, match="letterA"):
        parse_values("letterA")
    with pytest.raises(StudioError, match="empty"):
        parse_values(" , ")


def test_cover_query_uses_training_items_only(tiny_fonts):
    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, seed=0)
    schema = tiny_fonts.schema
    held_out = tiny_fonts.codes[split.test[0]]
    wanted = schema.decode_row(held_out)
    result = cover_query(tiny_fonts, split.train, wanted, lambda attribute: f"slot_{attribute}")
    assert result.exact_index is not None
    assert (tiny_fonts.codes[result.exact_index] == held_out).all()
    assert not result.exact_in_training
    assert set(result.cover) == set(schema.names)
    train = set(split.train.tolist())
    for attribute, item in result.cover.items():
        assert item in train
        assert tiny_fonts.values(item)[attribute] == wanted[attribute]
        assert result.composition.slot(f"slot_{attribute}").a == ItemSource(item)
    # A combination nobody rendered: no exact item, and the cover still supplies each value.
    partial = cover_query(tiny_fonts, split.train, {"font_color": "red", "background_color": "red"}, lambda a: a)
    assert partial.exact_index is None
    assert tiny_fonts.values(partial.cover["background_color"])["background_color"] == "red"
    with pytest.raises(StudioError, match="purple"):
        cover_query(tiny_fonts, split.train, {"font_color": "purple"}, lambda a: a)


# --- latent cache ---------------------------------------------------------------------------------
class CountingEncoder:
    """A plain deterministic encoder (index -> numbers) that counts the items it was asked for."""

    def __init__(self) -> None:
        self.items = 0

    def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        self.items += len(indices)
        i = indices.astype(np.float32)[:, None]
        return {"a": np.hstack([i, i * 2]), "b": np.hstack([-i, i + 0.5, i * i])}


def _segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("seg-*.safetensors"))


def test_latent_cache_encodes_each_item_once_and_reads_its_disk_copy(tmp_path: Path):
    enc = CountingEncoder()
    sizes = {"a": 2, "b": 3}
    cache = LatentCache(tmp_path, "ckpt", "data", 5000, sizes)
    first = cache.fetch(np.array([5, 1, 250, 5]), enc)
    assert enc.items == 3
    assert first["a"][:, 0].tolist() == [5, 1, 250, 5]
    assert first["b"][2].tolist() == [-250, 250.5, 62500]
    cache.fetch(np.array([1, 250]), enc)
    assert enc.items == 3
    assert len(_segments(tmp_path / "ckpt" / "data")) == 1

    again = LatentCache(tmp_path, "ckpt", "data", 5000, sizes)
    enc2 = CountingEncoder()
    got = again.fetch(np.array([250, 1, 2]), enc2)
    assert enc2.items == 1  # only item 2 was never encoded
    assert got["a"][:, 0].tolist() == [250, 1, 2]
    assert again.disk_reads == 1
    assert len(_segments(tmp_path / "ckpt" / "data")) == 2  # only the new item was written

    other = LatentCache(tmp_path, "other-ckpt", "data", 5000, sizes)
    other.fetch(np.array([1]), enc2)
    assert enc2.items == 2  # another checkpoint never shares latents


def test_latent_cache_survives_damaged_files_and_tiny_memory(tmp_path: Path):
    sizes = {"a": 2, "b": 3}
    enc = CountingEncoder()
    writer = LatentCache(tmp_path, "c", "d", 1000, sizes)
    for start in (0, 10, 20):
        writer.fetch(np.arange(start, start + 10), enc)
    segments = _segments(tmp_path / "c" / "d")
    assert len(segments) == 3
    segments[1].write_bytes(b"not a safetensors file")
    cache = LatentCache(tmp_path, "c", "d", 1000, sizes, memory_bytes=1)
    enc2 = CountingEncoder()
    got = cache.fetch(np.arange(30)[::-1], enc2)
    assert enc2.items == 10  # the damaged segment's items are encoded again, the others read back
    assert got["a"][:, 0].tolist() == list(range(29, -1, -1))
    assert cache.cached_count() == 1
    mem = LatentCache(None, "c", "d", 1000, sizes, memory_bytes=1)
    enc3 = CountingEncoder()
    got = mem.fetch(np.array([0, 15, 33, 47, 15]), enc3)
    assert got["b"][:, 0].tolist() == [0, -15, -33, -47, -15]
    assert enc3.items == 4
    with pytest.raises(IndexError):
        mem.fetch(np.array([1000]), enc3)
    capped = LatentCache(tmp_path, "c", "capped", 1000, sizes, disk_bytes=100)
    assert capped.fetch(np.arange(50), enc3)["a"][:, 1].tolist() == [2.0 * i for i in range(50)]
    assert not (tmp_path / "c" / "capped").exists()  # over the disk budget: memory only


def test_latent_cache_merges_small_segments_without_losing_items(tmp_path: Path):
    sizes = {"a": 2, "b": 3}
    enc = CountingEncoder()
    cache = LatentCache(tmp_path, "c", "d", 1000, sizes)
    cache.merge_above = 4
    for i in range(20):  # one new item at a time, as composing does
        cache.fetch(np.array([i * 7]), enc)
    assert len(_segments(tmp_path / "c" / "d")) <= 5
    reader = LatentCache(tmp_path, "c", "d", 1000, sizes)
    enc2 = CountingEncoder()
    got = reader.fetch(np.arange(20) * 7, enc2)
    assert enc2.items == 0
    assert got["b"][:, 1].tolist() == [i * 7 + 0.5 for i in range(20)]


def test_checkpoint_fingerprint_follows_content(tmp_path: Path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 1000)
    assert checkpoint_fingerprint(a) == checkpoint_fingerprint(b)
    b.write_bytes(b"y" * 1001)
    assert checkpoint_fingerprint(a) != checkpoint_fingerprint(b)


# --- projection -----------------------------------------------------------------------------------
def test_pca_recovers_known_axes_with_stable_signs():
    rng = np.random.default_rng(0)
    n, d = 4000, 6
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    coords = rng.normal(size=(n, d)) * np.array([5.0, 2.0, 0.3, 0.2, 0.1, 0.1])
    x = coords @ basis.T + 7.0
    fit = PcaFit.fit(x)
    assert abs(abs(fit.components[0] @ basis[:, 0]) - 1) < 1e-2
    assert abs(abs(fit.components[1] @ basis[:, 1]) - 1) < 1e-2
    assert fit.explained[0] > fit.explained[1] > 0.1
    assert np.allclose(fit.transform(fit.mean[None]), 0, atol=1e-4)
    refit = PcaFit.fit(x[::-1].copy())
    assert np.allclose(refit.components, fit.components, atol=1e-4)
    assert np.allclose(PcaFit.from_arrays(fit.to_arrays()).transform(x[:5]), fit.transform(x[:5]))
    one_d = PcaFit.fit(rng.normal(size=(50, 1)))
    assert one_d.transform(np.ones((3, 1))).shape == (3, 2)


def test_spatial_latents_are_pooled_per_channel():
    z = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 12)
    pooled, was_pooled = pool_features(z, (3, 2, 2))
    assert was_pooled and pooled.shape == (2, 3)
    assert pooled[0].tolist() == [1.5, 5.5, 9.5]
    flat, was_pooled = pool_features(z, (12,))
    assert not was_pooled and flat.shape == (2, 12)


def test_sample_indices_are_seeded_sorted_and_keep_rare_values():
    labels = np.zeros(100_000, dtype=np.int64)
    labels[:20] = 1  # a rare value
    a = sample_indices(len(labels), 500, seed=0, labels=labels)
    b = sample_indices(len(labels), 500, seed=0, labels=labels)
    assert np.array_equal(a, b)
    assert len(a) == 500 and len(np.unique(a)) == 500 and (np.diff(a) > 0).all()
    assert (labels[a] == 1).sum() == 20
    assert np.array_equal(sample_indices(30, 500), np.arange(30))


# --- directions -----------------------------------------------------------------------------------
def _blobs(rng: np.random.Generator, centres: np.ndarray, per: int = 200, noise: float = 0.4):
    x = np.concatenate([c + noise * rng.normal(size=(per, centres.shape[1])) for c in centres])
    y = np.repeat(np.arange(len(centres)), per)
    return x.astype(np.float32), y


def test_directions_point_toward_their_value_and_steps_raise_its_score():
    rng = np.random.default_rng(1)
    centres = np.array([[3.0, 0, 0, 0, 0], [0, 3.0, 0, 0, 0], [0, 0, 3.0, 0, 0]])
    x, y = _blobs(rng, centres)
    dirs = fit_directions(x, y, ("red", "green", "blue"), slot="font_color", attribute="font_color")
    assert dirs.accuracy > 0.95
    assert np.allclose(np.linalg.norm(dirs.directions, axis=1), 1, atol=1e-5)
    for k, value in enumerate(dirs.values):
        toward = centres[k] - np.delete(centres, k, axis=0).mean(axis=0)
        assert dirs.direction(value) @ toward / np.linalg.norm(toward) > 0.8
        assert np.linalg.norm(dirs.centre(value) - centres[k]) < 0.2
        start = x[y == (k + 1) % 3][:20]
        before = dirs.scores(start)[:, k]
        after = dirs.scores(dirs.step(start, value, 2.0))[:, k]
        assert (after > before).all()
    # Predictions: the highest score names the value.
    assert (dirs.scores(x).argmax(axis=1) == y).mean() > 0.95
    combined = dirs.combined("red", (("green", 1.0), ("blue", -1.0)))
    assert np.allclose(combined, dirs.direction("red") + dirs.direction("green") - dirs.direction("blue"), atol=1e-6)
    with pytest.raises(StudioError, match="purple"):
        dirs.direction("purple")


def test_directions_with_two_values_and_with_an_absent_value():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, np.array([[0.0, 0, 2], [0, 0, -2]]))
    dirs = fit_directions(x, y, ("small", "large", "huge"), slot="size", attribute="size")
    assert dirs.direction("small")[2] > 0.9 and dirs.direction("large")[2] < -0.9
    assert np.allclose(dirs.direction("huge"), 0)
    assert dirs.counts.tolist() == [200, 200, 0]
    with pytest.raises(StudioError, match="huge"):
        dirs.centre("huge")
    with pytest.raises(StudioError, match="two values"):
        fit_directions(x[y == 0], y[y == 0], ("small", "large"), slot="size", attribute="size")
