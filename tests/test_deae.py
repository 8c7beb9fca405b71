"""DEAE (paper 003): GZS-Net plus the interpolation regulariser; its evaluation, the augment command, and that a
checkpoint loads, evaluates and composes through the service."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.data.splits import ZeroShotSplit
from studio.methods.base import MethodContext
from studio.methods.config import config_fields
from studio.methods.deae import DEAE, DEAEConfig
from studio.methods.gzs import GZSConfig, GZSNet
from studio.methods.registry import get_method
from studio.training.data import TrainingData
from studio.training.model_io import load_model
from studio.training.trainer import Trainer, TrainSettings

TINY = {"width": 8, "hidden": 32}
SPEC = "fonts:tiny,res=32"



@pytest.fixture(scope="module")
def data(tiny_fonts) -> TrainingData:
    return TrainingData(tiny_fonts, ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0))


def make_model(data: TrainingData, **options) -> DEAE:
    torch.manual_seed(0)
    return DEAE(DEAEConfig(**{**TINY, **options}), MethodContext(data.schema, data.resolution,
                                                                 len(data.train_indices)))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deae") / "run"
    Trainer(TrainSettings(method="deae", dataset=SPEC, out=out, steps=12, batch=4, device="cpu",
                          checkpoint_every=0, sample_every=6, log_every=4, amp=False,
                          method_options={**TINY, "interpolation_draws": 4})).run()
    return out


def test_registered_with_every_gzs_option_plus_its_own():
    assert get_method("deae") is DEAE
    names = {f.name for f in config_fields(DEAEConfig)}
    assert {f.name for f in config_fields(GZSConfig)} < names
    assert {"weight_interpolation", "interpolation_draws", "interpolation_distance"} <= names


def test_interpolation_moves_one_chunk_between_the_two_sources_only(data):
    model = make_model(data)
    base, donor = torch.randn(3, model.latent_dim), torch.randn(3, model.latent_dim)
    attribute = torch.tensor([0, 2, 4])
    mix = torch.rand(3, model.latent_dim)
    out = model.interpolate(base, donor, attribute, mix)
    for row, k in enumerate(attribute.tolist()):
        inside = model.chunk_mask[k]
        assert torch.equal(out[row, ~inside], base[row, ~inside])
        low = torch.minimum(base[row, inside], donor[row, inside])
        high = torch.maximum(base[row, inside], donor[row, inside])
        assert (out[row, inside] >= low - 1e-6).all() and (out[row, inside] <= high + 1e-6).all()
        assert not torch.equal(out[row, inside], base[row, inside])


def test_losses_are_gzs_losses_plus_the_weighted_regulariser(data):
    model = make_model(data, weight_interpolation=0.5, interpolation_draws=6)
    twin = GZSNet(GZSConfig(**TINY), model.context)
    twin.load_state_dict(model.state_dict())
    batch = model.sample_batch(data, np.random.default_rng(3), 3)
    assert batch["interp_mix"].shape == (6, model.latent_dim)
    ours, theirs = model.compute_losses(batch), twin.compute_losses(batch)
    for term in ("reconstruction", "swap", "composite", "cycle"):
        assert torch.allclose(ours[term], theirs[term], atol=1e-6), term
    assert ours["interpolation"] > 0
    assert torch.allclose(ours["loss"], theirs["loss"] + 0.5 * ours["interpolation"], atol=1e-5)
    off = make_model(data, weight_interpolation=0.0)
    assert "interpolation" not in off.compute_losses(batch)


def _relative_deviation(model: DEAE, data: TrainingData, a: np.ndarray, b: np.ndarray) -> float:
    """Re-encoded untouched chunks' squared drift after moving one chunk halfway, over the items' spread."""
    model.eval()
    with torch.no_grad():
        za, zb = model.encoder(data.images(a)), model.encoder(data.images(b))
        ratios = []
        for k in range(model.num_attributes):
            kept = ~model.chunk_mask[k]
            again = model.encoder(model.decoder(torch.where(model.chunk_mask[k], (za + zb) / 2, za)))
            ratios.append(float((again - za)[:, kept].pow(2).sum() / (za - zb)[:, kept].pow(2).sum()))
    return float(np.mean(ratios))


def test_the_regulariser_keeps_other_chunks_in_place_better_than_gzs():
    """Same start, same batches: with the regulariser the untouched chunks drift less (measured at 16 px after
    40 steps: about 0.47 vs 0.88 of the items' spread; at 32 px after 100 steps, 0.43 vs 1.05)."""
    from studio.data.spec import open_dataset
    from studio.methods.base import StepContext

    small = open_dataset("fonts:tiny,res=16")
    data = TrainingData(small, ZeroShotSplit.make(small.codes, 0.25, 0))
    rng = np.random.default_rng(1)
    a, b = rng.choice(data.test_indices, 60), rng.choice(data.test_indices, 60)
    figures = {}
    for weight in (0.0, 1.0):
        model = make_model(data, weight_interpolation=weight)
        optimizers = model.make_optimizers()
        ctx = StepContext(torch.device("cpu"))
        batches = np.random.default_rng(0)
        for step in range(40):
            model.training_step(model.sample_batch(data, batches, 4), optimizers, step, ctx)
        figures[weight] = _relative_deviation(model, data, a, b)
    assert figures[1.0] < 0.8 * figures[0.0], figures


def test_tiny_run_loads_evaluates_and_composes(tiny_run: Path, tmp_path: Path, monkeypatch):
    from studio.evaluation.deae_eval import interpolation_quality
    from studio.evaluation.suite import make_context
    from studio.service.composition import Composition, ItemSource, SlotValue
    from studio.service.model_service import ModelService

    loaded = load_model(tiny_run)
    assert loaded.method.name == "deae" and loaded.step == 12
    assert "interpolation" in (tiny_run / "metrics.jsonl").read_text()
    assert (tiny_run / "samples" / "step-00000006.png").exists()

    ctx = make_context(tiny_run, device="cpu", max_items=40)
    result = interpolation_quality(ctx, use_classifier=False)
    assert [r["attribute"] for r in result["per_slot"]] == ctx.dataset.schema.names
    assert all(r["deviation"] >= 0 and np.isfinite(r["deviation"]) for r in result["per_slot"])
    assert result["n_pairs"] == 40

    service = ModelService(device="cpu", cache_dir=tmp_path / "svc")
    try:
        info = service.load_checkpoint(tiny_run)
        assert info.method == "deae" and info.slot_names == ctx.dataset.schema.names
        comp = Composition({"letter": SlotValue(ItemSource(3), ItemSource(200), t=0.5)}, base=ItemSource(40))
        image = service.compose(comp).image
        assert image.shape == (32, 32, 3)
    finally:
        service.shutdown()


def test_attribute_classifier_learns_colours(tiny_fonts, data):
    from studio.evaluation.deae_eval import train_classifier
    from studio.training.data import to_tensor

    train, test = data.train_indices, data.test_indices
    model = train_classifier(tiny_fonts.images(train), tiny_fonts.codes[train], tiny_fonts.schema.cardinalities,
                             steps=40, batch=48, width=16)
    predicted = model.predict(to_tensor(tiny_fonts.images(test)))
    accuracy = (predicted == torch.from_numpy(tiny_fonts.codes[test].astype(np.int64))).float().mean(dim=0)
    background = tiny_fonts.schema.position("background_color")
    assert accuracy[background] > 0.9  # three flat colours: trivial for a working classifier, 1/3 by chance


@pytest.mark.parametrize("mode", ["new", "interpolate"])
def test_augment_writes_a_folder_dataset(tiny_run: Path, tmp_path: Path, mode: str, monkeypatch):
    from studio.cli.main import main
    from studio.data.spec import open_dataset

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / f"aug-{mode}"
    extra = ["--attributes", "background_color"] if mode == "interpolate" else []
    assert main(["augment", str(tiny_run), str(out), "--count", "6", "--mode", mode, "--device", "cpu",
                 "--cache-dir", str(tmp_path / "svc"), *extra]) == 0
    rows = list(csv.DictReader((out / "attributes.csv").open()))
    assert len(rows) == 6 and list(rows[0]) == ["file", "letter", "size", "font_color", "background_color", "font"]
    folder = open_dataset(str(out))
    assert len(folder) == 6 and folder.resolution == 32
    if mode == "interpolate":
        assert all("~" in r["background_color"] for r in rows)
        assert all("~" not in r["letter"] for r in rows)
    else:
        tiny = open_dataset(SPEC)
        train = ZeroShotSplit.make(tiny.codes, 0.25, 0).train
        seen = {tuple(tiny.values(int(i)).values()) for i in train}
        assert all(tuple(r[a] for a in tiny.schema.names) not in seen for r in rows)
    assert main(["augment", str(tiny_run), str(out), "--count", "2", "--device", "cpu"]) == 2  # not empty


def test_checkpoint_sidecar_names_the_method_and_its_options(tiny_run: Path):
    loaded = load_model(tiny_run)
    assert loaded.meta["method"] == "deae"
    assert loaded.meta["config"]["interpolation_draws"] == 4
    assert loaded.meta["config"]["interpolation_distance"] == "l1"


def test_studio_eval_reports_interpolation_with_a_cached_classifier(tiny_run: Path, tmp_path: Path, monkeypatch,
                                                                     capsys):
    import studio.evaluation.judge as judge
    from studio.cli.main import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(judge, "DEFAULT_STEPS", 20)
    assert main(["eval", str(tiny_run), "--only", "interpolation", "--max-items", "30", "--device", "cpu"]) == 0
    report = capsys.readouterr().out
    assert "Interpolation quality" in report and "kept agree" in report and "background_color" in report
    cached = list((tmp_path / "cache").rglob("judge-*.safetensors"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert main(["eval", str(tiny_run), "--only", "interpolation", "--max-items", "30", "--device", "cpu"]) == 0
    again = capsys.readouterr().out
    assert cached[0].stat().st_mtime_ns == stamp  # the classifier was reused, not trained again

    def table(text: str) -> str:  # the section without its timing line
        return text.split("== ")[-1].split("\n", 1)[1]

    assert table(again) == table(report)
