"""``python -m studio.ui.screenshots OUTDIR``: real PNGs of every screen, for the README and for review.

It builds the real main window on a real model (``--model``, else the app's default model; with none, it trains a
tiny one from the Training tab first), drives it the way a person would (filters the browser, fills the composer
with a composition that has second sources, lets the latent plot project, runs a short training job) and saves
each screen with ``widget.grab()``. Settings go to a temporary file, never the user's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SIZE = (1600, 1000)
TINY_GZS = {"width": 8, "hidden": 64, "residual_blocks": 1, "latent_dim": 20, "kernel": 3, "norm": "batch",
            "lr": 3e-3}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m studio.ui.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder for the PNGs (created if missing)")
    parser.add_argument("--model", help="checkpoint or run folder to show (default: the app's default model)")
    parser.add_argument("--train-steps", type=int, default=120,
                        help="steps of the short training run shown in the Train tab (default 120)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import numpy as np
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.errors import StudioError
    from studio.service.factory import create_service
    from studio.ui.app import startup_model
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Attribute Studio")
    out = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="studio-screens-"))

    def pump(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait(what: str, done: Callable[[], bool], seconds: float = 300) -> None:
        end = time.monotonic() + seconds
        while not done():
            if time.monotonic() > end:
                raise StudioError(f"screenshots: gave up waiting for {what} after {seconds:.0f} s")
            pump(50)

    def save(widget, name: str) -> None:
        pump(400)
        path = out / name
        if not widget.grab().save(str(path)):
            raise StudioError(f"screenshots: could not write {path}")
        print(f"wrote {path}")

    settings = Settings(QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat))
    service = create_service(device=args.device)
    window = MainWindow(service, settings)
    window.resize(*SIZE)
    window.show()
    try:
        tab = window.training
        tab.runs_dir = scratch / "runs"

        def run_tiny_training(steps: int, keep_running_for_screenshot: bool) -> None:
            window.tabs.setCurrentWidget(tab)
            tab.set_dataset("fonts:tiny")
            tab.resolution_combo.setCurrentIndex(tab.resolution_combo.findData(32))
            tab.set_method("gzs")
            tab.apply_recipe(None)  # a short run of the method's defaults, not the CPU recipe's 20 minutes
            tab.steps_spin.setValue(steps)
            tab.batch_spin.setValue(4)
            tab.sample_spin.setValue(max(1, steps // 6))
            tab.checkpoint_spin.setValue(max(1, steps // 3))
            tab.log_spin.setValue(5)
            for name, value in TINY_GZS.items():
                tab.config_form.set_value(name, value)
            tab.start()
            wait("training to start", lambda: tab.job is not None)
            if keep_running_for_screenshot:
                wait("training progress", lambda: len(tab.job.history) >= steps * 2 // 3 and
                     tab.job.last_sample is not None)
                save(window, "training.png")
            wait("training to end", lambda: not tab.job.running, seconds=1800)
            if tab.job.state != "finished":
                raise StudioError(f"screenshots: the training run ended {tab.job.state}: {tab.job.error}")

        model = Path(args.model) if args.model else startup_model(None, "", False, scratch / "none")
        trained_here = model is None
        if model is None:
            print("no model found: training a tiny one from the Training tab first")
            run_tiny_training(max(args.train_steps, 300), keep_running_for_screenshot=True)
            model = tab.selected_checkpoint()
        window.start_session(model, prompt=False)
        wait("the model and its dataset", lambda: service.model is not None and service.items is not None
             and window.browser.dataset is not None and window.composer.image is not None)
        window.tabs.setCurrentIndex(0)
        dataset = service.items
        slots = window.composer.slot_names()

        # The browser: a facet filter, an item selected, thumbnails rendered.
        browser = window.browser
        first_attribute = dataset.schema[0]
        browser.facets.select(first_attribute.name, first_attribute.values[min(2, first_attribute.cardinality - 1)])
        rows = browser.model.rows()
        browser.select_item(int(rows[min(5, len(rows) - 1)]))
        wait("thumbnails", lambda: browser.model.cached(int(rows[0])) and browser.model.pending == 0)
        save(browser, "browser.png")
        browser.facets.clear()

        # The composer: every slot from an item (a swap of every attribute), and two slots with a second source
        # whose sliders sit a quarter of the way to it: the colour slots where there are (a blend of two colours
        # reads as one; a blend of two letters is neither letter), else the last two.
        from studio.service.composition import Composition, ItemSource, SlotValue

        rng = np.random.default_rng(3)
        picks = rng.choice(len(dataset), size=len(slots) + 2, replace=False)
        # the size slot from a large item where the data say so: a small glyph hides what the other slots do
        if "size" in slots and "size" in dataset.schema.names and "large" in dataset.schema["size"].values:
            position, large = dataset.schema.position("size"), dataset.schema["size"].values.index("large")
            picks[slots.index("size")] = rng.choice(np.flatnonzero(dataset.codes[:, position] == large))
        values = {s: SlotValue(a=ItemSource(int(picks[k]))) for k, s in enumerate(slots)}
        blended = [s for s in slots if "colo" in s][:2] or slots[-2:]
        for k, s in enumerate(blended):
            values[s] = SlotValue(a=values[s].a, b=ItemSource(int(picks[len(slots) + k])), t=0.25)
        shown_before = window.composer.result
        window.composer.set_composition(Composition(values), "screenshot composition")
        # the opening image stays until the new one arrives (its first compose fits the blended slots' data)
        wait("the composed image", lambda: window.composer.result is not shown_before
             and not window.composer.composing)
        # every point, not the first sample the plot shows while the rest encode
        wait("the latent plot", lambda: window.latent_plot.point_count() > 0 and not window.latent_plot.preliminary,
             seconds=900)
        pump(1500)
        save(window.composer, "composer.png")
        save(window.latent_plot, "latent_plot.png")
        save(window, "main_window.png")

        # The Train tab: a short run, shown while it runs (unless one was already shown above).
        if not trained_here:
            run_tiny_training(args.train_steps, keep_running_for_screenshot=True)
        save(window, "training_finished.png")
    finally:
        window.close()
        window.deleteLater()
        pump(100)
        service.shutdown(wait=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
