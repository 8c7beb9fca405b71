"""The judge: a classifier of real training images that reads zero-shot syntheses, slot swaps and interpolation
end points, cached per dataset so it trains once."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli.main import main
from studio.evaluation import judge as judge_module
from studio.evaluation.judge import judge_cache_path, judge_items, load_or_train_judge, train_judge
from studio.evaluation.suite import make_context, run_evaluations
from studio.training.data import to_tensor


def test_judge_learns_real_attributes_it_was_never_shown_together(tiny_fonts):
    from studio.data.splits import ZeroShotSplit

    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0)
    model = train_judge(tiny_fonts.images(split.train), tiny_fonts.codes[split.train],
                        tiny_fonts.schema.cardinalities, steps=150, batch=48)
    predicted = model.predict(to_tensor(tiny_fonts.images(split.test)))
    accuracy = (predicted == torch.from_numpy(tiny_fonts.codes[split.test].astype(np.int64))).float().mean(dim=0)
    for name in ("background_color", "font_color"):  # three flat colours each: 1/3 by chance
        assert accuracy[tiny_fonts.schema.position(name)] > 0.9


def test_judge_is_cached_per_dataset_items_and_steps(tiny_fonts, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path))
    items = np.arange(0, len(tiny_fonts), 2)
    first, cached = load_or_train_judge(tiny_fonts, items, steps=3)
    assert not cached
    path = judge_cache_path(tiny_fonts, judge_items(items), 3)
    assert path.exists() and path.parent == tmp_path / "evaluation" and tiny_fonts.fingerprint in path.name
    again, cached = load_or_train_judge(tiny_fonts, items, steps=3)
    assert cached
    for (k, a), (_, b) in zip(first.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    assert judge_cache_path(tiny_fonts, judge_items(items), 4) != path
    assert judge_cache_path(tiny_fonts, judge_items(items[1:]), 3) != path
    path.write_bytes(b"not a safetensors file")  # a damaged entry is rebuilt, not an error
    _, cached = load_or_train_judge(tiny_fonts, items, steps=3)
    assert not cached


@pytest.fixture(scope="module")
def judged(tiny_gzs_run: Path):
    ctx = make_context(tiny_gzs_run, device="cpu")
    return ctx, run_evaluations(ctx, ["judge"])["judge"]


def test_judge_report_covers_every_synthesis_kind(judged):
    ctx, result = judged
    names = ctx.dataset.schema.names
    k = len(names)
    assert result["attributes"] == names and len(result["real_heldout"]) == k
    assert result["steps"] == judge_module.DEFAULT_STEPS
    assert result["n_real"] == len(ctx.split.test)
    zs = result["zero_shot"]
    for protocol in ("strict", "greedy"):
        assert len(zs[protocol]) == k and all(0.0 <= a <= 1.0 for a in zs[protocol])
        assert zs[f"{protocol}_mean"] == pytest.approx(np.mean(zs[protocol]))
    swap, interp = result["swap"], result["interpolation"]
    assert swap["attributes"] == names and interp["attributes"] == names  # GZS-Net: one slot per attribute
    for key in ("donor", "kept"):
        assert len(swap[key]) == k and all(0.0 <= a <= 1.0 for a in swap[key])
    for key in ("start", "end_moved", "end_kept", "mid_moved_valid", "mid_kept"):
        assert len(interp[key]) == k
    # the real images the judge never trained on: flat colours are easy to read
    background = names.index("background_color")
    assert result["real_heldout"][background] > 0.9
    json.dumps(result)  # plain JSON types


def test_interpolation_end_point_one_is_the_slot_swap(judged):
    _, result = judged
    assert result["interpolation"]["end_moved"] == pytest.approx(result["swap"]["donor"])
    assert result["interpolation"]["end_kept"] == pytest.approx(result["swap"]["kept"])


def test_cli_json_carries_the_judge_and_reuses_its_cache(tiny_gzs_run, judged, capsys):
    _, result = judged
    assert main(["eval", str(tiny_gzs_run), "--json", "--device", "cpu", "--only", "judge"]) == 0
    again = json.loads(capsys.readouterr().out)["judge"]
    assert again["cached"]
    assert again["zero_shot"]["strict"] == pytest.approx(result["zero_shot"]["strict"])
    assert again["swap"]["donor"] == pytest.approx(result["swap"]["donor"])
    assert main(["eval", str(tiny_gzs_run), "--device", "cpu", "--only", "judge", "--protocol", "greedy"]) == 0
    text = capsys.readouterr().out
    assert "zero-shot, greedy query" in text and "zero-shot, strict query" not in text
    assert "real held-out images" in text and "swap: moved reads donor" in text


def test_judge_steps_must_be_positive(tiny_gzs_run, capsys):
    assert main(["eval", str(tiny_gzs_run), "--device", "cpu", "--only", "judge", "--judge-steps", "0"]) != 0
    assert "--judge-steps must be at least 1" in capsys.readouterr().err


def test_default_steps_grow_with_the_values_to_read(monkeypatch):
    from studio.evaluation.judge import default_steps

    monkeypatch.setattr(judge_module, "DEFAULT_STEPS", 400)
    assert default_steps([10, 3, 5, 5, 10]) == 400  # fonts:small, the reference
    assert default_steps([4, 3, 3, 4, 4, 3, 3]) == 400  # shapes:small has fewer values: never fewer steps
    assert default_steps([52, 3, 10, 10, 22]) == 3500  # full Fonts: 400 x (97/33)^2, to the nearest 100
    assert default_steps([52, 3, 10, 10, 100]) == judge_module.MAX_DEFAULT_STEPS  # capped
    assert default_steps([66]) == 1600  # twice the reference: four times the steps
    monkeypatch.setattr(judge_module, "DEFAULT_STEPS", 60)  # what the suite runs with: the base scales too
    assert default_steps([10, 3, 5, 5, 10]) == 60 and default_steps([66]) == 200


def test_judge_learning_rate_holds_then_falls_to_its_floor():
    steps = 1000
    factors = [judge_module.learning_rate_factor(s, steps) for s in range(steps)]
    held = int(steps * (1 - judge_module.DECAY_FRACTION))
    assert factors[:held] == [1.0] * held
    assert all(a >= b for a, b in itertools.pairwise(factors))  # never rises again
    assert factors[-1] == pytest.approx(judge_module.FINAL_RATE)
    assert judge_module.FINAL_RATE < factors[held + 150] < 1.0
    assert judge_module.learning_rate_factor(0, 1) == 1.0  # a one-step judge still takes its step
