"""``attribute-studio``: start the desktop app, ready to use.

It opens with the default model (a shipped one in models/, else the user's newest run) and the data it was
trained on, or with the built-in Fonts and a prompt to train a model. The Qt event loop is qasync's, so UI code
may ``await`` the service while torch work stays on the service's threads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from pathlib import Path

from studio import APP_ID, __version__
from studio.errors import StudioError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="attribute-studio", description="Attribute Studio desktop app")
    parser.add_argument("--model", help="checkpoint (.safetensors) or run folder to open")
    parser.add_argument("--dataset", help="dataset spec to open, e.g. fonts:small or a folder path")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where models run")
    parser.add_argument("--version", action="version", version=f"Attribute Studio {__version__}")
    args, _qt_args = parser.parse_known_args(argv[1:])
    return args


def newest_run_checkpoint(runs_dir: Path) -> Path | None:
    """The newest ``<run>/checkpoints/last.safetensors`` under ``runs_dir``."""
    if not runs_dir.is_dir():
        return None
    found = [p for p in runs_dir.glob("*/checkpoints/last.safetensors") if p.with_suffix(".json").exists()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


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


def warm_up_in_background() -> threading.Thread:
    """Import what the first training job would import lazily (torch.optim pulls in torch._dynamo, seconds of
    module loading that hold the GIL in long stretches), while the app starts, not when the user presses Start."""

    def work() -> None:
        with contextlib.suppress(Exception):  # only a head start; the job imports it again if this failed
            import torch._dynamo  # noqa: F401

    thread = threading.Thread(target=work, name="studio-warm-up", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv)

    from PySide6.QtCore import Qt, QTimer
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

    import qasync

    from studio.service.model_service import ModelService
    from studio.ui import errors
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import Settings

    reporter = errors.reporter()
    reporter.install()
    settings = Settings()
    prefs = settings.preferences()
    device_problem: StudioError | None = None
    try:
        service = ModelService(device=args.device or prefs.device)
    except StudioError as e:
        device_problem = e
        service = ModelService(device="auto")

    window = MainWindow(service, settings, quit_app_on_close=True)
    window.show()
    splash.finish(window)
    if device_problem is not None:
        reporter.report(StudioError(f"{device_problem} (using {service.device} instead)"))
    model = startup_model(args.model, settings.value("session/model", ""), prefs.reopen_last,
                          prefs.effective_runs_dir())
    session_dataset = settings.value("session/dataset", "") if prefs.reopen_last else ""
    window.start_session(model, args.dataset or session_dataset or None)

    QTimer.singleShot(2000, warm_up_in_background)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    quitting = asyncio.Event()
    app.aboutToQuit.connect(quitting.set)
    try:
        with loop:
            loop.run_until_complete(quitting.wait())
    finally:
        service.shutdown(wait=True)
        reporter.uninstall()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
