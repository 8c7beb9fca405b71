"""What every benchmark script shares: the machine it ran on, timing summaries, tables, JSON, model checkpoints,
and (imported lazily, so torch-only scripts never load Qt) an offscreen Qt application and a GUI stall meter.

The scripts print figures; they assert nothing about speed. A figure is only meaningful next to the machine and
the load it was measured under, so every report starts with both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

UNTRAINED_NOTE = ("untrained network: {method} with its default config, built for {dataset} "
                  "(an untrained network costs the same to run as a trained one)")


# --- the machine -------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return None
    return round(one, 2), round(five, 2), round(fifteen, 2)


def machine() -> dict[str, Any]:
    """The machine and its load now (call it first: the load average at the start is what the figures met)."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if "PySide6" in sys.modules:
        import PySide6

        info["pyside6"] = PySide6.__version__
    return info


def machine_lines(info: dict[str, Any]) -> list[str]:
    load = info.get("load_average_start")
    load_text = "n/a" if load is None else " / ".join(f"{v:.2f}" for v in load)
    lines = [f"machine: {info['cpu']}, {info['usable_cpus']} usable of {info['logical_cpus']} logical CPUs, "
             f"{info['platform']}",
             f"software: Python {info['python']}, torch {info['torch']} ({info['torch_threads']} CPU threads)"
             + (f", PySide6 {info['pyside6']}" if info.get("pyside6") else ""),
             f"load average at start (1/5/15 min): {load_text}"
             + ("  -- busy: more runnable processes than CPUs, so figures are pessimistic"
                if load is not None and load[0] > info["usable_cpus"] else "")]
    if info.get("cuda"):
        lines.insert(1, f"GPU: {info['cuda']}")
    return lines


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


# --- timing -------------------------------------------------------------------------------------------------
def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Count, median, 95th percentile, worst and mean of a list of durations, in milliseconds."""
    if len(seconds) == 0:
        return {"n": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "max_ms": float("nan"),
                "mean_ms": float("nan")}
    ms = np.asarray(seconds, np.float64) * 1000.0
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2), "max_ms": round(float(ms.max()), 2),
            "mean_ms": round(float(ms.mean()), 2)}


def ms(value: float) -> str:
    return "n/a" if value != value else f"{value:.1f}"


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# --- output ---------------------------------------------------------------------------------------------------
def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("x%"))
    except ValueError:
        return text in ("n/a", "-", "")
    return True


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: numeric columns right-aligned, text columns left-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(headers))]
    numeric = [all(_numeric(r[k]) for r in cells[1:]) for k in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if numeric[k] else c.ljust(w) for k, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


@dataclass
class Report:
    """Collects a benchmark's notes, tables and raw results; prints them as they come, and JSON at the end."""

    name: str
    machine: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)

    def start(self, title: str) -> None:
        print(f"== {title}")
        for line in machine_lines(self.machine):
            print(line)
        sys.stdout.flush()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            print(f"note: {text}", flush=True)

    def add(self, **result: Any) -> None:
        self.results.append(result)

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.tables.append({"title": title, "headers": list(headers), "rows": [list(map(str, r)) for r in rows]})
        print(f"\n{title}\n{format_table(headers, rows)}", flush=True)

    def finish(self, json_path: str | None) -> None:
        end = load_average()
        print(f"\nload average at end: {'n/a' if end is None else ' / '.join(f'{v:.2f}' for v in end)}")
        if json_path:
            data = {"benchmark": self.name, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": self.machine,
                    "load_average_end": end, "notes": self.notes, "tables": self.tables, "results": self.results}
            text = json.dumps(data, indent=2, default=str)
            if json_path == "-":
                print(text)
            else:
                Path(json_path).write_text(text + "\n")
                print(f"wrote {json_path}")


def parser(description: str, checkpoint: bool = True) -> argparse.ArgumentParser:
    """The options every script has: --checkpoint, --quick, --json, --threads."""
    p = argparse.ArgumentParser(description=description)
    if checkpoint:
        p.add_argument("--checkpoint", help="measure this checkpoint (file, sidecar or run folder) instead of a "
                                            "freshly built untrained model of the method's default config")
    p.add_argument("--quick", action="store_true", help="a short run that only checks the script works")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH ('-' prints them)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return p


