"""The trainer: run directory, checkpoint round trip, exact resume, stop/pause, fine-tuning, and `studio train`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.cli.main import main
from studio.data.spec import open_dataset
from studio.data.splits import ZeroShotSplit
from studio.errors import StudioError
from studio.training.data import TrainingData
from studio.training.model_io import load_model
from studio.training.trainer import ProgressEvent, Trainer, TrainerCallbacks, TrainSettings, tile_grid

DATASET = "fonts:tiny,res=32"
TINY = {"width": 8, "hidden": 32, "lr": 1e-3}



def settings(out: Path, steps: int, **kw) -> TrainSettings:
    base = {"method": "gzs", "dataset": DATASET, "out": out, "steps": steps, "batch": 2, "device": "cpu",
            "checkpoint_every": 0, "sample_every": 0, "log_every": 1, "method_options": dict(TINY)}
    return TrainSettings(**{**base, **kw})


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path).method.state_dict()


def test_run_directory_layout_and_checkpoint_round_trip(tmp_path):
    samples: list[tuple[int, np.ndarray, Path]] = []
    checkpoints: list[int] = []
    trainer = Trainer(settings(tmp_path / "run", 4, checkpoint_every=2, sample_every=2, keep_checkpoints=1),
                      TrainerCallbacks(on_sample=lambda s, g, p: samples.append((s, g, p)),
                                       on_checkpoint=lambda s, p: checkpoints.append(s)))
    result = trainer.run()
    run = tmp_path / "run"
    assert result.step == 4 and not result.stopped and result.checkpoint == run / "checkpoints/last.safetensors"
    assert set(result.losses) >= {"loss", "reconstruction", "swap", "composite", "cycle", "grad_norm"}
    assert checkpoints == [2, 4]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "last.json", "last.safetensors", "step-00000004.json", "step-00000004.safetensors"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4] and "swap" in lines[0]["losses"]
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "gzs" and config["config"]["width"] == 8
    assert [s for s, _, _ in samples] == [2, 4]
    png = np.asarray(Image.open(run / "samples/step-00000004.png"))
    assert png.shape == samples[-1][1].shape and png.shape[1] > png.shape[0]

    loaded = load_model(result.checkpoint)
    meta = loaded.meta
    assert meta["step"] == 4 and meta["dataset"]["spec"] == DATASET and meta["split"]["test_fraction"] == 0.25
    assert meta["settings"]["method"] == "gzs" and "loss" in meta["metrics"]
    assert [s.name for s in loaded.method.slots] == ["letter", "size", "font_color", "background_color", "font"]
    model = trainer.method.eval()
    dataset = open_dataset(DATASET)
    x = TrainingData(dataset, ZeroShotSplit.make(dataset.codes)).images(np.arange(5))
    with torch.no_grad():
        torch.testing.assert_close(loaded.method.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)


@pytest.mark.parametrize("lr_decay", ["none", "cosine"])
def test_resume_is_exact(tmp_path, lr_decay):
    Trainer(settings(tmp_path / "straight", 6, checkpoint_every=3, lr_decay=lr_decay)).run()
    # The first part is told the whole run's length (so a schedule follows the same curve) and stopped at 3.
    interrupted = Trainer(settings(tmp_path / "split", 6, lr_decay=lr_decay))
    interrupted.callbacks.on_progress = lambda event: event.step == 3 and interrupted.request_stop()
    first = interrupted.run()
    assert first.step == 3 and first.stopped
    second = Trainer(settings(tmp_path / "split", 6, resume=True, lr_decay=lr_decay)).run()
    assert second.step == 6
    straight = weights(tmp_path / "straight")
    resumed = weights(tmp_path / "split")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    steps = [json.loads(line)["step"] for line in (tmp_path / "split/metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_keeps_the_runs_schedule_and_refuses_another(tmp_path):
    """`--resume` without --lr-decay goes on along the run's own curve; naming a different one is refused."""
    Trainer(settings(tmp_path / "straight", 4, lr_decay="cosine")).run()
    interrupted = Trainer(settings(tmp_path / "split", 4, lr_decay="cosine"))
    interrupted.callbacks.on_progress = lambda event: event.step == 2 and interrupted.request_stop()
    interrupted.run()
    with pytest.raises(StudioError, match="keeps the run's learning-rate schedule"):
        Trainer(settings(tmp_path / "split", 4, resume=True, lr_decay="linear")).run()
    resumed = Trainer(settings(tmp_path / "split", 4, resume=True))
    resumed.run()
    assert resumed.settings.lr_decay == "cosine"
    straight = weights(tmp_path / "straight")
    for name, value in weights(tmp_path / "split").items():
        assert torch.equal(straight[name], value), name
    assert json.loads((tmp_path / "split/config.json").read_text())["settings"]["lr_decay"] == "cosine"


