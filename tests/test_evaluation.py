"""``studio eval`` on a real tiny GZS-Net: zero-shot synthesis, co-prediction, reconstruction, the CLI and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli.main import main
from studio.evaluation import suite
from studio.evaluation.coprediction import probe_accuracy, slot_features, stack_features
from studio.evaluation.suite import EvalContext, make_context, run_evaluations
from studio.evaluation.zero_shot import _queries, _synthesize
from studio.training.checkpoint import load_tensors
from studio.training.model_io import build_method, save_checkpoint

EVALUATIONS = ["zero_shot", "coprediction", "reconstruction"]



@pytest.fixture(scope="module")
def untrained_checkpoint(tiny_gzs_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same network as the tiny run, freshly initialised, saved as a step-0 checkpoint for the same data."""
    _, meta = load_tensors(tiny_gzs_run / "checkpoints" / "last.safetensors")
    trained = make_context(tiny_gzs_run, device="cpu").method
    torch.manual_seed(0)
    fresh = build_method(trained.name, trained.config, trained.context)
    out = tmp_path_factory.mktemp("untrained") / "step-00000000"
    return save_checkpoint(out, fresh, step=0, meta={"dataset": meta["dataset"], "split": meta["split"]})


@pytest.fixture(scope="module")
def trained(tiny_gzs_run: Path) -> tuple[EvalContext, dict]:
    ctx = make_context(tiny_gzs_run, device="cpu")
    return ctx, run_evaluations(ctx)


def test_every_headline_field_is_present_and_finite(trained):
    ctx, results = trained
    assert set(EVALUATIONS) <= set(results)
    z = results["zero_shot"]
    for key in ("mse", "psnr", "ssim"):
        assert math.isfinite(z[key])
        for baseline in ("nearest", "mean"):
            assert math.isfinite(z["baselines"][baseline][key])
    assert z["n"] == len(ctx.split.test)  # fonts:tiny holds out fewer items than the cap
    assert z["pool"] == len(ctx.split.train) and not z["pool_subsampled"]
    c = results["coprediction"]
    assert set(c) >= {"attributes", "slots", "matrix", "chance", "diagonal", "off_diagonal_excess"}
    r = results["reconstruction"]
    assert math.isfinite(r["train_psnr"]) and math.isfinite(r["test_psnr"])
    assert r["n_train"] == len(ctx.split.train) and r["n_test"] == len(ctx.split.test)


def test_trained_model_beats_the_mean_image_and_the_untrained_model(trained, untrained_checkpoint):
    _, results = trained
    z = results["zero_shot"]
    untrained = run_evaluations(make_context(untrained_checkpoint, device="cpu"), ["zero_shot"])["zero_shot"]
    assert z["psnr"] > z["baselines"]["mean"]["psnr"]
    assert z["psnr"] > untrained["psnr"] + 1.0
    assert z["mse"] < untrained["mse"]
    assert z["ssim"] > untrained["ssim"]
    # Both runs are judged against the same targets and baselines.
    assert untrained["baselines"] == z["baselines"]
    # The oracle that peeks at the target is far better than the mean image.
    assert z["baselines"]["nearest"]["psnr"] > z["baselines"]["mean"]["psnr"] + 3


def test_coprediction_matrix_has_one_row_per_slot_and_one_column_per_attribute(trained):
    ctx, results = trained
    c = results["coprediction"]
    names = ctx.dataset.schema.names
    assert c["attributes"] == names
    assert c["slots"] == [s.name for s in ctx.method.slots]
    assert np.asarray(c["matrix"]).shape == (len(c["slots"]), len(names))
    assert ((np.asarray(c["matrix"]) >= 0) & (np.asarray(c["matrix"]) <= 1)).all()
    assert c["chance"] == pytest.approx([1 / k for k in ctx.dataset.schema.cardinalities])
    # GZS slots are named after their attributes: the diagonal is the matrix's diagonal.
    assert c["diagonal"] == pytest.approx(list(np.diag(np.asarray(c["matrix"]))))
    assert c["n_fit"] + c["n_score"] == len(ctx.split.train)  # 80:20 of the encoded training vectors (paper 000)
    assert all(how.startswith("vector") for how in c["features"].values())


def test_queries_use_training_items_that_show_the_wanted_values(trained):
    ctx, _ = trained
    codes = ctx.dataset.codes
    train = set(ctx.split.train.tolist())
    targets = ctx.split.test[:20]
    for target, query in zip(targets, _queries(ctx, targets)):
        assert sorted(query) == list(range(codes.shape[1]))
        for attribute, item in query.items():
            assert item in train
            assert codes[item, attribute] == codes[target, attribute]


def test_synthesis_takes_each_slot_from_the_item_covering_its_attribute(trained):
    ctx, _ = trained
    targets = ctx.split.test[:4]
    queries = _queries(ctx, targets)
    synthesized = _synthesize(ctx, queries)
    names = ctx.dataset.schema.names
    for k, query in enumerate(queries):
        latents = {s.name: ctx.encode([query[names.index(s.attribute)]])[s.name] for s in ctx.method.slots}
        with torch.no_grad():
            expected = ctx.method.decode(latents).clamp(-1, 1)
        assert torch.allclose(synthesized[k:k + 1], expected, atol=1e-5)