def step_parser(description: str, *, shipped_model: bool = False, device: str = "cpu") -> argparse.ArgumentParser:
    """Options of the scripts that time GZS-Net steps: --resolution, --batch, --device, --threads, and with
    ``shipped_model`` the model for compose and encode (--checkpoint, --encode-batch)."""
    p = argparse.ArgumentParser(description=description)
    if shipped_model:
        p.add_argument("--checkpoint", default=str(SHIPPED_FONTS), help="model for compose and encode")
        p.add_argument("--encode-batch", type=int, default=64, help="images per encode call")
    p.add_argument("--resolution", type=int, default=64, help="resolution of the training-step model")
    p.add_argument("--batch", type=int, default=4, help="groups per training step")
    p.add_argument("--device", default=device, help="auto, cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return p


def apply_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


# --- models -----------------------------------------------------------------------------------------------------
SHIPPED_FONTS = Path(__file__).resolve().parent.parent / "models" / "fonts-gzs" / "model.safetensors"


def recipe_gzs_training(resolution: int, device: Any) -> tuple[Any, Any, Any]:
    """GZS-Net's CPU-recipe config, fonts:small at ``resolution`` with the default split as TrainingData, and the
    MethodContext to build the model with: what the step benchmarks train."""
    from studio.data.spec import open_dataset
    from studio.data.splits import ZeroShotSplit
    from studio.methods.base import MethodContext
    from studio.methods.gzs import GZSConfig, GZSNet
    from studio.training.data import TrainingData

    dataset = open_dataset(f"fonts:small,res={resolution}")
    data = TrainingData(dataset, ZeroShotSplit.make(dataset.codes), device)
    context = MethodContext(dataset.schema, resolution, len(data.train_indices))
    return GZSConfig(**GZSNet.recipes["cpu"].options), data, context


def shipped_inputs(checkpoint: str | Path, device: Any, encode_batch: int) -> tuple[Any, Any, dict[str, Any]]:
    """A model in eval mode, ``encode_batch`` images of its own dataset, and one item's latents (a composition)."""
    import torch

    from studio.data.spec import open_dataset
    from studio.training.data import to_tensor
    from studio.training.model_io import load_model

    loaded = load_model(checkpoint, device)
    method = loaded.method.eval()
    dataset = open_dataset(f"{loaded.dataset_spec},res={method.context.resolution}")
    images = to_tensor(dataset.images(np.arange(encode_batch)), device)
    with torch.no_grad():
        latents = {k: v[:1].clone() for k, v in method.encode(images[:1]).items()}
    return method, images, latents


def work_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder for fresh checkpoints and the service's latent cache (so 'cold' really is cold)."""
    return tempfile.TemporaryDirectory(prefix=f"studio-bench-{prefix}-")


#: Methods whose untrained checkpoint cannot encode yet: LORD's encoders exist only in its second stage, so its
#: fresh model skips stage 1 and takes one amortisation step (the network and its cost per call are unchanged).
ENCODABLE_FROM_THE_START: dict[str, tuple[dict[str, Any], int]] = {"lord": ({"stage1_steps": 0}, 1)}


def fresh_checkpoint(method: str, dataset: str, folder: Path, options: dict[str, Any] | None = None) -> Path:
    """A checkpoint of an untrained ``method`` (default config unless ``options``) for ``dataset``, written by the
    same Trainer the app uses (zero steps), so it loads exactly like a real run."""
    from studio.training.trainer import Trainer, TrainSettings

    out = Path(folder) / f"{method}-{dataset.replace(':', '-').replace(',', '-').replace('=', '')}"
    extra, steps = ENCODABLE_FROM_THE_START.get(method, ({}, 0))
    settings = TrainSettings(method=method, dataset=dataset, out=out, steps=steps, device="cpu", sample_every=0,
                             log_every=0, checkpoint_every=0, method_options={**extra, **(options or {})})
    Trainer(settings).run()
    return out / "checkpoints" / "last.safetensors"


def model_for(args: argparse.Namespace, method: str, dataset: str, folder: Path,
              report: Report) -> Path:
    """``--checkpoint`` if given, else a fresh untrained model (and a note saying so)."""
    if getattr(args, "checkpoint", None):
        from studio.training.checkpoint import resolve_checkpoint

        path = resolve_checkpoint(args.checkpoint)
        report.note(f"checkpoint: {path}")
        return path
    report.note(UNTRAINED_NOTE.format(method=method, dataset=dataset))
    if method in ENCODABLE_FROM_THE_START:
        report.note(f"{method}: the fresh model takes {ENCODABLE_FROM_THE_START[method][1]} training step(s) with "
                    f"{ENCODABLE_FROM_THE_START[method][0]} so that it can encode (same network, same cost)")
    return fresh_checkpoint(method, dataset, folder)


# --- Qt (imported only by the GUI benchmarks) ---------------------------------------------------------------------
def qt_app() -> Any:
    """The QApplication, on the offscreen platform unless a display platform was asked for."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    import studio.ui  # noqa: F401  (applies the PySide6 fixes every UI module relies on)

    app = QApplication.instance() or QApplication([sys.argv[0]])
    _quiet_offscreen_warnings()
    return app


_previous_handler: Any = None


def _quiet_offscreen_warnings() -> None:
    """Drop the offscreen platform's "does not support propagateSizeHints()" line (one per window shown), which
    would bury the figures; every other Qt message is printed as usual."""
    global _previous_handler
    from PySide6.QtCore import qInstallMessageHandler

    def handler(mode: Any, context: Any, message: str) -> None:
        if "propagateSizeHints" in message:
            return
        if _previous_handler is not None:
            _previous_handler(mode, context, message)
        else:
            print(message, file=sys.stderr)

    if _previous_handler is None:
        _previous_handler = qInstallMessageHandler(handler) or None


class StallMeter:
    """A 5 ms Qt timer that records the gaps between its ticks: a gap far above 5 ms means the GUI thread was
    busy (or starved) for that long and could not repaint or react to input."""

    def __init__(self, interval_ms: int = 5) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.interval_ms = interval_ms
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last: float | None = None
        self.gaps: list[float] = []

    def start(self) -> StallMeter:
        self.reset()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.stop()
        self._last = None

    def reset(self) -> None:
        self.gaps = []
        self._last = None

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
        self._last = now

    def summary(self) -> dict[str, float]:
        """The longest gap, the 99th percentile and how many gaps exceeded 50 ms, in ms."""
        if not self.gaps:
            return {"ticks": 0, "max_ms": float("nan"), "p99_ms": float("nan"), "over_50ms": 0}
        gaps = np.asarray(self.gaps) * 1000.0
        return {"ticks": len(gaps), "max_ms": round(float(gaps.max()), 1),
                "p99_ms": round(float(np.percentile(gaps, 99)), 1), "over_50ms": int((gaps > 50).sum())}


def spin(predicate: Callable[[], bool], timeout_s: float, poll_ms: int = 2) -> bool:
    """Run the Qt event loop until ``predicate()`` holds or ``timeout_s`` passes; True if it held."""
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return True
    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s
    held = False

    def check() -> None:
        nonlocal held
        if predicate():
            held = True
            loop.quit()
        elif time.perf_counter() > deadline:
            loop.quit()

    poll = QTimer()
    poll.setInterval(poll_ms)
    poll.timeout.connect(check)
    poll.start()
    loop.exec()
    poll.stop()
    return held


def run_for(seconds: float) -> None:
    """Keep the Qt event loop running for ``seconds``."""
    end = time.perf_counter() + seconds
    spin(lambda: time.perf_counter() >= end, seconds + 1.0)


def tick_for(tick: Callable[[], None], seconds: float, interval_ms: int = 16) -> tuple[float, StallMeter]:
    """Call ``tick`` every ``interval_ms`` (a 60 Hz hand on a slider or a scroll bar) for ``seconds`` under a
    StallMeter; returns the elapsed time and the (stopped) meter."""
    from PySide6.QtCore import Qt, QTimer

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    stall = StallMeter().start()
    started = time.perf_counter()
    timer.start()
    run_for(seconds)
    timer.stop()
    elapsed = time.perf_counter() - started
    stall.stop()
    return elapsed, stall