def test_resume_after_a_kill_drops_log_lines_past_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    Trainer(settings(run, 2)).run()
    with open(run / "metrics.jsonl", "a") as f:  # what a run killed at step 3 would have left behind
        f.write(json.dumps({"step": 3, "losses": {"loss": 9.0}}) + "\n")
    Trainer(settings(run, 4, resume=True)).run()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert records[2]["losses"]["loss"] != 9.0


def test_stop_request_saves_and_returns(tmp_path):
    events: list[ProgressEvent] = []
    trainer: Trainer

    def on_progress(event: ProgressEvent) -> None:
        events.append(event)
        if event.step == 2:
            trainer.request_stop()

    trainer = Trainer(settings(tmp_path / "run", 50), TrainerCallbacks(on_progress=on_progress))
    result = trainer.run()
    assert result.stopped and result.step == 2 and trainer.stop_requested
    assert load_model(result.checkpoint).step == 2
    assert events[-1].total == 50 and events[-1].steps_per_s > 0 and events[-1].eta_s > 0


def test_pause_waits_until_resumed(tmp_path):
    trainer: Trainer
    seen_paused = threading.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.step == 1:
            trainer.pause()

            def resume_when_paused() -> None:
                while not trainer.paused:
                    threading.Event().wait(0.01)
                seen_paused.set()
                trainer.resume()

            threading.Thread(target=resume_when_paused).start()

    trainer = Trainer(settings(tmp_path / "run", 3), TrainerCallbacks(on_progress=on_progress))
    result = trainer.run()
    assert seen_paused.is_set() and result.step == 3 and not result.stopped and not trainer.paused


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path):
    Trainer(settings(tmp_path / "run", 1)).run()
    with pytest.raises(StudioError, match="already holds a run"):
        Trainer(settings(tmp_path / "run", 2)).run()
    with pytest.raises(StudioError, match="no checkpoint to continue"):
        Trainer(settings(tmp_path / "empty", 2, resume=True)).run()
    with pytest.raises(StudioError, match="width"):
        Trainer(settings(tmp_path / "run", 2, resume=True, method_options={"width": 16})).run()


def test_unknown_or_bad_method_options_are_named(tmp_path):
    with pytest.raises(StudioError, match=r"no option.*colour"):
        Trainer(settings(tmp_path / "a", 1, method_options={"colour": 1})).run()
    with pytest.raises(StudioError, match="norm"):
        Trainer(settings(tmp_path / "b", 1, method_options={"norm": "layer"})).run()
    with pytest.raises(StudioError, match="latent_sizes"):
        Trainer(settings(tmp_path / "c", 1, method_options={**TINY, "latent_sizes": "3,3"})).run()


def test_init_from_starts_with_the_source_weights(tmp_path):
    source = Trainer(settings(tmp_path / "source", 2)).run()
    tuned = Trainer(settings(tmp_path / "tuned", 0, init_from=str(source.checkpoint),
                             method_options={"lr": 5e-4})).run()
    assert tuned.step == 0
    loaded = load_model(tuned.checkpoint)
    assert loaded.method.config.lr == 5e-4 and loaded.method.config.width == 8
    for name, value in weights(source.checkpoint).items():
        assert torch.equal(value, loaded.method.state_dict()[name]), name


def test_init_from_carries_label_heads_only_where_they_fit(tmp_path):
    """GZS-Net's chunk label heads are a training aid: fine-tuning may add or drop them, the network carries over."""
    labelled = Trainer(settings(tmp_path / "labelled", 2, method_options={**TINY, "weight_labels": 1.0})).run()
    assert any(k.startswith("label_heads.") for k in weights(labelled.checkpoint))
    plain = Trainer(settings(tmp_path / "plain", 0, init_from=str(labelled.checkpoint),
                             method_options={"weight_labels": 0.0})).run()
    plain_weights = weights(plain.checkpoint)
    assert not any(k.startswith("label_heads.") for k in plain_weights)
    for name, value in plain_weights.items():
        assert torch.equal(value, weights(labelled.checkpoint)[name]), name
    again = Trainer(settings(tmp_path / "again", 0, init_from=str(plain.checkpoint),
                             method_options={**TINY, "weight_labels": 1.0})).run()
    assert any(k.startswith("label_heads.") for k in weights(again.checkpoint))
    assert torch.equal(weights(again.checkpoint)["encoder.head.3.weight"], plain_weights["encoder.head.3.weight"])


def test_cli_trains_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--method", "gzs", "--dataset", DATASET, "--out", str(out), "--batch", "2",
              "--device", "cpu", "--width", "8", "--hidden", "32", "--latent-sizes", "4,4,4,4,4"]
    assert main([*common, "--steps", "3"]) == 0
    assert load_model(out).step == 3 and load_model(out).method.slots[0].shape == (4,)
    assert main([*common, "--steps", "4", "--resume"]) == 0
    assert load_model(out).step == 4
    assert main([*common, "--steps", "5"]) == 2  # no --resume on an existing run: a message, not a traceback
    assert "already holds a run" in capsys.readouterr().err