def test_cli_json_parses_and_repeats_the_library_figures(tiny_gzs_run, trained, capsys):
    _, results = trained
    assert main(["eval", str(tiny_gzs_run), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoint"]["method"] == "gzs"
    assert report["checkpoint"]["step"] == 60
    assert report["checkpoint"]["fingerprint_matches"] is True
    for name in EVALUATIONS:
        assert name in report
    assert report["zero_shot"]["psnr"] == pytest.approx(results["zero_shot"]["psnr"])
    assert report["coprediction"]["matrix"] == pytest.approx(np.asarray(results["coprediction"]["matrix"]))


def test_only_runs_the_named_evaluation_with_the_same_figures(tiny_gzs_run, trained, capsys):
    _, results = trained
    assert main(["eval", str(tiny_gzs_run), "--json", "--only", "reconstruction", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"checkpoint", "reconstruction"}
    assert report["reconstruction"]["test_psnr"] == pytest.approx(results["reconstruction"]["test_psnr"])


def test_text_report_shows_coprediction_as_a_table(trained):
    ctx, results = trained
    text = suite.format_report(suite.checkpoint_info(ctx), results)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("slot \\ attribute"))
    assert header.split()[3:] == ctx.dataset.schema.names
    for slot in ctx.method.slots:
        assert any(line.split()[0] == slot.name for line in lines if line.split())
    assert "nearest train image (oracle)" in text
    assert f"{results['zero_shot']['psnr']:.4f}" in text


def test_cli_text_output(tiny_gzs_run, capsys):
    assert main(["eval", str(tiny_gzs_run / "checkpoints" / "last.safetensors"), "--only", "reconstruction",
                 "--device", "cpu", "--max-items", "10"]) == 0
    out = capsys.readouterr().out
    assert "gzs, step 60" in out
    assert "train (10 items)" in out and "test (10 items)" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--only", "no_such_evaluation"], "unknown evaluation"),
    (["--dataset", "fonts:tiny,res=16"], "res=32"),
    (["--dataset", "shapes:tiny,res=32"], "trained on"),
    (["--max-items", "1"], "--max-items"),
])
def test_user_errors_are_messages_not_tracebacks(tiny_gzs_run, capsys, args, message):
    assert main(["eval", str(tiny_gzs_run), "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_checkpoint_is_reported(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing_here")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_a_new_evaluation_is_run_and_can_be_excluded_by_applies(trained):
    ctx, _ = trained

    @suite.evaluation("test_only_mean_latent", order=999)
    def mean_latent(c: EvalContext) -> dict:
        z = c.encode(c.subsample(c.split.test, 5))
        return {"norm": float(torch.cat(list(z.values()), dim=1).norm(dim=1).mean()), "items": 5}

    @suite.evaluation("test_only_never", applies=lambda m: False)
    def never(c: EvalContext) -> dict:
        raise AssertionError("must not run")

    try:
        result = run_evaluations(ctx, ["test_only_mean_latent"])["test_only_mean_latent"]
        assert result["items"] == 5 and result["norm"] > 0 and "seconds" in result
        with pytest.raises(suite.StudioError, match="do not apply"):
            run_evaluations(ctx, ["test_only_never"])
        assert "test_only_never" not in [e.name for e in suite.applicable(ctx.method)]
    finally:
        suite._REGISTRY.pop("test_only_mean_latent", None)
        suite._REGISTRY.pop("test_only_never", None)


def test_probes_find_information_where_it_is_and_not_elsewhere():
    # Slot 0 holds attribute 0 (one-hot plus noise); slot 1 is pure noise. Attribute 1 is in neither slot.
    g = torch.Generator().manual_seed(0)
    n = 400
    labels = torch.stack([torch.randint(0, 4, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)], dim=1)
    informative = torch.nn.functional.one_hot(labels[:, 0], 4).float() + 0.3 * torch.randn(n, 4, generator=g)
    noise = torch.randn(n, 6, generator=g)
    x = stack_features([informative, noise])
    half = n // 2
    acc = probe_accuracy(x[:, :half], labels[:half], x[:, half:], labels[half:], [4, 3])
    assert acc.shape == (2, 2)
    assert acc[0, 0] > 0.9
    assert acc[1, 0] < 0.5  # chance is 0.25
    assert acc[0, 1] < 0.55 and acc[1, 1] < 0.55  # chance is 0.33


def test_spatial_slots_are_flattened_or_pooled():
    small, how = slot_features(torch.randn(3, 4, 4, 4))
    assert small.shape == (3, 64) and how.startswith("flattened")
    big, how = slot_features(torch.randn(2, 128, 32, 32))
    assert big.shape[0] == 2 and big.shape[1] <= 4096 and "average-pooled" in how
    vec, how = slot_features(torch.randn(5, 20))
    assert vec.shape == (5, 20) and how == "vector (20)"
