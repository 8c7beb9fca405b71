"""Time to the first image: from building the main window to the composer's first composed image, as the app
starts (the shipped Fonts model on its own dataset, a fresh latent cache, offscreen Qt).

It prints when each milestone arrived: the window shown, the model loaded (``model_changed``), the first image in
the composer, and the latent plot's first projection. Run it on two trees to compare them:
``.venv/bin/python benchmarks/startup_first_image.py [--model PATH] [--repeats 2] [--threads 1]``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import _common as common


def one_start(model: Path, threads: int) -> dict[str, float]:
    from PySide6.QtCore import QSettings

    from studio.service.factory import create_service
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import Settings

    app = common.qt_app()
    with tempfile.TemporaryDirectory(prefix="studio-start-") as tmp:
        started = time.perf_counter()
        marks: dict[str, float] = {}
        settings = Settings(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        service = create_service(device="cpu", cache_dir=Path(tmp) / "cache")
        common.apply_threads(threads)
        window = MainWindow(service, settings)
        window.resize(1480, 900)
        window.show()
        app.processEvents()
        marks["window shown"] = time.perf_counter() - started
        service.events.model_changed.connect(lambda *_: marks.setdefault("model loaded",
                                                                         time.perf_counter() - started))
        window.composer.image_changed.connect(lambda *_: marks.setdefault("first image",
                                                                          time.perf_counter() - started))
        window.start_session(model)
        plot = window.latent_plot
        def plot_progress() -> bool:
            if plot.projection is not None:
                marks.setdefault("plot first points", time.perf_counter() - started)
                if not plot.progress.isVisible():
                    marks.setdefault("plot complete", time.perf_counter() - started)
            return "first image" in marks and "plot complete" in marks

        done = common.spin(plot_progress, timeout_s=600)
        if not done:
            marks["gave up"] = time.perf_counter() - started
        window.close()
        service.shutdown(wait=True)
        return marks


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], checkpoint=False)
    p.add_argument("--model", default=str(common.SHIPPED_FONTS))
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    report = common.Report("startup_first_image", common.machine())
    report.start("time to the first image (seconds after the window is built)")
    rows = []
    for k in range(1 if args.quick else args.repeats):
        marks = one_start(Path(args.model), args.threads)
        report.add(run=k, **marks)
        rows.append([k] + [f"{marks.get(name, float('nan')):.2f}" for name in
                           ("window shown", "model loaded", "first image", "plot first points", "plot complete")])
    report.table("milestones (s)", ["run", "window shown", "model loaded", "first image", "plot first points",
                                       "plot complete"], rows)
    report.finish(args.json)


if __name__ == "__main__":
    main()
