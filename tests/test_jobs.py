"""Training jobs through the service: a real tiny Trainer on a thread, its events, pause/resume/stop/cancel, and
failures that report why and keep the last checkpoint usable."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from studio.service.composition import Composition, ItemSource
from studio.service.model_service import ModelService
from studio.training.trainer import TrainSettings

WAIT = 120  # seconds to wait for a job before the test fails (never an assertion about speed)
TINY = {"width": 8, "hidden": 32, "residual_blocks": 0, "kernel": 3, "latent_dim": 10, "lr": 1e-3}



@pytest.fixture
def service(tmp_path: Path):
    svc = ModelService(device="cpu", cache_dir=tmp_path / "cache")
    yield svc
    for job in svc.jobs:
        job.cancel()
    svc.shutdown(wait=True)


def settings(out: Path, steps: int, **kw) -> TrainSettings:
    base = {"method": "gzs", "dataset": "fonts:tiny,res=32", "out": out, "steps": steps, "batch": 2,
            "device": "cpu", "checkpoint_every": 4, "sample_every": 4, "log_every": 2,
            "method_options": dict(TINY)}
    return TrainSettings(**{**base, **kw})


class Recorder:
    """Collects a job's events (they arrive on the training thread) and lets the test wait for them."""

    def __init__(self, job) -> None:
        self.events: list[tuple] = []
        self.progress = threading.Event()
        self.lock = threading.Lock()
        ev = job.events
        ev.started.connect(lambda: self._add("started"))
        ev.progress.connect(lambda p: self._add("progress", p.step))
        ev.sample.connect(lambda step, grid, path: self._add("sample", step, grid.shape, Path(path)))
        ev.checkpoint.connect(lambda step, path: self._add("checkpoint", step, Path(path)))
        ev.finished.connect(lambda result: self._add("finished", result))
        ev.failed.connect(lambda message: self._add("failed", message))
        ev.state_changed.connect(lambda state: self._add("state", state))

    def _add(self, *event) -> None:
        with self.lock:
            self.events.append(event)
        if event[0] == "progress":
            self.progress.set()

    def kinds(self, kind: str) -> list[tuple]:
        with self.lock:
            return [e for e in self.events if e[0] == kind]


def test_a_job_runs_to_its_end_and_its_checkpoint_composes(service: ModelService, tmp_path: Path):
    job = service.start_training(settings(tmp_path / "run", 8))
    rec = Recorder(job)
    assert job.wait(WAIT)
    assert job.state == "finished" and job.error is None
    assert job.result is not None and job.result.step == 8 and not job.result.stopped
    assert [p.step for p in job.history] == list(range(1, 9))  # complete, whenever we subscribed
    assert all(np.isfinite(p.losses["loss"]) and p.total == 8 for p in job.history)
    assert [p.name for p in job.checkpoints] == ["step-00000004.safetensors", "step-00000008.safetensors"]
    assert all(p.exists() for p in job.checkpoints)
    assert rec.kinds("checkpoint")[-1][1] == 8
    assert job.last_sample is not None and job.last_sample.dtype == np.uint8
    assert rec.kinds("state")[-1] == ("state", "finished")
    assert rec.kinds("finished")[0][1] is job.result
    info = service.load_checkpoint(job.last_checkpoint)
    assert info.step == 8
    assert service.compose(Composition(base=ItemSource(5))).image.shape == (32, 32, 3)


def test_pause_resume_and_stop(service: ModelService, tmp_path: Path):
    job = service.start_training(settings(tmp_path / "run", 100_000, checkpoint_every=0, sample_every=0))
    rec = Recorder(job)
    assert rec.progress.wait(WAIT)
    job.pause()
    assert job.state == "paused"
    paused_at = len(job.history)
    rec.progress.clear()
    rec.progress.wait(2.0)  # at most the step that was running when we paused may still finish
    assert len(job.history) <= paused_at + 1
    rec.progress.clear()
    job.resume()
    assert job.state == "running"
    assert rec.progress.wait(WAIT)
    job.stop()
    assert job.state == "stopping"
    assert job.wait(WAIT)
    assert job.state == "finished"
    assert job.result.stopped and job.result.step < 100_000
    assert job.last_checkpoint is not None and job.last_checkpoint.exists()
    states = [e[1] for e in rec.kinds("state")]
    assert states[states.index("paused"):] == ["paused", "running", "stopping", "finished"]


def test_cancel_ends_a_job_as_cancelled(service: ModelService, tmp_path: Path):
    job = service.start_training(settings(tmp_path / "run", 100_000, checkpoint_every=0, sample_every=0))
    rec = Recorder(job)
    assert rec.progress.wait(WAIT)
    job.cancel()
    job.stop()  # a later stop does not turn a cancel into a finish
    assert job.wait(WAIT)
    assert job.state == "cancelled" and job.error is None
    assert rec.kinds("state")[-1] == ("state", "cancelled")


def test_a_failing_job_says_why_and_keeps_its_last_checkpoint(service: ModelService, tmp_path: Path):
    job = service.start_training(settings(tmp_path / "run", 100_000, checkpoint_every=3, sample_every=0))
    rec = Recorder(job)

    def disk_full(step: int, path: Path) -> None:
        raise OSError(28, "No space left on device")

    job.events.checkpoint.connect(disk_full)  # fails the run right after the first checkpoint was written
    assert job.wait(WAIT)
    assert job.state == "failed"
    assert "No space left on device" in job.error
    assert rec.kinds("failed") and rec.kinds("failed")[0][1] == job.error
    assert str(job.last_checkpoint) in job.error
    info = service.load_checkpoint(job.last_checkpoint)
    assert info.step == 3
    assert service.compose(Composition(base=ItemSource(0))).image.dtype == np.uint8


def test_bad_settings_fail_with_a_message_that_names_them(service: ModelService, tmp_path: Path):
    job = service.start_training(settings(tmp_path / "run", 5, method="nonesuch"))
    assert job.wait(WAIT)
    assert job.state == "failed" and "nonesuch" in job.error
    assert job.checkpoints == []
