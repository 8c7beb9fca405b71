"""Checkpoints survive crashes: one file each, old two-file ones still load, a training process killed (SIGKILL) at
many points, mid-write included, leaves only loadable checkpoints and resumes to exactly the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli.main import main
from studio.errors import CheckpointError
from studio.training.checkpoint import META_KEY, read_checkpoint_meta, read_header, sidecar
from studio.training.model_io import load_model
from studio.training.run_directory import RunDirectory
from studio.training.trainer import Trainer, TrainSettings

DATASET = "fonts:tiny,res=16"
STEPS = 8
TRAIN_ARGS = ["train", "--method", "gzs", "--dataset", DATASET, "--steps", str(STEPS), "--batch", "2",
              "--device", "cpu", "--threads", "1", "--checkpoint-every", "1", "--sample-every", "3", "--log-every", "1",
              "--keep-checkpoints", "2", "--recipe", "none", "--width", "4", "--hidden", "16"]

#: Runs ``studio`` with a way to die: ``rename N`` SIGKILLs itself just before its N-th ``os.replace`` (config,
#: samples, the checkpoint, its JSON copy, ``last``), ``write N`` halfway through writing its N-th checkpoint
#: (the temporary file cut to half its bytes), ``none`` trains until killed from outside.
CHILD = """
import os, signal, sys
mode, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
calls = [0]
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "rename":
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        calls[0] += 1
        if calls[0] == n:
            die()
        return real_replace(src, dst, *a, **k)
    os.replace = replace
