"""Value mining (studio.service.mined_values, `studio compose --direction/--centre/--save-value/--use-value`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.errors import StudioError
from studio.service.composition import Composition, ItemSource, LatentSource, SlotValue
from studio.service.mined_values import MinedValueStore, capture, mine, parse_recipe, recipe_text
from studio.service.model_service import ModelService


@pytest.fixture(scope="module")
def service(tiny_gzs_run: Path, tmp_path_factory: pytest.TempPathFactory):
    svc = ModelService(device="cpu", cache_dir=tmp_path_factory.mktemp("values-cache"))
    svc.load_checkpoint(tiny_gzs_run)
    yield svc
    svc.shutdown()


def test_parse_recipe() -> None:
    assert parse_recipe("blue+red-green") == (("blue", 1.0), ("red", 1.0), ("green", -1.0))
    assert parse_recipe(" blue + 0.5*red - 2 * green ") == (("blue", 1.0), ("red", 0.5), ("green", -2.0))
    assert parse_recipe("-red") == (("red", -1.0),)
    fonts = ["DejaVuSans", "DejaVuSans-Bold", "cmr10"]
    assert parse_recipe("DejaVuSans-Bold-DejaVuSans+cmr10", fonts) == (
        ("DejaVuSans-Bold", 1.0), ("DejaVuSans", -1.0), ("cmr10", 1.0))
    assert recipe_text(parse_recipe("blue + 0.5*red - green")) == "blue + 0.5*red - green"
    for bad, why in (("", "empty"), ("blue+", "no value after"), ("blue++red", "is not a value")):
        with pytest.raises(StudioError, match=why):
            parse_recipe(bad)
    with pytest.raises(StudioError, match="known values: red, blue"):
        parse_recipe("purple+red", ["red", "blue"])


def test_mining_moves_along_the_combined_directions(service: ModelService) -> None:
    base = Composition({}, ItemSource(5))
    dirs = service.directions("font_color")
    mined = mine(service, base, "font_color", (("blue", 1.0), ("red", 1.0), ("green", -1.0)), 1.5)
    (step,) = mined.slot("font_color").steps
    assert (step.value, step.amount, step.combine) == ("blue", 1.5, (("red", 1.0), ("green", -1.0)))
    start = service.compose(base).latents["font_color"]
    want = start + 1.5 * (dirs.direction("blue") + dirs.direction("red") - dirs.direction("green"))
    assert np.allclose(service.compose(mined).latents["font_color"], want, atol=1e-5)
    # a weighted first value scales the whole step
    half = mine(service, base, "font_color", (("blue", 0.5), ("red", 1.0)), 2.0)
    want = start + 2.0 * (0.5 * dirs.direction("blue") + dirs.direction("red"))
    assert np.allclose(service.compose(half).latents["font_color"], want, atol=1e-5)
    with pytest.raises(StudioError, match="purple"):
        service.compose(mine(service, base, "font_color", (("purple", 1.0),), 1.0))


def test_save_reuse_and_replay_mined_values(service: ModelService, tmp_path: Path) -> None:
    store = MinedValueStore(tmp_path / "values" / "mine.json")
    assert store.load() == []
    mined = mine(service, Composition({}, ItemSource(5)), "font_color", (("blue", 1.0), ("green", -1.0)), 1.0)
    value = capture(service, mined, "font_color", "teal-ish")
    assert value.recipe == (("blue", 1.0), ("green", -1.0)) and value.amount == 1.0
    assert np.allclose(value.latent, service.compose(mined).latents["font_color"])
    store.save(value)
    centre = capture(service, service.jump_to_centre(Composition({}, ItemSource(5)), "font_color", "red"),
                     "font_color", "red centre")
    store.save(centre)
    assert [v.name for v in MinedValueStore(store.path).load()] == ["teal-ish", "red centre"]
    data = json.loads(store.path.read_text())
    assert data["kind"] == "attribute-studio-mined-values" and data["version"] == 1

    # the same model reuses the stored latent on any composition
    elsewhere = Composition({}, ItemSource(200))
    used = store.get("teal-ish").apply(service, elsewhere)
    assert used.slot("font_color").a == LatentSource(value.latent, value.shape)
    assert np.allclose(service.compose(used).latents["font_color"], value.latent)
    # another model (another fingerprint) replays the recipe from the slot's own source instead
    foreign = replace(value, model_fingerprint="another-model")
    replayed = foreign.apply(service, elsewhere)
    assert replayed.slot("font_color").steps[0].combine == (("green", -1.0),)

    store.save(replace(value, amount=2.0))  # the same name replaces
    assert [v.amount for v in store.load() if v.name == "teal-ish"] == [2.0]
    store.remove("red centre")
    assert [v.name for v in store.load()] == ["teal-ish"]
    with pytest.raises(StudioError, match="saved values: teal-ish"):
        store.get("nope")
    with pytest.raises(StudioError, match="not a usable name"):
        capture(service, mined, "font_color", "")
    store.path.write_text("{broken")
    with pytest.raises(StudioError, match="not a readable mined-values file"):
        store.load()
    store.path.write_text(json.dumps({"kind": "attribute-studio-mined-values", "values": [{"name": "x"}]}))
    with pytest.raises(StudioError, match="damaged"):
        store.load()


def test_cli_value_mining(service: ModelService, tiny_gzs_run: Path, tmp_path: Path, capsys) -> None:
    from studio.cli.main import main

    values = tmp_path / "values.json"
    common = ["--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--values", str(values)]
    out = tmp_path / "mined.png"
    assert main(["compose", str(tiny_gzs_run), "--base", "5", "--direction", "font_color=blue+red-green@1.5",
                 "--save-value", "plum", "--out", str(out), *common]) == 0
    text = capsys.readouterr().out
    assert "font_color +1.5 along blue + red - green" in text and "saved    plum" in text
    want = service.compose(mine(service, Composition({}, ItemSource(5)), "font_color",
                                (("blue", 1.0), ("red", 1.0), ("green", -1.0)), 1.5)).image
    assert np.array_equal(np.asarray(Image.open(out)), want)

    assert main(["compose", str(tiny_gzs_run), "--list-values", *common]) == 0
    assert "plum: slot font_color, +1.50 along blue + red - green" in capsys.readouterr().out
    assert main(["compose", str(tiny_gzs_run), "--base", "100", "--use-value", "plum", "--out", str(out),
                 *common]) == 0
    stored = MinedValueStore(values).get("plum")
    want = service.compose(Composition({"font_color": SlotValue(a=stored.source())}, ItemSource(100))).image
    assert np.array_equal(np.asarray(Image.open(out)), want)

    assert main(["compose", str(tiny_gzs_run), "--base", "5", "--centre", "font_color=blue", "--out", str(out),
                 *common]) == 0
    centre = service.directions("font_color").centre("blue")
    assert np.allclose(service.compose(service.jump_to_centre(Composition({}, ItemSource(5)), "font_color",
                                                              "blue")).latents["font_color"], centre)
    capsys.readouterr()
    for args, why in ((["--save-value", "x"], "saves one slot's value"),
                      (["--direction", "font_color=blue@far"], "is not a number"),
                      (["--direction", "font_color"], "expected SLOT=RECIPE"),
                      (["--direction", "font_color=blue+purple"], "known values"),
                      (["--use-value", "nope"], "no mined value named 'nope'")):
        assert main(["compose", str(tiny_gzs_run), *args, "--out", str(out), *common]) == 2, args
        assert why in capsys.readouterr().err