def test_cli_help_lists_the_method_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--method", "gzs", "--help"])
    text = capsys.readouterr().out
    assert "--weight-cycle" in text and "--latent-sizes" in text and "(default: 100)" in text


def test_cli_rejects_a_bad_option_value(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", DATASET, "--out", str(tmp_path), "--norm", "layer"])
    assert exit_info.value.code == 2
    assert "--norm" in capsys.readouterr().err


def test_tile_grid_layouts():
    flat = torch.zeros(16, 3, 4, 4)
    assert tile_grid(flat, pad=1).shape == (2 * 5 + 1, 8 * 5 + 1, 3)
    assert tile_grid(torch.zeros(5, 3, 4, 4), pad=0).shape == (8, 12, 3)
    assert tile_grid(torch.zeros(2, 3, 3, 4, 4), pad=0).shape == (8, 12, 3)


def test_thread_policy_fixed_auto_and_bad_values():
    from studio.cli.train import ThreadPolicy

    before = torch.get_num_threads()
    try:
        ThreadPolicy("1")
        assert torch.get_num_threads() == 1
        policy = ThreadPolicy("auto", every=10)
        assert 1 <= torch.get_num_threads() <= policy.cores
        with pytest.raises(StudioError, match="--threads"):
            ThreadPolicy("many")
        with pytest.raises(StudioError, match="at least 1"):
            ThreadPolicy("0")
    finally:
        torch.set_num_threads(before)


def test_learning_rate_schedules_end_at_zero_and_scale_every_group():
    from studio.training.trainer import lr_factor, set_learning_rates

    assert [lr_factor("none", s, 10) for s in (0, 5, 10)] == [1.0, 1.0, 1.0]
    assert [lr_factor("linear", s, 10) for s in (0, 5, 10)] == [1.0, 0.5, 0.0]
    assert lr_factor("cosine", 0, 10) == 1.0 and lr_factor("cosine", 10, 10) == pytest.approx(0.0)
    assert lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    with pytest.raises(StudioError, match="lr-decay"):
        lr_factor("step", 1, 10)
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 1e-2}])
    set_learning_rates({"model": optimizer}, 0.5)
    set_learning_rates({"model": optimizer}, 0.25)  # from the initial rates, not compounded
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([2.5e-4, 2.5e-3])


def test_a_decayed_run_trains_differently_from_a_constant_one(tmp_path):
    Trainer(settings(tmp_path / "constant", 4)).run()
    Trainer(settings(tmp_path / "cosine", 4, lr_decay="cosine")).run()
    constant, cosine = weights(tmp_path / "constant"), weights(tmp_path / "cosine")
    assert any(not torch.equal(constant[k], cosine[k]) for k in constant)


def test_divergence_check_tells_skipped_fp16_steps_from_divergence() -> None:
    from studio.training.trainer import diverged

    finite = {"loss": 0.5, "grad_norm": 1.0}
    overflow = {"loss": 0.5, "grad_norm": float("inf")}
    assert not diverged(finite, skips_overflow=False)
    assert not diverged(overflow, skips_overflow=True)     # the GradScaler skipped this step
    assert diverged(overflow, skips_overflow=False)        # bf16/fp32: an inf gradient is real trouble
    assert diverged({"loss": float("nan"), "grad_norm": 1.0}, skips_overflow=True)


def test_time_limit_stops_saves_and_resume_continues(tmp_path):
    """``--minutes`` ends the loop at the deadline with a checkpoint; the same run resumes from it."""
    run = tmp_path / "run"
    first = Trainer(settings(run, 100_000, minutes=0.03)).run()     # about 2 s of training
    assert first.stopped and 0 < first.step < 100_000
    assert load_model(first.checkpoint).step == first.step
    second = Trainer(settings(run, first.step + 3, resume=True)).run()
    assert not second.stopped and second.step == first.step + 3