elif mode == "write":
    import safetensors.torch as st
    real_save = st.save_file
    def save_file(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        calls[0] += 1
        if calls[0] == n:
            os.truncate(filename, os.path.getsize(filename) // 2)
            die()
    st.save_file = save_file
from studio.cli.main import main
sys.exit(main(args))
"""


def _child(out: Path, mode: str, n: int = 0) -> subprocess.Popen:
    resume = ["--resume"] if RunDirectory(out).newest_checkpoint() is not None else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, str(n), *TRAIN_ARGS, "--out", str(out), *resume],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _logged_up_to(out: Path) -> int:
    try:
        lines = (out / "metrics.jsonl").read_text().splitlines()
        return max((json.loads(line)["step"] for line in lines if line.endswith("}")), default=0)
    except (OSError, ValueError):
        return 0


def _every_checkpoint_loads(out: Path) -> list[int]:
    steps = []
    for path in sorted((out / "checkpoints").glob("*.safetensors")):
        loaded = load_model(path)
        assert loaded.meta["step"] == loaded.step and META_KEY in read_header(path).metadata, path
        steps.append(loaded.step)
    return steps


def test_training_killed_at_many_points_leaves_loadable_checkpoints_and_resumes_exactly(tmp_path):
    assert main([*TRAIN_ARGS, "--out", str(tmp_path / "straight")]) == 0
    out = tmp_path / "killed"
    rng = np.random.default_rng(15)
    run = RunDirectory(out)
    # rename 3 (config, step 1's checkpoint, then its JSON copy): step 1's checkpoint is in place, ``last`` is not;
    # write 2: resumed from step 1, the checkpoint of step 3 is half on disk; rename 5 (resumed from step 2:
    # config, metrics trim, step 3's sample, its checkpoint, then the copy): ``last`` is still step 2's;
    # then a kill at a random moment.
    expected = {0: lambda: not run.last.exists() and run.numbered_checkpoints() == [run.checkpoint(1)],
                1: lambda: load_model(run.last).step == 2 and len(list(run.checkpoints.glob(".step-00000003*"))) == 1,
                2: lambda: load_model(run.last).step == 2 and run.checkpoint(3).exists()}
    for i, (mode, n) in enumerate([("rename", 3), ("write", 2), ("rename", 5), ("none", 0)]):
        start = read_checkpoint_meta(out)["step"] if RunDirectory(out).newest_checkpoint() else 0
        child = _child(out, mode, n)
        if mode == "none":  # once training runs (a step past the checkpoint is logged), SIGKILL it at random
            deadline = time.monotonic() + 120
            while child.poll() is None and time.monotonic() < deadline and _logged_up_to(out) <= start:
                time.sleep(0.02)
            time.sleep(float(rng.uniform(0.0, 1.5)))
            child.send_signal(signal.SIGKILL)
        code = child.wait(timeout=300)
        assert code in (-signal.SIGKILL, 0), child.stderr.read().decode()[-2000:]
        child.stderr.close()
        steps = _every_checkpoint_loads(out)
        assert steps, f"{mode} {n}: no checkpoint left"
        planned = expected.get(i, lambda: True)()
        assert planned, f"{mode} {n}: not killed where planned: {sorted(os.listdir(run.checkpoints))}"
    finished = _child(out, "none")
    assert finished.wait(timeout=300) == 0, finished.stderr.read().decode()[-2000:]
    finished.stderr.close()
    assert not list((out / "checkpoints").glob(".*.tmp")), "half-written files are cleaned up"
    straight, resumed = load_model(tmp_path / "straight").method.state_dict(), load_model(out).method.state_dict()
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert (straight[name] - resumed[name]).abs().max().item() == 0, name
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, STEPS + 1))


@pytest.mark.parametrize(("method", "options"), [
    ("deae", {"width": 4, "hidden": 16, "interpolation_draws": 2}),
    ("adversarial", {"encoder_width": 4, "decoder_width": 8, "residual_blocks": 1, "critic_width": 4,
                     "critic_layers": 2}),
    ("gzs", {"width": 4, "hidden": 16, "decoder": "layered", "norm": "batch", "weight_labels": 1.0,
             "weight_confusion": 1.0, "weight_foreground": 2.0, "swap_pairs": 1}),
])
def test_resume_is_exact(tmp_path, method, options):
    """GZS-Net's paper network (test_trainer), LORD (test_lord) and mixing (test_mixing) have theirs; these are
    the other two, and GZS-Net with the CPU recipe's training aids (label heads, chunk critics, batch norm)."""
    def settings(out: Path, **kw) -> TrainSettings:
        return TrainSettings(method=method, dataset=DATASET, out=out, steps=4, batch=2, device="cpu", seed=3,
                             checkpoint_every=0, sample_every=0, log_every=1, method_options=dict(options), **kw)

    Trainer(settings(tmp_path / "straight")).run()
    first = Trainer(settings(tmp_path / "split"))
    first.callbacks.on_progress = lambda event: event.step == 2 and first.request_stop()
    assert first.run().step == 2
    assert Trainer(settings(tmp_path / "split", resume=True)).run().step == 4
    straight, resumed = load_model(tmp_path / "straight").method.state_dict(), load_model(tmp_path / "split").method
    for name, value in resumed.state_dict().items():
        assert (straight[name] - value).abs().max().item() == 0, name


def test_a_checkpoint_is_one_file_its_json_a_copy_and_old_two_file_checkpoints_still_load(tmp_path):
    Trainer(TrainSettings(method="gzs", dataset=DATASET, out=tmp_path / "run", steps=2, batch=2, device="cpu",
                          checkpoint_every=1, sample_every=0, log_every=1,
                          method_options={"width": 4, "hidden": 16})).run()
    run = RunDirectory(tmp_path / "run")
    assert run.last.samefile(run.checkpoint(2)) and run.step_of(run.checkpoint(2)) == 2
    meta = read_checkpoint_meta(run.root)
    assert meta["step"] == 2 and meta["method"] == "gzs" and json.loads(sidecar(run.last).read_text()) == meta
    sidecar(run.last).write_text("{}")  # the readable copy is for people: a stale or damaged one changes nothing
    assert load_model(run.root).step == 2

    # the format before this one: the description only in a JSON sidecar (as the shipped models still are)
    from safetensors.torch import load_file, save_file

    legacy = tmp_path / "legacy" / "model.safetensors"
    legacy.parent.mkdir()
    save_file(load_file(str(run.last)), str(legacy), metadata={"format": "attribute-studio", "version": "1"})
    with pytest.raises(CheckpointError, match="no JSON sidecar"):
        load_model(legacy)
    sidecar(legacy).write_text(json.dumps({**meta, "format_version": 1}))
    old = load_model(legacy)
    for name, value in load_model(run.root).method.state_dict().items():
        assert torch.equal(old.method.state_dict()[name], value), name
    assert load_model(Path(__file__).parent.parent / "models" / "fonts-gzs").method.name == "gzs"
