"""Long service calls as futures (one idiom for the GUI): latest wins per channel, cancelling stops the work,
the plot's A->B path comes from latents alone, and exports write files off the caller's thread."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, Future, wait
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.errors import StudioError
from studio.service.composition import Composition, ItemSource, SlotValue
from studio.service.inference import Cancelled, Coalescer, InferenceWorker, TaskThreads
from studio.service.model_service import ModelService

WAIT = 60


@pytest.fixture(scope="module")
def service(tiny_gzs_run: Path, tmp_path_factory: pytest.TempPathFactory):
    svc = ModelService(device="cpu", cache_dir=tmp_path_factory.mktemp("latent-cache"))
    svc.load_checkpoint(tiny_gzs_run)
    yield svc
    svc.shutdown()


def _pair(t: float) -> Composition:
    return Composition({"letter": SlotValue(ItemSource(1), ItemSource(120), t=t)}, ItemSource(1))


# --- the coalescer as futures, with plain callables ----------------------------------------------------
def test_a_replaced_request_is_cancelled_and_the_newest_one_delivered():
    worker = InferenceWorker()
    try:
        gate = threading.Event()
        coalescer = Coalescer(worker)
        first = coalescer.submit("c", lambda rid, cancel: gate.wait(WAIT) and "first")
        middle = [coalescer.submit("c", lambda rid, cancel, k=k: f"middle {k}") for k in range(5)]
        last = coalescer.submit("c", lambda rid, cancel: "last")
        assert all(f.cancelled() for f in middle)  # replaced while the first one ran: never computed
        gate.set()
        assert first.result(WAIT) == "first" and last.result(WAIT) == "last"
        assert coalescer.stats("c") == {"delivered": 2, "dropped": 5, "latest": coalescer.stats("c")["latest"]}
    finally:
        worker.shutdown()


def test_an_interrupting_request_cancels_the_running_one():
    threads = TaskThreads(2)
    try:
        coalescer = Coalescer(threads)
        started = threading.Event()

        def long_work(rid: int, cancel: threading.Event) -> str:
            started.set()
            if cancel.wait(WAIT):
                raise Cancelled("cancelled")
            return "finished"

        first = coalescer.submit("plot", long_work, interrupt=True)
        assert started.wait(WAIT)
        second = coalescer.submit("plot", lambda rid, cancel: "second", interrupt=True)
        assert second.result(WAIT) == "second"
        wait([first], WAIT)
        assert first.cancelled()
        with pytest.raises(CancelledError):
            first.result(0)
    finally:
        threads.shutdown()


def test_a_failure_reaches_the_future():
    worker = InferenceWorker()
    try:
        future = Coalescer(worker).submit("c", lambda rid, cancel: (_ for _ in ()).throw(StudioError("no item 9")))
        with pytest.raises(StudioError, match="no item 9"):
            future.result(WAIT)
    finally:
        worker.shutdown()


# --- the model service -----------------------------------------------------------------------------------
def test_background_jobs_wait_for_a_quiet_spell_after_interactive_ones():
    """A drag's composes never queue behind long background encodes: those start only once the worker has had
    no interactive job for idle_gap seconds (ordering checked, not speed)."""
    worker = InferenceWorker()
    worker.idle_gap = 0.5
    events: list[tuple[str, float]] = []
    try:
        background_done: Future = Future()

        def background() -> None:
            events.append(("background", time.monotonic()))
            return "encoded"

        def run_background() -> None:
            background_done.set_result(worker.call_when_idle(background))

        jobs = []
        for _ in range(6):  # a drag: a compose every 30 ms, each starting the clock again
            jobs.append(worker.submit(lambda: events.append(("compose", time.monotonic()))))
            if len(jobs) == 1:
                threading.Thread(target=run_background, daemon=True).start()
            time.sleep(0.03)
        assert background_done.result(WAIT) == "encoded"
        wait(jobs, WAIT)
        kinds = [k for k, _ in events]
        assert kinds == ["compose"] * 6 + ["background"]
        last_compose = max(t for k, t in events if k == "compose")
        assert events[-1][1] - last_compose >= worker.idle_gap * 0.9
        cancel = threading.Event()
        cancel.set()
        worker.submit(lambda: None).result(WAIT)
        with pytest.raises(Cancelled):  # a cancelled encode stops waiting for its turn
            worker.call_when_idle(background, cancel=cancel)
    finally:
        worker.shutdown()


def test_encode_jobs_are_sized_to_the_time_they_take():
    from studio.service.encode_pacing import EncodePacer

    pacer = EncodePacer()
    assert pacer.job_size(512, 0.05) == 32  # nothing measured yet: a short first job
    assert pacer.job_size(512, None) == 512
    slow = pacer.timed(lambda missing: (time.sleep(0.002 * len(missing)), {"z": missing})[1])
    assert slow(np.arange(16))["z"].shape == (16,)
    assert pacer.seconds_per_item >= 0.002
    assert pacer.least <= pacer.job_size(512, 0.05) <= 25  # 2 ms or more an item: at most 25 in 50 ms
    pacer.timed(lambda missing: {"z": missing})(np.arange(4))  # too few to measure: the estimate stays
    assert pacer.seconds_per_item >= 0.002
    pacer.seconds_per_item = 1e-6
    assert pacer.job_size(512, 0.05) == 512
    pacer.reset()
    assert pacer.job_size(512, 0.05) == 32


def test_compose_latest_delivers_in_order_and_cancels_what_it_skipped(service: ModelService):
    futures = [service.compose_latest(_pair(k / 29), channel="burst-futures") for k in range(30)]
    wait(futures, WAIT)
    done = [f for f in futures if not f.cancelled()]
    assert futures[-1] in done and len(done) < len(futures)
    ids = [f.result().request_id for f in done]
    assert ids == sorted(ids)
    assert np.array_equal(futures[-1].result().image, service.compose(_pair(1.0)).image)


def test_the_slot_path_is_the_composed_latents_projected_without_decoding(service: ModelService):
    service.project("letter", max_points=200)
    composition = _pair(0.0)
    decoded = service.decoder_calls
    path = service.slot_path_async(composition, "letter", steps=5).result(WAIT)
    assert service.decoder_calls == decoded  # nothing was decoded
    assert path.shape == (5, 2)
    ends = [service.compose(composition.with_slot("letter", composition.slot("letter").with_t(t))) for t in (0, 1)]
    want = service.project_latent("letter", np.stack([r.latents["letter"] for r in ends]))
    np.testing.assert_allclose(path[[0, -1]], want, rtol=1e-4, atol=1e-4)
    with pytest.raises(StudioError, match="at least 2"):
        service.slot_path(composition, "letter", steps=1)


def test_projections_on_one_channel_interrupt_each_other(service: ModelService):
    first = service.project_async("size", max_points=150, channel="plot-test")
    second = service.project_async("letter", max_points=120, channel="plot-test")
    projection = second.result(WAIT)
    assert projection.slot == "letter" and len(projection.indices) == 120
    wait([first], WAIT)
    assert first.cancelled() or first.result().slot == "size"  # cancelled, unless it had already finished


def test_interpolation_reports_progress_and_stops_when_cancelled(service: ModelService):
    composition = _pair(0.0)
    seen: list[float] = []
    frames = service.interpolate_async(composition, None, 9, progress=seen.append).result(WAIT)
    assert len(frames) == 9 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) == 3
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        service.interpolate(composition, None, 9, cancel=cancel)


def test_exports_write_a_strip_and_a_gif_off_the_callers_thread(service: ModelService, tmp_path: Path):
    composition = _pair(0.0)
    strip = service.export_interpolation_async(composition, tmp_path / "strip.png", "strip", 4, scale=2)
    gif = service.export_interpolation_async(composition, tmp_path / "loop.gif", "gif", 5)
    assert isinstance(strip, Future)
    with Image.open(strip.result(WAIT)) as im:
        assert im.size == (4 * 32 * 2, 32 * 2)
    with Image.open(gif.result(WAIT)) as im:
        assert im.n_frames == 8  # 5 there, 3 back
    bad = service.export_interpolation_async(composition, tmp_path / "missing" / "x.png", "strip", 3)
    with pytest.raises(StudioError, match="does not exist"):
        bad.result(WAIT)
    with pytest.raises(StudioError, match="unknown export"):
        service.export_interpolation_async(composition, tmp_path / "x.png", "mp4", 3)
