"""``attribute-studio``: start the desktop app, ready to use.

It opens with the default model (a shipped one in models/, else the user's newest run) and the data it was
trained on, or with the built-in Fonts and a prompt to train a model. It runs Qt's own event loop: long service
calls return futures, which the UI watches (``studio.ui.workers.watch``), so nothing needs an asyncio loop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from studio import APP_ID, __version__
from studio.errors import StudioError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="attribute-studio", description="Attribute Studio desktop app")
    parser.add_argument("files", nargs="*", metavar="PROJECT",
                        help="a project (.studio.json) to open, with the model it names (what the .desktop file's "
                             "%%F passes)")
    parser.add_argument("--model", help="checkpoint (.safetensors) or run folder to open")
    parser.add_argument("--dataset", help="dataset spec to open, e.g. fonts:small or a folder path")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where models run")
    parser.add_argument("--smoke-test", action="store_true",
                        help="open the main window with the default model (or --model), compose one image, print a "
                             "summary and exit (0 on success); settings and caches go to a temporary folder")
    parser.add_argument("--smoke-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="with --smoke-test: give up and exit non-zero after this long (default 120)")
    parser.add_argument("--version", action="version", version=f"Attribute Studio {__version__}")
    args, _qt_args = parser.parse_known_args(argv[1:])
    return args


def newest_run_checkpoint(runs_dir: Path) -> Path | None:
    """The newest ``<run>/checkpoints/last.safetensors`` under ``runs_dir``."""
    if not runs_dir.is_dir():
        return None
    found = [p for p in runs_dir.glob("*/checkpoints/last.safetensors") if p.with_suffix(".json").exists()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def project_model(path: str | Path) -> Path | None:
    """The checkpoint a project names, when it exists (None for an unreadable project: opening it says why)."""
    from studio.service.composition import Project

    try:
        named = Project.load(path).checkpoint
    except StudioError:
        return None
    return Path(named).expanduser() if named and Path(named).expanduser().exists() else None


def open_at_start(window, service, project: Path, model: Path | None, dataset: str | None) -> None:
    """Open ``project`` (from the command line): with the model it names, else once the usual model is in."""
    from studio.ui.workers import gui_callback

    if project_model(project) is not None:
        window.open_project(project)  # loads the project's model (and its dataset), then the composition
        return

    def loaded(*_args) -> None:
        service.events.model_changed.disconnect(relay)
        window.open_project(project)

    relay = gui_callback(loaded, window)
    service.events.model_changed.connect(relay)
    window.start_session(model, dataset)
    if model is None:  # no model will arrive: the project says what it needs (or why it cannot open)
        loaded()


def startup_model(requested: str | None, last_session: str, reopen_last: bool, runs_dir: Path) -> Path | None:
    """Which model the app opens: the one asked for, the last session's, a shipped one, the newest run."""
    from studio.paths import default_model, shipped_models

    if requested:
        return Path(requested).expanduser()
    if reopen_last and last_session and Path(last_session).exists():
        return Path(last_session)
    shipped = default_model("fonts")
    if shipped is not None and shipped in shipped_models():
        return shipped
    candidates = [p for p in (shipped, newest_run_checkpoint(runs_dir)) if p is not None and p.exists()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def keep_splash_until_first_image(splash, window, service, longest_ms: int = 20_000) -> None:
    """Keep the splash over the window, saying what the service is doing (loading the model, opening the dataset),
    until the composer shows its first image, so the start is never a blank window; gone after ``longest_ms``
    or at the first click anyway."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtGui import QColor

    from studio.ui.workers import gui_callback

    def say(text: str) -> None:
        model = service.model
        if not text and (model is None or not getattr(model, "can_encode", True)):
            done()  # idle with nothing to compose (no model yet, or one that cannot encode): the window says why
        elif text and splash.isVisible():
            splash.showMessage(f"Attribute Studio: {text}…", Qt.AlignmentFlag.AlignBottom
                               | Qt.AlignmentFlag.AlignHCenter, QColor(40, 40, 40))

    relay = gui_callback(say, splash)

    def done(*_args) -> None:
        service.events.busy.disconnect(relay, missing_ok=True)
        if splash.isVisible():
            splash.finish(window)

    service.events.busy.connect(relay)
    window.composer.image_changed.connect(done)
    window.composer.status_changed.connect(lambda text: done() if text else None)  # an error says it instead
    QTimer.singleShot(longest_ms, done)
    say("opening the model")


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv)
    watchdog = None
    if args.smoke_test:
        from studio.ui.smoke import Watchdog

        watchdog = Watchdog(args.smoke_timeout, lambda: "starting the app")
        watchdog.start()

    from studio.ui.platform_check import check_platform

    hint = check_platform()  # before Qt: a missing X11 library would only abort with "could not load xcb"
    if hint:
        print(hint, file=sys.stderr, flush=True)

    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPixmap
    from PySide6.QtWidgets import QApplication, QSplashScreen

    from studio.paths import APP_NAME, icon_path

    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("Attribute Studio")
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(QIcon(str(icon_path(256))))
    # Closing the window with a training job kept in the background must not end the process.
    app.setQuitOnLastWindowClosed(False)

    # PyTorch takes seconds to import: say so at once instead of showing nothing.
    splash_image = QPixmap(str(icon_path(256)))
    splash = QSplashScreen(splash_image if not splash_image.isNull() else QPixmap(256, 256))
    splash.show()
    splash.showMessage("Attribute Studio: starting PyTorch…", Qt.AlignmentFlag.AlignBottom
                       | Qt.AlignmentFlag.AlignHCenter, QColor(40, 40, 40))
    QGuiApplication.processEvents()

    from studio.service.factory import create_service
    from studio.ui import errors
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import Settings

    reporter = errors.reporter()
    reporter.install()
    scratch = tempfile.TemporaryDirectory(prefix="attribute-studio-smoke-") if args.smoke_test else None
    if scratch is not None:  # a smoke test must leave the user's settings and caches as they were
        settings = Settings(QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat))
    else:
        settings = Settings()
    prefs = settings.preferences()
    cache_dir = Path(scratch.name) / "cache" if scratch is not None else None
    device_problem: StudioError | None = None
    try:
        service = create_service(device=args.device or prefs.device, cache_dir=cache_dir)
    except StudioError as e:
        device_problem = e
        service = create_service(device="auto", cache_dir=cache_dir)

    window = MainWindow(service, settings, quit_app_on_close=True)
    window.show()
    keep_splash_until_first_image(splash, window, service)
    smoke = None
    if args.smoke_test:
        from studio.paths import default_model
        from studio.ui.smoke import SmokeTest

        model = Path(args.model).expanduser() if args.model else default_model("fonts")
        smoke = SmokeTest(window, model, args.dataset, started)
        watchdog.describe = smoke.describe
        if device_problem is not None:
            smoke.fail(f"{device_problem}")
        else:
            QTimer.singleShot(0, smoke.start)
    else:
        if device_problem is not None:
            reporter.report(StudioError(f"{device_problem} (using {service.device} instead)"))
        model = startup_model(args.model, settings.value("session/model", ""), prefs.reopen_last,
                              prefs.effective_runs_dir())
        session_dataset = settings.value("session/dataset", "") if prefs.reopen_last else ""
        if args.files:
            open_at_start(window, service, Path(args.files[0]).expanduser(), model,
                          args.dataset or session_dataset or None)
        else:
            window.start_session(model, args.dataset or session_dataset or None)
        QTimer.singleShot(2000, service.warm_up_training)
    try:
        app.exec()
    finally:
        service.shutdown(wait=True)
        reporter.uninstall()
        if scratch is not None:
            scratch.cleanup()
        if watchdog is not None:
            watchdog.cancel()
    return smoke.exit_code if smoke is not None else 0


if __name__ == "__main__":
    raise SystemExit(main())
