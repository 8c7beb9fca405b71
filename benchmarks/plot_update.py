"""Latent plot update time at 20k and 100k points (offscreen): a new projection drawn with its colours, a
recolour by another attribute, the composition's point moving, and hovering, each followed by a real repaint.

The panel is the app's ``LatentPlotPanel`` (with a ``ComposerPanel``) on a model for ``fonts:full`` (308,880
items, so 100k distinct items exist). By default the points are *synthetic latents fed through the panel's own
code path*: the service fits its PCA on ``--fit-items`` real encoded items, then random latents shaped like them
(real latents plus noise) are projected with that fit and handed to the panel exactly as a finished projection
is (``_on_projected``: colour groups, ``setData``, legend, auto-range). Encoding 100k real items would take many
minutes on a CPU and measures the encoder, not the plot; ``--real`` does it anyway. Times are per update,
including one synchronous repaint of the plot (``viewport().repaint()``), so they are what the user waits for.

Run: ``.venv/bin/python benchmarks/plot_update.py [--points 20000 100000] [--real] [--quick] [--json out.json]``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import _common as common
import numpy as np


def repaint_seconds(plot: Any) -> float:
    """Let Qt paint what the update made dirty (only the changed region, as in the running app)."""
    from PySide6.QtWidgets import QApplication

    start = time.perf_counter()
    QApplication.processEvents()
    return time.perf_counter() - start


def measure_points(plot: Any, composer: Any, service: Any, slot: str, n: int, real_latents: np.ndarray,
                   repeats: int, real: bool, rng: np.random.Generator) -> dict[str, Any]:
    from PySide6.QtCore import QPointF

    from studio.service.model_service import ComposeResult
    from studio.service.projection import Projection

    dataset = service.dataset
    out: dict[str, Any] = {"points": n, "source": "real projection" if real else "synthetic latents"}
    if real:
        started = time.perf_counter()
        projection = service.project(slot, max_points=n)
        out["projection_s"] = round(time.perf_counter() - started, 1)
    else:
        indices = np.sort(rng.choice(len(dataset), size=n, replace=False)).astype(np.int64)
        scale = real_latents.std(axis=0, keepdims=True) * 0.3
        latents = real_latents[rng.integers(len(real_latents), size=n)] + \
            rng.standard_normal((n, real_latents.shape[1])).astype(np.float32) * scale
        xy = np.asarray(service.project_latent(slot, latents), np.float32)
        projection = Projection(indices, xy, "pca", False, f"{n:,} synthetic points", slot, (0.5, 0.2))

    draws, recolours, moves, hovers = [], [], [], []
    colour_names = [a.name for a in dataset.schema]
    for k in range(max(1, repeats // 4)):
        start = time.perf_counter()
        plot._on_projected(slot, projection)
        draws.append(time.perf_counter() - start + repaint_seconds(plot))
        name = colour_names[k % len(colour_names)]
        start = time.perf_counter()
        plot.set_colour_attribute(name)
        recolours.append(time.perf_counter() - start + repaint_seconds(plot))
    assert plot.point_count() == n, (plot.point_count(), n)

    base = np.asarray(real_latents[0], np.float32)
    step = real_latents.std(axis=0) * 0.05
    for k in range(repeats):
        latent = base + step * k
        result = ComposeResult(np.zeros((8, 8, 3), np.uint8), {slot: latent}, 10_000 + k, 0.0)
        start = time.perf_counter()
        composer.result_changed.emit(result)  # what the composer emits for each new image
        moves.append(time.perf_counter() - start + repaint_seconds(plot))
    assert plot.current_xy is not None

    rect = plot.view_box.sceneBoundingRect()
    for _ in range(repeats):
        pos = QPointF(rect.left() + rng.random() * rect.width(), rect.top() + rng.random() * rect.height())
        start = time.perf_counter()
        plot._on_mouse_moved(pos)  # the scene's sigMouseMoved handler
        hovers.append(time.perf_counter() - start + repaint_seconds(plot))
    out.update(draw=common.summarize(draws), recolour=common.summarize(recolours),
               move_point=common.summarize(moves), hover=common.summarize(hovers))
    return out


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, nargs="+", default=None, help="default 20000 100000 (--quick: 20000)")
    p.add_argument("--real", action="store_true", help="project real encoded items instead of synthetic latents")
    p.add_argument("--fit-items", type=int, default=2000, help="real items the PCA is fitted on (synthetic mode)")
    p.add_argument("--repeats", type=int, default=None, help="point moves and hovers per size (default 40; "
                                                             "--quick: 8); draws and recolours: a quarter")
    p.add_argument("--res", type=int, default=32, help="resolution of the fresh model (only the fit uses it)")
    args = p.parse_args()
    info = common.machine()
    common.apply_threads(args.threads)
    app = common.qt_app()
    info["pyside6"] = common.machine().get("pyside6")
    sizes = args.points or ([20000] if args.quick else [20000, 100000])
    repeats = args.repeats or (8 if args.quick else 40)

    from studio.service.model_service import ModelService
    from studio.ui.composer import ComposerPanel
    from studio.ui.latent_plot import LatentPlotPanel

    report = common.Report("plot_update", info)
    report.start(f"Latent plot update time ({app.platformName()} platform)")
    report.note("each figure includes one synchronous repaint of the plot (700x600 px)")
    with common.work_dir("plot") as tmp:
        folder = Path(tmp)
        path = common.model_for(args, "gzs", f"fonts:full,res={args.res}", folder, report)
        service = ModelService(device="cpu", cache_dir=folder / "cache")
        composer = ComposerPanel(service)
        plot = LatentPlotPanel(service, composer)
        plot.max_points = args.fit_items  # the panel's own projection only supplies the PCA fit
        for widget, size in ((composer, (700, 600)), (plot, (700, 600))):
            widget.resize(*size)
            widget.show()
        try:
            started = time.perf_counter()
            service.load_checkpoint(path)
            if not common.spin(lambda: plot.projection is not None and composer.image is not None, 900):
                raise SystemExit("the plot's projection did not finish in time")
            slot = plot.slot
            report.note(f"model loaded and {plot.point_count():,} real items projected for the PCA fit in "
                        f"{time.perf_counter() - started:.1f} s; plotted slot {slot!r}, coloured by its attribute")
            if args.real:
                report.note("--real: the points are real items, encoded and projected by the service")
            else:
                report.note("synthetic latents (real latents + noise) projected with the service's PCA fit and "
                            "fed through the panel's _on_projected, as a finished projection is")
            real_latents = service.encode_items(plot.projection.indices[:args.fit_items])[slot]
            rng = np.random.default_rng(0)
            rows = []
            for n in sizes:
                r = measure_points(plot, composer, service, slot, n, real_latents, repeats, args.real, rng)
                report.add(**r)
                for what, key in (("new projection drawn", "draw"), ("recolour by another attribute", "recolour"),
                                  ("current point moved", "move_point"), ("hover (nearest point + preview)",
                                                                          "hover")):
                    s = r[key]
                    rows.append((f"{n:,}", what, s["n"], common.ms(s["p50_ms"]), common.ms(s["p95_ms"]),
                                 common.ms(s["max_ms"])))
                print(f"  {n:,} points: draw p50 {r['draw']['p50_ms']} ms, move p50 {r['move_point']['p50_ms']} ms",
                      flush=True)
        finally:
            plot.cancel()
            for w in (plot, composer):
                w.close()
                w.deleteLater()
            common.run_for(0.1)
            service.shutdown(wait=True)
    report.table("update + repaint time (ms)", ["points", "update", "n", "p50", "p95", "max"], rows)
    report.finish(args.json)


if __name__ == "__main__":
    main()