def test_a_budgeted_run_ends_when_its_time_is_spent_with_the_schedule_at_its_end(tmp_path):
    """``budget_minutes`` counts training time over resumes, ends the run as finished, and drives the schedule."""
    run = tmp_path / "run"
    first = Trainer(settings(run, 100_000, budget_minutes=0.04, minutes=0.01, lr_decay="cosine")).run()
    assert first.stopped and first.step > 0  # --minutes (this invocation) came first

    def last_lr(loaded) -> float:
        optimizers = loaded.method.make_optimizers()
        loaded.restore_training_state(optimizers)
        return optimizers["model"].param_groups[0]["lr"]

    stopped = load_model(first.checkpoint)
    spent, lr_at_stop = stopped.meta["trained_seconds"], last_lr(stopped)
    assert 0.6 <= spent < 2.4
    assert lr_at_stop < 1e-3  # the cosine runs over the budget's time, not over the 100,000 steps
    second = Trainer(settings(run, 100_000, resume=True)).run()
    assert not second.stopped and first.step < second.step < 100_000
    loaded = load_model(second.checkpoint)
    assert loaded.meta["trained_seconds"] >= 2.4 and loaded.meta["settings"]["budget_minutes"] == 0.04
    assert last_lr(loaded) < lr_at_stop  # the resumed run went on down the same curve, from the time spent
    again = Trainer(settings(run, 100_000, resume=True)).run()
    assert not again.stopped and again.step == second.step  # nothing left to spend
    with pytest.raises(StudioError, match="budget"):
        Trainer(settings(run, 100_000, resume=True, budget_minutes=1.0)).run()


def test_the_schedule_follows_whichever_limit_is_nearer(tmp_path):
    """Steps that run out before a long budget still take the learning rate to zero by the last step."""
    by_steps = Trainer(settings(tmp_path / "steps", 4, lr_decay="linear")).run()
    budgeted = Trainer(settings(tmp_path / "budget", 4, lr_decay="linear", budget_minutes=600.0)).run()
    assert not budgeted.stopped and budgeted.step == 4
    a, b = weights(by_steps.checkpoint), weights(budgeted.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _cli_settings(tmp_path, *args: str):
    from studio.cli.main import build_parser
    from studio.cli.train import settings_from_args

    return settings_from_args(build_parser().parse_args(
        ["train", "--dataset", DATASET, "--out", str(tmp_path / "run"), *args]))


def test_cpu_recipe_fills_what_the_command_leaves_unset(tmp_path, capsys):
    from studio.methods.gzs import GZSNet

    recipe = GZSNet.recipes["cpu"]
    s = _cli_settings(tmp_path, "--device", "cpu")
    assert "recipe 'cpu'" in capsys.readouterr().err
    assert s.budget_minutes == recipe.settings["budget_minutes"] and s.lr_decay == "cosine" and s.batch == 4
    assert s.method_options == recipe.options
    s = _cli_settings(tmp_path, "--device", "cpu", "--batch", "16", "--width", "20", "--budget-minutes", "0")
    assert s.batch == 16 and s.budget_minutes == 0 and s.method_options["width"] == 20
    assert s.method_options["pixel_loss"] == "mse"
    plain = _cli_settings(tmp_path, "--device", "cpu", "--recipe", "none")
    assert plain.method_options == {} and plain.budget_minutes is None and plain.lr_decay is None
    tuned = _cli_settings(tmp_path, "--device", "cpu", "--init-from", "source.safetensors")  # keeps its network
    assert tuned.method_options == {} and tuned.budget_minutes is None
    deae = _cli_settings(tmp_path, "--method", "deae", "--device", "cpu")  # GZS-Net's recipe would drop its terms
    assert deae.method_options == {} and deae.budget_minutes is None
    with pytest.raises(StudioError, match="no such recipe"):
        _cli_settings(tmp_path, "--recipe", "fast")


def test_every_recipe_names_real_settings_and_valid_options(tmp_path):
    """A recipe is data that no type checks: each must name TrainSettings fields and options its method's config
    accepts, with values in range, and `--recipe auto` on the CPU must give LORD its own."""
    import dataclasses

    from studio.methods.config import config_fields, parse_value
    from studio.methods.registry import get_method, method_names

    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    for name in method_names():
        cls = get_method(name)
        options = {f.name: f for f in config_fields(cls.config_class)}
        for recipe_name, recipe in cls.recipes.items():
            assert set(recipe.settings) <= fields, f"{name}/{recipe_name}: {set(recipe.settings) - fields}"
            for key, value in recipe.options.items():
                text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
                assert parse_value(options[key], text) == value  # the CLI's own checks: type, choices, range
    lord = _cli_settings(tmp_path, "--method", "lord", "--device", "cpu")
    assert lord.method_options == get_method("lord").recipes["cpu"].options and lord.steps == 2200


def test_cli_resume_keeps_the_runs_steps_and_batch_and_takes_no_recipe(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--dataset", DATASET, "--out", str(out), "--device", "cpu", "--width", "8", "--hidden", "32"]
    assert main([*common, "--recipe", "none", "--steps", "3", "--batch", "3"]) == 0
    resumed = _cli_settings(tmp_path, "--device", "cpu", "--resume")
    assert (resumed.steps, resumed.batch, resumed.method_options) == (3, 3, {})
    assert "recipe" not in capsys.readouterr().err.split("training gzs")[-1]
    assert _cli_settings(tmp_path, "--device", "cpu", "--resume", "--steps", "5").steps == 5
