"""Data-parallel training: two CPU processes with gloo agree on the weights, shard the data, write one run
directory, resume exactly, stop together; and ``torchrun ... -m studio train`` works end to end.

The trainer runs in two processes started by ``torch.multiprocessing`` with the environment ``torchrun`` would
set, so each ``Trainer.run`` joins and leaves the process group the way it does under ``torchrun``; one test
launches the real ``torchrun`` on the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from studio.training import distributed
from studio.training.model_io import load_model
from studio.training.trainer import Trainer, TrainerCallbacks, TrainSettings

DATASET = "fonts:tiny,res=32"
GZS = {"width": 8, "hidden": 32, "lr": 1e-3}
ADVERSARIAL = {"encoder_width": 4, "decoder_width": 16, "residual_blocks": 1, "critic_width": 4, "critic_layers": 2}


def settings(out: Path, steps: int, **kw: Any) -> TrainSettings:
    base = {"method": "gzs", "dataset": DATASET, "out": out, "steps": steps, "batch": 2, "device": "cpu",
            "checkpoint_every": 0, "sample_every": 0, "log_every": 1, "method_options": dict(GZS)}
    return TrainSettings(**{**base, **kw})


def free_ports(count: int) -> list[int]:
    """Distinct free ports (all held open until every one is chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _worker(rank: int, ports: list[int], root: str) -> None:
    """One training process: the torchrun environment, then every scenario in turn. Each run joins and leaves
    the process group; each gets its own port, since a rank that leaves first could otherwise join the next run
    through the previous run's store before rank 0 has closed it."""
    os.environ.update({"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2",
                       "MASTER_ADDR": "127.0.0.1"})
    torch.set_num_threads(1)
    base = Path(root)
    logs: list[str] = []
    report: dict[str, Any] = {}

    def train(name: str, s: TrainSettings, stop_first: bool = False) -> None:
        os.environ["MASTER_PORT"] = str(ports[len(report)])
        trainer = Trainer(s, TrainerCallbacks(on_log=logs.append))
        if stop_first:
            trainer.request_stop()
        result = trainer.run()
        assert trainer.method is not None
        report[name] = {"step": result.step, "stopped": result.stopped,
                        "digest": distributed.weights_digest(trainer.method)}

    train("straight", settings(base / "straight", 6, checkpoint_every=3, sample_every=3))
    train("split", settings(base / "split", 3))
    train("resumed", settings(base / "split", 6, resume=True))
    train("adversarial", settings(base / "adversarial", 3, method="adversarial", method_options=ADVERSARIAL))
    # only rank 1 is asked to stop: both must leave at the same step instead of one waiting for the other
    train("stop", settings(base / "stop", 5), stop_first=rank == 1)
    report["logs"] = logs
    (base / f"rank{rank}.json").write_text(json.dumps(report))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(free_ports(5), str(root)), nprocs=2, join=True)
    return root, [json.loads((root / f"rank{r}.json").read_text()) for r in range(2)]


def test_ranks_agree_on_the_weights_and_only_rank_0_writes(two_ranks):
    root, reports = two_ranks
    for name in ("straight", "split", "resumed", "adversarial"):
        assert reports[0][name]["digest"] == reports[1][name]["digest"], name
    run = root / "straight"
    meta = json.loads((run / "checkpoints/last.json").read_text())
    assert meta["step"] == 6 and meta["ranks"]["size"] == 2
    assert meta["ranks"]["weights_sha256"] == [reports[0]["straight"]["digest"]] * 2
    assert meta["ranks"]["numpy_rng"][0] != meta["ranks"]["numpy_rng"][1]  # each rank draws its own batches
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "last.json", "last.safetensors", "step-00000003.json", "step-00000003.safetensors",
        "step-00000006.json", "step-00000006.safetensors"]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000003.png", "step-00000006.png"]
    assert not reports[1]["logs"] and any("2 processes" in line for line in reports[0]["logs"])
    adversarial = json.loads((root / "adversarial/checkpoints/last.json").read_text())["ranks"]["weights_sha256"]
    assert adversarial[0] == adversarial[1]  # three optimisers, a gradient penalty and batch norm


def test_resume_continues_every_rank_exactly(two_ranks):
    root, reports = two_ranks
    assert reports[0]["resumed"]["step"] == 6
    assert reports[0]["resumed"]["digest"] == reports[0]["straight"]["digest"]
    steps = [json.loads(line)["step"] for line in (root / "split/metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_stop_on_one_rank_stops_both_at_the_same_step(two_ranks):
    root, reports = two_ranks
    for report in reports:
        assert report["stop"]["stopped"] and report["stop"]["step"] == 0
    assert any("another training process is stopping" in line for line in reports[0]["logs"])
    assert load_model(root / "stop").step == 0


def test_two_ranks_see_other_data_than_one_and_resume_with_one(two_ranks, tmp_path):
    root, _ = two_ranks
    single = Trainer(settings(tmp_path / "single", 6)).run()
    ours, theirs = load_model(single.checkpoint).method.state_dict(), load_model(root / "straight").method.state_dict()
    assert any(not torch.equal(ours[k], theirs[k]) for k in ours)
    # a run written by two processes resumes in one, and says that the random streams change
    shutil.copytree(root / "straight", tmp_path / "copy")
    logs: list[str] = []
    result = Trainer(settings(tmp_path / "copy", 7, resume=True), TrainerCallbacks(on_log=logs.append)).run()
    assert result.step == 7 and any("written by 2 training process" in line for line in logs)


def test_torchrun_launches_studio_train(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--monitor-interval", "0.1", "-m", "studio", "train", "--dataset", DATASET, "--out", str(out),
               "--steps", "3", "--batch", "2", "--device", "cpu", "--threads", "1", "--width", "8", "--hidden", "32",
               "--log-every", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("training gzs on") == 1 and "2 processes" in done.stderr
    meta = json.loads((out / "checkpoints/last.json").read_text())
    assert meta["step"] == 3 and len(set(meta["ranks"]["weights_sha256"])) == 1
