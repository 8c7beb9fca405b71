"""GUI latency of the real main window (offscreen): slider-to-image latency and the longest event-loop stall,
with the app idle and while a training job started from the Training tab runs in the same process.

What is measured, per model resolution (32 and 64 px) and condition (idle / training):

* slider to image: one slot's A→B slider is set to a new value (``QSlider.setValue``, which is what a click on
  the slider does) and the clock stops when the composer emits ``image_changed`` with the image of that value:
  the undo command, card refresh, the request to the service, the compose on its worker, the hop back to the GUI
  thread and the image shown. One move at a time, the GUI idle in between; p50/p95 over the moves.
* drag: the same slider moved every 16 ms (60 Hz) for a few seconds. Reported: images shown per second, the
  age of each shown image (time since the slider reached the value it shows: p50/p95), and the stall.
* stall: a 5 ms ``QTimer`` records the gaps between its ticks; the longest gap is the longest time the GUI
  thread could not react (repaint, input). Measured during the isolated moves, the drag, and (training only)
  a quiet spell with nobody touching anything.

* encoding (only when the plot still shows its first sample once the window is ready: a first launch on a
  large dataset such as the full Fonts): the plot's remaining points encode on the service worker in the
  background while the slider moves; 'idle' then waits for them to finish.

The window is the app's ``MainWindow`` (browser, composer, latent plot following the dragged slot, Training
tab) on the offscreen platform, so everything is painted into an offscreen buffer as it would be on screen.
The fresh models are built for the small ``fonts:tiny`` preset (quick to project), so the latent plot is then
filled to ``--plot-points`` (20,000, the app's cap) by resampling the real projection: the plot's point moves
with every image, and repainting it is part of every frame. Aim (issue 3): p95 under 16 ms at 64 px and stalls
under 50 ms on this CPU.

Run: ``.venv/bin/python benchmarks/ui_latency.py [--checkpoint PATH] [--resolutions 32 64] [--quick]
[--json out.json]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import _common as common
import numpy as np

T_STEPS = 1000  # the composer's slider resolution (studio.ui.slot_widget.T_STEPS; checked at run time)


class SliderProbe:
    """Times slider moves to the images they produce. The value an image shows is the one its compose request
    was made for (noted when the service's future finishes); only the request call is wrapped, nothing of the
    app is changed."""

    def __init__(self, composer: Any, slot: str, latent_a: np.ndarray, latent_b: np.ndarray) -> None:
        self.composer = composer
        self.slider = composer.slot_widgets[slot].slider
        self.slot = slot
        self._a = np.asarray(latent_a, np.float64).reshape(-1)
        self._ab = np.asarray(latent_b, np.float64).reshape(-1) - self._a
        self._norm = float(self._ab @ self._ab)
        self.set_at: dict[int, float] = {}
        self.requested_at: dict[int, float] = {}
        self.shown: list[tuple[float, int, float]] = []  # (time, slider position shown, compose seconds)
        self._asked: dict[int, int] = {}  # id of a finished compose's result -> the slider position it was asked for
        composer.result_changed.connect(self._on_result)
        # Instrumentation only: note when the composer hands each composition to the service (the call itself
        # is unchanged), to split the latency into GUI work before, the compose, and the way back.
        service = composer.service
        original = service.compose_latest

        def timed_request(composition: Any, *args: Any, **kwargs: Any) -> Any:
            position = round(composition.slot(slot).t * T_STEPS)
            self.requested_at[position] = time.perf_counter()
            future = original(composition, *args, **kwargs)
            future.add_done_callback(lambda f, p=position: self._note_position(f, p))
            return future

        service.compose_latest = timed_request
        self._restore = lambda: delattr(service, "compose_latest")

    def _note_position(self, future: Any, position: int) -> None:
        """Which slider position a finished compose was asked for (runs on the worker, before the GUI hears)."""
        if not future.cancelled() and future.exception() is None:
            self._asked[id(future.result())] = position

    def position_of(self, result: Any) -> int:
        """The slider position ``result`` shows: the one its request was made for; a result the probe did not
        see asked for is read back from its latent. (Reading every result from its latent fails on the composer's
        on-data paths, which pull a straying latent off the straight A-B line toward the data.)"""
        asked = self._asked.pop(id(result), None)
        if asked is not None:
            return asked
        z = np.asarray(result.latents[self.slot], np.float64).reshape(-1)
        return round(float((z - self._a) @ self._ab) / self._norm * T_STEPS)

    def _on_result(self, result: Any) -> None:
        self.shown.append((time.perf_counter(), self.position_of(result), float(result.seconds)))

    def move(self, position: int) -> None:
        self.set_at[position] = time.perf_counter()
        self.slider.setValue(position)

    def disconnect(self) -> None:
        self.composer.result_changed.disconnect(self._on_result)
        self._restore()


def isolated_moves(probe: SliderProbe, count: int, rng: np.random.Generator, timeout_s: float) -> dict[str, Any]:
    stall = common.StallMeter().start()
    latencies, computes, before_request, way_back, missed = [], [], [], [], 0
    for _ in range(count):
        common.spin(lambda: not probe.composer.composing, timeout_s)
        common.run_for(0.03)  # let the previous image paint and the plot point move
        current = probe.slider.value()
        target = int(rng.integers(0, T_STEPS + 1))
        while abs(target - current) < 20:
            target = int(rng.integers(0, T_STEPS + 1))
        before = len(probe.shown)
        probe.move(target)
        start = probe.set_at[target]
        arrived = common.spin(lambda t=target, b=before: any(p == t for _, p, _ in probe.shown[b:]), timeout_s)
        if not arrived:
            missed += 1
            continue
        when, _, seconds = next(s for s in probe.shown[before:] if s[1] == target)
        latencies.append(when - start)
        computes.append(seconds)
        requested = probe.requested_at.get(target, start)
        before_request.append(requested - start)
        way_back.append(when - requested - seconds)
    stall.stop()
    return {"latency": common.summarize(latencies), "compose_on_worker": common.summarize(computes),
            "gui_before_request": common.summarize(before_request),
            "queue_and_delivery": common.summarize(way_back), "missed": missed, "stall": stall.summary()}


def drag(probe: SliderProbe, seconds: float, step: int = 10) -> dict[str, Any]:
    """Move the slider along a triangle wave every 16 ms; what was shown, how old it was, and the stall."""
    positions = [*range(0, T_STEPS + 1, step), *range(T_STEPS - step, 0, -step)]
    ticks = 0
    probe.set_at.clear()
    before = len(probe.shown)

    def tick() -> None:
        nonlocal ticks
        probe.move(positions[ticks % len(positions)])
        ticks += 1

    elapsed, stall = common.tick_for(tick, seconds)
    shown = probe.shown[before:]
    ages = [when - probe.set_at[pos] for when, pos, _ in shown if pos in probe.set_at and when >= probe.set_at[pos]]
    common.spin(lambda: not probe.composer.composing, 30)  # let the last request land before the next phase
    return {"moves": ticks, "moves_per_s": round(ticks / elapsed, 1), "images": len(shown),
            "images_per_s": round(len(shown) / elapsed, 1), "age": common.summarize(ages),
            "compose_on_worker": common.summarize([s for _, _, s in shown]), "stall": stall.summary()}


def fill_plot(plot: Any, slot: str, points: int, rng: np.random.Generator) -> None:
    """Give the latent plot ``points`` points, as a projection of a large dataset would: the real projected
    points, resampled with a little noise, handed to the panel the way a finished projection is."""
    from studio.service.projection import Projection

    real = plot.projection
    pick = rng.integers(len(real.indices), size=points)
    spread = np.asarray(real.xy, np.float32).std(axis=0, keepdims=True) * 0.1
    xy = np.asarray(real.xy, np.float32)[pick] + rng.standard_normal((points, 2)).astype(np.float32) * spread
    filled = Projection(np.asarray(real.indices)[pick], xy, real.method, real.pooled,
                        f"{points:,} points: the real projection resampled", slot, real.explained)
    plot._on_projected(slot, filled)


def start_training(window: Any, resolution: int, runs: Path, preset: str, timeout_s: float) -> tuple[Any, float]:
    """Start a GZS-Net job (default config) on fonts:<preset> from the Training tab; wait for its first steps."""
    tab = window.training
    tab.runs_dir = runs
    tab.set_dataset(f"fonts:{preset}")
    k = tab.resolution_combo.findData(resolution)
    if k < 0:
        raise SystemExit(f"the Training tab offers no {resolution} px resolution")
    tab.resolution_combo.setCurrentIndex(k)
    tab.set_method("gzs")
    tab.steps_spin.setValue(1_000_000)
    tab.device_combo.setCurrentText("cpu")
    started = time.perf_counter()
    tab.start()
    job = tab.job
    if job is None:
        raise SystemExit("the Training tab did not start a job")
    if not common.spin(lambda: len(job.history) >= 2 or not job.running, timeout_s):
        raise SystemExit(f"the training job made no 2 steps within {timeout_s:.0f} s")
    if not job.running:
        raise SystemExit(f"the training job ended: {job.state} {job.error or ''}")
    return job, time.perf_counter() - started


def run_resolution(resolution: int | None, args, report: common.Report, folder: Path) -> None:
    from PySide6.QtCore import QSettings

    from studio.service.composition import ItemSource, SlotValue
    from studio.service.model_service import ModelService
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import Settings
    from studio.ui.slot_widget import T_STEPS as APP_T_STEPS

    if APP_T_STEPS != T_STEPS:
        raise SystemExit(f"the composer's slider now has {APP_T_STEPS} steps; update T_STEPS here")
    path = common.model_for(args, "gzs", f"fonts:{args.preset},res={resolution}", folder / f"model-{resolution}",
                            report)
    service = ModelService(device="cpu", cache_dir=folder / f"cache-{resolution}")
    window = MainWindow(service, Settings(QSettings(str(folder / f"settings-{resolution}.ini"),
                                                    QSettings.Format.IniFormat)))
    window.resize(1600, 1000)
    window.show()
    job = None
    try:
        started = time.perf_counter()
        window.start_session(path, prompt=False)
        composer, plot = window.composer, window.latent_plot
        if not common.spin(lambda: service.model is not None and composer.image is not None, args.timeout):
            raise SystemExit("the window did not show a composed image in time")
        info = service.model
        res = info.resolution
        slots = info.slot_names
        slot = next((s for s in ("font_color", "letter") if s in slots), slots[0])
        codes = service.dataset.codes
        a_item = int(composer.composition.base.index) if composer.composition.base is not None else 0
        others = np.flatnonzero((codes != codes[a_item]).all(axis=1))
        b_item = int(others[0]) if len(others) else (a_item + 1) % len(codes)
        plot.set_slot(slot)
        before = composer.undo_stack.count()
        composer.set_composition(composer.composition.with_slot(slot, SlotValue(a=ItemSource(a_item),
                                                                                 b=ItemSource(b_item))))
        if not common.spin(lambda: plot.projection is not None and plot.projection.slot == slot
                           and composer.result is not None and composer.undo_stack.count() > before
                           and not composer.composing, args.timeout):
            raise SystemExit("the latent plot did not finish its projection in time")
        ready_s = time.perf_counter() - started
        real_points = plot.point_count()
        still_encoding = plot.preliminary  # a first sample shown, the rest encoding in the background
        if args.plot_points > real_points:
            fill_plot(plot, slot, args.plot_points, np.random.default_rng(7))
        shown_at_ready = plot.projection
        latents = service.encode_items([a_item, b_item])[slot]
        probe = SliderProbe(composer, slot, latents[0], latents[1])
        report.note(f"{res} px: window ready (model loaded, {real_points:,} points projected) in {ready_s:.1f} s; "
                    f"the plot shows {plot.point_count():,} points; dragging slot {slot!r} between items "
                    f"{a_item} and {b_item}")
        rng = np.random.default_rng(res)
        conditions = list(args.conditions)
        if still_encoding and "idle" in conditions:  # a first launch on a large dataset: measure that too
            conditions.insert(conditions.index("idle"), "encoding")
        for condition in conditions:
            row: dict[str, Any] = {"resolution": res, "condition": condition}
            if condition == "idle" and still_encoding:
                settle = time.perf_counter()
                # the finished projection replaces what the plot showed (the first sample, or its resampling)
                if not common.spin(lambda: plot.projection is not shown_at_ready and not plot.preliminary,
                                   args.timeout):
                    raise SystemExit("the latent plot did not finish encoding its points in time")
                report.note(f"{res} px: the plot's remaining points encoded in the background in "
                            f"{time.perf_counter() - settle:.0f} s more; 'idle' is measured after that")
                if args.plot_points > plot.point_count():
                    fill_plot(plot, slot, args.plot_points, np.random.default_rng(7))
            if condition == "training":
                job, start_s = start_training(window, res, folder / f"runs-{res}", args.train_preset, args.timeout)
                quiet = common.StallMeter().start()
                common.run_for(args.quiet_s)
                quiet.stop()
                row["training_started_s"] = round(start_s, 1)
                row["quiet_stall"] = quiet.summary()
            common.run_for(0.2)
            row["moves"] = isolated_moves(probe, args.moves, rng, args.timeout)
            row["drag"] = drag(probe, args.drag_s)
            if job is not None:
                row["training_steps_per_s"] = round(job.history[-1].steps_per_s, 3) if job.history else None
                row["training_step_reached"] = job.history[-1].step if job.history else 0
                job.cancel()
                common.spin(lambda j=job: not j.running, args.timeout)
                job = None
            report.add(**row)
            m, d = row["moves"], row["drag"]
            print(f"  {res} px {condition}: slider->image p50 {common.ms(m['latency']['p50_ms'])} ms, "
                  f"p95 {common.ms(m['latency']['p95_ms'])} ms; drag {d['images_per_s']} images/s, "
                  f"stall {d['stall']['max_ms']} ms", flush=True)
        probe.disconnect()
    finally:
        if job is not None:
            job.cancel()
            job.wait(60)
        for j in service.jobs:
            j.cancel()
            j.wait(60)
        common.spin(lambda: not window.training.is_running(), 30)
        window.close()
        window.deleteLater()
        common.run_for(0.1)
        service.shutdown(wait=True)


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 64],
                   help="models to build (ignored with --checkpoint, which has its own)")
    p.add_argument("--preset", default="tiny", help="Fonts preset of the fresh models (and the plot's points)")
    p.add_argument("--train-preset", default="tiny", help="Fonts preset the background training job uses")
    p.add_argument("--moves", type=int, default=None, help="isolated slider moves per condition (default 40; "
                                                           "--quick: 8)")
    p.add_argument("--drag-s", type=float, default=None, help="seconds of 60 Hz dragging (default 6; --quick: 2)")
    p.add_argument("--quiet-s", type=float, default=None, help="seconds of untouched GUI while training "
                                                               "(default 5; --quick: 2)")
    p.add_argument("--plot-points", type=int, default=20000,
                   help="points in the latent plot: a small preset's real projection is resampled up to this many "
                        "(the app plots up to 20,000), because repainting them is part of every slider frame; "
                        "0 keeps the real projection only")
    p.add_argument("--conditions", nargs="+", default=["idle", "training"], choices=["idle", "training"])
    p.add_argument("--switch-interval-ms", type=float, default=0.0,
                   help="Python's GIL switch interval (sys.setswitchinterval; 0: Python's default, 5 ms)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for any one thing")
    args = p.parse_args()
    info = common.machine()
    common.apply_threads(args.threads)
    if args.switch_interval_ms > 0:
        sys.setswitchinterval(args.switch_interval_ms / 1000.0)
    info["gil_switch_interval_ms"] = round(sys.getswitchinterval() * 1000, 3)
    app = common.qt_app()
    info = {**info, **{k: v for k, v in common.machine().items() if k in ("pyside6", "torch_threads")}}
    args.moves = args.moves or (8 if args.quick else 40)
    args.drag_s = args.drag_s or (2.0 if args.quick else 6.0)
    args.quiet_s = args.quiet_s or (2.0 if args.quick else 5.0)
    resolutions: list[int | None] = list(args.resolutions)
    if args.checkpoint:
        resolutions = [None]

    report = common.Report("ui_latency", info)
    report.start(f"GUI latency of the main window ({app.platformName()} platform)")
    report.note("slider->image: from QSlider.setValue to the composer's image_changed for that value; "
                "stall: longest gap between ticks of a 5 ms QTimer on the GUI thread")
    report.note(f"training condition: a GZS-Net job (default config, batch 8) on fonts:{args.train_preset} at "
                "the model's resolution, started from the Training tab, running in the same process")
    with common.work_dir("ui") as tmp:
        for res in resolutions:
            run_resolution(res, args, report, Path(tmp))

    def cell(r: dict[str, Any], *keys: str) -> str:
        value: Any = r
        for k in keys:
            value = value.get(k) if isinstance(value, dict) else None
        return "-" if value is None else common.ms(float(value))

    rows = [(r["resolution"], r["condition"], r["moves"]["latency"]["n"], cell(r, "moves", "latency", "p50_ms"),
             cell(r, "moves", "latency", "p95_ms"), cell(r, "moves", "gui_before_request", "p50_ms"),
             cell(r, "moves", "compose_on_worker", "p50_ms"), cell(r, "moves", "queue_and_delivery", "p50_ms"),
             cell(r, "moves", "stall", "max_ms")) for r in report.results]
    report.table("slider -> image, one move at a time (ms; p50 split: GUI work before the request, the compose "
                 "on the service worker, queueing + the hop back to the GUI thread)",
                 ["px", "condition", "moves", "p50", "p95", "gui p50", "compose p50", "back p50", "max stall"],
                 rows)
    rows = [(r["resolution"], r["condition"], r["drag"]["moves_per_s"], r["drag"]["images_per_s"],
             cell(r, "drag", "age", "p50_ms"), cell(r, "drag", "age", "p95_ms"), cell(r, "drag", "stall", "max_ms"),
             cell(r, "drag", "stall", "p99_ms"), r["drag"]["stall"]["over_50ms"]) for r in report.results]
    report.table("60 Hz drag (image age = time since the slider reached the value shown)",
                 ["px", "condition", "moves/s", "images/s", "age p50", "age p95", "max stall", "p99 gap",
                  "gaps>50ms"], rows)
    rows = [(r["resolution"], cell(r, "quiet_stall", "max_ms"), cell(r, "quiet_stall", "p99_ms"),
             r["quiet_stall"]["over_50ms"], r.get("training_steps_per_s", "-"), r.get("training_step_reached", "-"))
            for r in report.results if r["condition"] == "training"]
    if rows:
        report.table("GUI untouched while the training job runs",
                     ["px", "max stall", "p99 gap", "gaps>50ms", "train steps/s", "steps done"], rows)
    report.finish(args.json)


if __name__ == "__main__":
    main()
