"""The UI's one async idiom on a real tiny model: the window's exports run off the GUI thread with a progress
dialog and Cancel, the composer's Qt-free model follows what is on show, and a late answer is never shown."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressDialog, QPushButton
from ui_helpers import other_item

from studio.service.composition import ItemSource, SlotValue
from studio.ui.workers import Newest, watch

WAIT_MS = 30_000
pytestmark = pytest.mark.usefixtures("no_leaks")


def _with_pair(qtbot, window) -> None:
    composer = window.composer
    base = composer.composition.base.index
    other = other_item(window.service, base)
    with qtbot.waitSignal(composer.image_changed, timeout=WAIT_MS):
        composer.set_composition(composer.composition.with_slot(
            "letter", SlotValue(a=ItemSource(base), b=ItemSource(other))))


def test_the_composer_model_follows_the_composition_and_the_result(qtbot, open_main_window, tiny_gzs_run):
    window = open_main_window(tiny_gzs_run)
    composer = window.composer
    seen = []
    composer.model.events.result.connect(seen.append)
    _with_pair(qtbot, window)
    assert composer.model.composition == composer.composition
    qtbot.waitUntil(lambda: composer.model.result is composer.result and composer.result is not None,
                    timeout=WAIT_MS)
    assert seen and seen[-1] is composer.result
    composer.slot_widgets["letter"].activated.emit("letter")
    assert composer.model.active_slot == "letter"


def test_a_gif_export_runs_in_the_background_with_progress(qtbot, ui_service, open_main_window, tiny_gzs_run,
                                                           tmp_path, monkeypatch):
    # The straight path: on the data two neighbouring frames can be equal, and a GIF stores equal frames as one.
    monkeypatch.setattr(ui_service, "follow_data", False)
    window = open_main_window(tiny_gzs_run)
    _with_pair(qtbot, window)
    target = tmp_path / "loop.gif"
    future = window._export_in_background(str(target), "gif", 6, 1, "Exported GIF")
    assert isinstance(future, Future)
    dialogs = window.findChildren(QProgressDialog)
    assert dialogs, "a progress dialog with Cancel is up while the frames are made"
    qtbot.waitUntil(lambda: future.done() and not window.findChildren(QProgressDialog), timeout=WAIT_MS)
    with Image.open(future.result()) as im:
        assert im.n_frames == 10  # 6 there, 4 back


def test_cancelling_an_export_writes_nothing(qtbot, open_main_window, tiny_gzs_run, tmp_path):
    window = open_main_window(tiny_gzs_run)
    _with_pair(qtbot, window)
    target = tmp_path / "strip.png"
    window.service.frames_per_job = 1  # a cancel between frames comes sooner
    future = window._export_in_background(str(target), "strip", 40, 1, "Exported strip")
    dialog = window.findChildren(QProgressDialog)[-1]
    cancel = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Cancel")
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    assert future.cancelled()
    qtbot.waitUntil(lambda: not window.findChildren(QProgressDialog), timeout=WAIT_MS)  # the dialog is gone
    # a later export queues its frames on the inference worker behind the cancelled one's last frame, so once it
    # is written the cancelled one has long stopped: it wrote nothing
    later = window._export_in_background(str(tmp_path / "later.png"), "strip", 3, 1, "Exported strip")
    qtbot.waitUntil(lambda: later.done() and not window.findChildren(QProgressDialog), timeout=WAIT_MS)
    assert later.result().exists() and not target.exists()


def test_only_the_newest_request_of_a_kind_is_delivered(qtbot, qapp):
    newest = Newest()
    got = []
    old, new = Future(), Future()
    watch(old, got.append, newest=newest)
    watch(new, got.append, newest=newest)
    assert old.cancelled()  # replaced: cancelled, so long service work stops
    new.set_result("new")
    qtbot.waitUntil(lambda: got == ["new"], timeout=WAIT_MS)
    late = Future()
    watch(late, got.append, newest=newest)
    newest.cancel()
    assert late.cancelled() and got == ["new"]
