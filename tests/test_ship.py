"""`studio ship-model`: a run becomes a small fp16 model with a card that holds its evaluation."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from studio.cli.main import main
from studio.evaluation.judge import JUDGE_VERSION
from studio.training.model_io import load_model


def test_ship_model_writes_fp16_weights_and_a_card(tiny_gzs_run, tmp_path, capsys):
    out = tmp_path / "fonts-tiny-gzs"
    code = main(["ship-model", str(tiny_gzs_run), str(out), "--command", "studio train ...", "--max-items", "40",
                 "--note", "tiny test model"])
    assert code == 0
    weights = load_file(str(out / "model.safetensors"))
    assert not any(k.startswith("optim/") for k in weights)
    assert {v.dtype for k, v in weights.items() if k.startswith("model/") and v.is_floating_point()} == {torch.float16}
    card = json.loads((out / "card.json").read_text())
    assert card["method"] == "gzs" and card["training_command"] == "studio train ..."
    assert card["evaluation"]["zero_shot"]["psnr"] > 0
    assert "studio eval" in (out / "README.md").read_text()
    shipped = load_model(out / "model.safetensors")
    original = load_model(tiny_gzs_run)
    x = torch.zeros(1, 3, original.method.context.resolution, original.method.context.resolution)
    with torch.no_grad():
        a, b = original.method.reconstruct(x), shipped.method.reconstruct(x)
    assert (a - b).abs().max() < 0.05  # fp16 storage changes outputs only slightly


def test_ship_model_trains_the_judge_for_the_steps_asked(tiny_gzs_run, tmp_path, monkeypatch):
    """A set with many values needs a longer-trained judge; the card records the one it used."""
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "judged"
    assert main(["ship-model", str(tiny_gzs_run), str(out), "--max-items", "20", "--only", "judge",
                 "--judge-steps", "7"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["evaluation"]["judge"]["steps"] == 7
    assert list((tmp_path / "cache" / "evaluation").glob(f"{JUDGE_VERSION}-7-*.safetensors"))
