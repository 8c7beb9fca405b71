"""The application shell: the main window on a real model, error dialogs, settings, startup and closing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from studio.errors import StudioError
from studio.ui import errors
from studio.ui.app import newest_run_checkpoint, parse_args, startup_model
from studio.ui.errors import ErrorDialog, describe_exception
from studio.ui.main_window import MainWindow
from studio.ui.settings import MAX_RECENT, Preferences
from studio.ui.workers import run_in_background, watch

pytestmark = pytest.mark.usefixtures("no_leaks")


def close_error_dialogs() -> list[ErrorDialog]:
    dialogs = errors.reporter().dialogs()
    for dialog in dialogs:
        dialog.close()
    return dialogs



# --- errors -------------------------------------------------------------------------------------------------
def test_describe_exception_hides_the_traceback_of_user_errors():
    assert describe_exception(StudioError("models/x.json: no such checkpoint")) == (
        "models/x.json: no such checkpoint", "")
    try:
        {}["missing"]
    except KeyError as e:
        message, details = describe_exception(e)
    assert message == "KeyError: 'missing'" and "Traceback" in details and "test_ui_app.py" in details


def test_an_error_in_a_worker_shows_the_dialog(qtbot):
    reporter = errors.reporter()

    def broken() -> float:
        return 1 / 0

    with qtbot.waitSignal(reporter.reported, timeout=10_000) as shown:
        run_in_background(broken)
    message, details = shown.args
    assert message.startswith("ZeroDivisionError") and "broken" in details
    dialogs = reporter.dialogs()
    assert len(dialogs) == 1 and dialogs[0].isVisible()
    assert dialogs[0].message == message and dialogs[0].details.toPlainText() == details
    close_error_dialogs()


def test_a_user_error_shows_its_message_without_details(qtbot):
    reporter = errors.reporter()
    with qtbot.waitSignal(reporter.reported, timeout=10_000):
        run_in_background(lambda: (_ for _ in ()).throw(StudioError("fonts:nope: unknown preset")))
    (dialog,) = reporter.dialogs()
    assert dialog.message == "fonts:nope: unknown preset" and dialog.details.toPlainText() == ""
    assert not dialog.details_button.isVisible()
    # The same failure again counts up instead of stacking a second dialog.
    with qtbot.waitSignal(reporter.reported, timeout=10_000):
        reporter.report(StudioError("fonts:nope: unknown preset"))
    assert reporter.dialogs() == [dialog] and "2 times" in dialog.message_label.text()
    close_error_dialogs()


def test_uncaught_exceptions_of_threads_reach_the_dialog(qtbot):
    reporter = errors.reporter()
    reporter.install()
    try:
        with qtbot.waitSignal(reporter.reported, timeout=10_000) as shown:
            thread = threading.Thread(target=lambda: [][1], name="background-sum")
            thread.start()
            thread.join()
    finally:
        reporter.uninstall()
    assert shown.args[0].startswith("IndexError")
    (dialog,) = reporter.dialogs()
    assert "background-sum" in dialog.windowTitle()
    close_error_dialogs()


def test_watch_delivers_results_on_the_gui_thread_and_errors_to_the_handler(qtbot):
    from concurrent.futures import ThreadPoolExecutor

    seen: list = []
    with ThreadPoolExecutor(1) as pool:
        watch(pool.submit(lambda: threading.current_thread().name), seen.append)
        watch(pool.submit(lambda: 1 / 0), on_error=lambda e: seen.append(type(e).__name__))
        qtbot.waitUntil(lambda: len(seen) == 2, timeout=10_000)
    assert seen[0] != threading.current_thread().name and "ZeroDivisionError" in seen


def test_errors_of_a_closed_widgets_jobs_are_dropped_not_shown(qtbot):
    """A window closed while its projection was failing must not pop up a dialog about it; a job without a handler
    still reports."""
    from concurrent.futures import ThreadPoolExecutor

    from PySide6.QtWidgets import QWidget

    gate = threading.Event()
    owner = QWidget()
    seen: list = []
    with ThreadPoolExecutor(2) as pool:
        def fail_later() -> None:
            gate.wait(10)
            raise RuntimeError("stale projection")

        watch(pool.submit(fail_later), on_error=seen.append, owner=owner)
        owner.deleteLater()
        qtbot.waitUntil(lambda: not _alive(owner), timeout=5_000)
        gate.set()
        watch(pool.submit(lambda: 1 / 0))              # no handler: the dialog is the handler
        qtbot.waitUntil(lambda: bool(errors.reporter().dialogs()), timeout=10_000)
        qtbot.wait(200)
    shown = close_error_dialogs()
    assert not seen and len(shown) == 1 and "division" in shown[0].message


def _alive(widget) -> bool:
    from shiboken6 import isValid

    return isValid(widget)


def test_many_calls_from_a_plain_thread_arrive_in_order_on_the_gui_thread(qtbot):
    """Training progress arrives like this; a per-call QObject hop (superqt's) crashed under such a load."""
    from studio.ui.workers import gui_callback

    received: list[int] = []
    gui_thread = threading.current_thread()
    threads_seen: set[threading.Thread] = set()

    def on_event(n: int) -> None:
        threads_seen.add(threading.current_thread())
        received.append(n)

    relay = gui_callback(on_event)
    sender = threading.Thread(target=lambda: [relay(n) for n in range(3000)], name="sender")
    sender.start()
    qtbot.waitUntil(lambda: len(received) == 3000, timeout=60_000)
    sender.join()
    assert received == list(range(3000)) and threads_seen == {gui_thread}


def test_emitting_many_signals_from_python_cannot_exhaust_true():
    """PySide6 6.12's emit() returns True without a reference; studio.ui pins True and False (see pyside_fixes)."""
    import sys

    from PySide6.QtCore import QObject, Signal

    import studio.ui  # noqa: F401  (applies the fix on import)

    class Emitter(QObject):
        ping = Signal()

    emitter = Emitter()
    before = sys.getrefcount(True)
    for _ in range(20_000):  # more than True's whole natural reference count in this process
        emitter.ping.emit()
    assert sys.getrefcount(True) > 1_000_000 or sys.getrefcount(True) >= before


# --- settings and startup --------------------------------------------------------------------------------------------
def test_settings_keep_recent_files_and_preferences(ui_settings):
    for i in range(MAX_RECENT + 3):
        ui_settings.add_recent("models", f"/runs/{i}/last.safetensors")
    ui_settings.add_recent("models", "/runs/4/last.safetensors")
    recent = ui_settings.recent("models")
    assert len(recent) == MAX_RECENT and recent[0] == "/runs/4/last.safetensors" and len(set(recent)) == MAX_RECENT
    ui_settings.set_preferences(Preferences(device="cpu", thumbnail_size=96, reopen_last=False))
    ui_settings.sync()
    prefs = ui_settings.preferences()
    assert (prefs.device, prefs.thumbnail_size, prefs.reopen_last) == ("cpu", 96, False)
    ui_settings.store.setValue("preferences/thumbnail_size", "huge")
    assert ui_settings.preferences().thumbnail_size == Preferences().thumbnail_size


def test_startup_opens_the_newest_run_unless_told_otherwise(tmp_path):
    runs = tmp_path / "runs"
    assert newest_run_checkpoint(runs) is None
    for name, age in (("old", 100), ("new", 0)):
        ckpt = runs / name / "checkpoints" / "last.safetensors"
        ckpt.parent.mkdir(parents=True)
        ckpt.write_bytes(b"x")
        ckpt.with_suffix(".json").write_text("{}")
        os.utime(ckpt, (time.time() - age, time.time() - age))
    assert newest_run_checkpoint(runs).parent.parent.name == "new"
    assert startup_model("/some/model.safetensors", "", True, runs) == Path("/some/model.safetensors")
    old = runs / "old" / "checkpoints" / "last.safetensors"
    assert startup_model(None, str(old), True, runs) == old
    chosen = startup_model(None, str(old), False, runs)
    assert chosen is not None and chosen.exists()
    assert parse_args(["attribute-studio", "--model", "m.safetensors", "-platform", "offscreen"]).model == \
        "m.safetensors"


# --- the main window --------------------------------------------------------------------------------------------------
def test_main_window_opens_with_model_and_dataset(qtbot, ui_service, ui_settings, tiny_gzs_run):
    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.show()
    window.start_session(tiny_gzs_run)
    qtbot.waitUntil(lambda: ui_service.model is not None and ui_service.dataset is not None, timeout=60_000)
    qtbot.waitUntil(lambda: window.browser.visible_count() == 240, timeout=20_000)
    qtbot.waitUntil(lambda: window.model_label.text().startswith("Model: GZS-Net"), timeout=10_000)
    assert window.dataset_label.text() == "Dataset: fonts:tiny,res=32 · 240 items"
    assert window.device_label.text() == "Device: cpu"
    assert set(window.composer.slot_names()) == {s.name for s in ui_service.model.slots}
    assert ui_settings.recent("models")[0] == str(ui_service.model.path)
    labels = [a.text() for a in window.dataset_menu.actions() if a.text()]
    assert "Fonts (small)" in labels and "&Folder…" in labels

    # A browser item reaches a composer slot (the context menu's "Put into slot").
    slot = window.composer.slot_names()[0]
    window.browser.slot_requested.emit(slot, 17)
    assert window.composer.composition.slot(slot).a is not None
    assert window.composer.undo_stack.count() == 1


def test_a_project_given_on_the_command_line_opens_with_the_model_it_names(qtbot, ui_service, ui_settings,
                                                                          tiny_gzs_run, tmp_path):
    """`attribute-studio FILE.studio.json` (the .desktop file's %F): the project's model loads, then the project."""
    from studio.service.composition import Composition, ItemSource, Project, SlotValue
    from studio.ui.app import open_at_start

    checkpoint = tiny_gzs_run / "checkpoints" / "last.safetensors"
    project = tmp_path / "letters.studio.json"
    Project(Composition({"letter": SlotValue(a=ItemSource(17))}), checkpoint=str(checkpoint)).save(project)
    assert parse_args(["attribute-studio", str(project), "--device", "cpu"]).files == [str(project)]
    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.show()
    open_at_start(window, ui_service, project, None, None)
    qtbot.waitUntil(lambda: window.composer.composition.slot("letter").a == ItemSource(17), timeout=60_000)
    assert Path(ui_service.model.path) == checkpoint and ui_service.dataset is not None
    assert ui_settings.recent("projects")[0] == str(project)


def test_main_window_without_a_model_prompts_to_train(qtbot, ui_service, ui_settings):
    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.start_session(None, "fonts:tiny,res=32", prompt=False)
    qtbot.waitUntil(lambda: window.browser.visible_count() == 240, timeout=20_000)
    assert window.model_label.text() == "Model: none"
    box = window.prompt_to_train()
    assert "no trained model" in box.text()
    go = next(b for b in box.buttons() if b.text() == "Go to Training")
    go.click()
    assert window.tabs.currentWidget() is window.training


def test_layout_and_recent_files_persist(qtbot, ui_service, ui_settings):
    first = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(first)
    first.show()
    first.tabs.setCurrentIndex(1)
    first.show_plot_action.setChecked(False)
    first.compose_splitter.setSizes([100, 500, 300])
    state = first.compose_splitter.saveState()
    first.close()
    assert ui_settings.bytes_value("window/geometry") is not None  # (offscreen screens clamp sizes: not compared)
    second = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(second)
    assert second.tabs.currentIndex() == 1 and not second.show_plot_action.isChecked()
    assert second.compose_splitter.saveState() == state


class AnsweringWindow(MainWindow):
    """Answers the close question without a modal box (QMessageBox.exec cannot be clicked from a test)."""

    answers: list[str] = []

    def ask_about_running_job(self) -> str:
        return self.answers.pop(0)


def start_long_job(window: MainWindow, qtbot, runs: Path) -> None:
    tab = window.training
    tab.runs_dir = runs
    tab.set_dataset("fonts:tiny")
    tab.resolution_combo.setCurrentIndex(tab.resolution_combo.findData(32))
    tab.steps_spin.setValue(100_000)
    tab.device_combo.setCurrentText("cpu")
    for name, value in {"width": 8, "hidden": 64, "residual_blocks": 1, "latent_dim": 20}.items():
        tab.config_form.set_value(name, value)
    with qtbot.waitSignal(tab.progressed, timeout=120_000):
        tab.start()
    qtbot.waitUntil(lambda: window.activity_label.text().startswith("Training: step"), timeout=10_000)


def test_closing_with_a_running_job_asks_and_stops_it(qtbot, ui_service, ui_settings, tmp_path):
    window = AnsweringWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.show()
    start_long_job(window, qtbot, tmp_path / "runs")
    tab = window.training

    window.answers[:] = ["cancel"]
    window.close()
    assert window.isVisible() and tab.job.running
    window.answers[:] = ["stop"]
    with qtbot.waitSignal(tab.job_ended, timeout=120_000):
        window.close()
        assert not window.isVisible()
    assert tab.job.state == "finished" and tab.job.result.stopped
    assert Path(tab.job.result.checkpoint).exists()


def test_closing_can_keep_a_job_running_in_the_background(qtbot, ui_service, ui_settings, tmp_path):
    window = AnsweringWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.show()
    start_long_job(window, qtbot, tmp_path / "runs")
    tab = window.training
    window.answers[:] = ["background"]
    window.close()
    assert not window.isVisible()
    step = tab.job.history[-1].step
    qtbot.waitUntil(lambda: tab.job.history[-1].step > step, timeout=60_000)  # it goes on training
    with qtbot.waitSignal(tab.job_ended, timeout=120_000):
        tab.job.stop()
    assert tab.job.state == "finished"


def test_opening_shapes_with_the_fonts_model_brings_the_shipped_shapes_model(qtbot, ui_service, ui_settings):
    """A first-time user who picks Dataset > Shapes gets the shipped Shapes model with it, not a refusal."""
    from studio.paths import shipped_models

    shipped = {p.parent.name: p for p in shipped_models()}
    assert {"fonts-gzs", "shapes-gzs"} <= set(shipped)
    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.start_session(shipped["fonts-gzs"], "fonts:tiny", prompt=False)
    qtbot.waitUntil(lambda: ui_service.model is not None and ui_service.dataset is not None, timeout=60_000)
    qtbot.waitUntil(lambda: "letter" in window.composer.slot_names(), timeout=30_000)  # filled on the next event

    window.open_dataset("shapes:tiny")
    qtbot.waitUntil(lambda: Path(ui_service.model.path) == shipped["shapes-gzs"], timeout=60_000)
    qtbot.waitUntil(lambda: ui_service.dataset is not None and ui_service.dataset.spec.startswith("shapes:tiny"),
                    timeout=30_000)
    qtbot.waitUntil(lambda: "shape" in window.composer.slot_names(), timeout=30_000)
    assert "letter" not in window.composer.slot_names()
    assert not [d.message for d in close_error_dialogs()]

    # Back to Fonts: the Fonts model returns; a folder or the same kind never swaps the model.
    window.open_dataset("fonts:tiny")
    qtbot.waitUntil(lambda: Path(ui_service.model.path) == shipped["fonts-gzs"], timeout=60_000)
    assert window._shipped_model_for("fonts:small") is None
    assert window._shipped_model_for("/some/folder") is None


def test_training_form_is_remembered_between_launches(qtbot, ui_service, ui_settings):
    first = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(first)
    tab = first.training
    tab.set_method("gzs")
    tab.set_dataset("shapes:small")
    tab.apply_recipe("cpu")
    tab.config_form.set_value("width", 20)
    tab.config_form.set_value("latent_sizes", (4, 4, 4, 4, 4, 4, 4))
    tab.seed_spin.setValue(7)
    tab.out_edit.setText("/somewhere/run")  # belongs to one run: not remembered
    wanted = tab.settings()
    first.close()
    second = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(second)
    again = second.training.settings()
    assert (again.method, again.dataset, again.seed, again.budget_minutes, again.lr_decay, again.batch) == (
        wanted.method, wanted.dataset, 7, wanted.budget_minutes, "cosine", wanted.batch)
    assert again.method_options == wanted.method_options and again.method_options["width"] == 20
    assert second.training.recipe_combo.currentData() == "cpu" and second.training.out_edit.text() == ""
    second.close()
    ui_settings.set_value("training/form", "{not json")  # a damaged entry: the form starts from its defaults
    third = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(third)
    assert third.training.seed_spin.value() == 0
    auto = third.training.auto_recipe()  # the defaults are what `studio train` would take on this device
    assert third.training.recipe_combo.currentData() == auto
    fresh = third.training.settings()
    assert fresh.budget_minutes == (20.0 if auto == "cpu" else None) and fresh.method_options.get("width") != 20
