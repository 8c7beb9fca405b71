"""Run work off the GUI thread and get its outcome back on the GUI thread, safely.

One idiom covers the app: every long service call returns a ``concurrent.futures.Future``, and the UI watches
it with ``watch(future, ...)``, which delivers ``on_result`` / ``on_error`` on the GUI thread and drops the
delivery if ``owner`` (a widget) has been deleted meanwhile, so a late result never touches a dead widget.
Latest wins in one place, the service (``Coalescer``): a request replaced by a newer one of its channel has its
future cancelled, and a cancelled future delivers nothing. Errors without an ``on_error`` go to the error
dialog. ``gui_callback`` is the same hop for plain-Python events (psygnal, progress callbacks);
``run_in_background`` runs a UI-side function on a Qt pool and watches its future the same way.

The hop to the GUI thread is one long-lived dispatcher object and a queued signal. superqt's
``ensure_main_thread`` makes a new QObject per call, created on the calling thread and moved to the GUI thread;
called from plain Python threads many times a second (training progress), the last reference to such an object
can drop on the worker while the GUI thread is still dispatching to it, which crashed the app here (segfault).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

from PySide6.QtCore import QCoreApplication, QObject, QRunnable, Qt, QThread, QThreadPool, Signal, Slot
from shiboken6 import isValid

from studio.ui import errors

T = TypeVar("T")
ResultHandler = Callable[[Any], None]
ErrorHandler = Callable[[BaseException], None]


class _GuiDispatcher(QObject):
    """Lives on the GUI thread for the whole session; ``posted`` carries calls to it from any thread."""

    posted = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.posted.connect(self._run, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _run(self, call: Callable[[], Any]) -> None:
        call()


_dispatcher: _GuiDispatcher | None = None
_dispatcher_lock = threading.Lock()


def _gui_dispatcher() -> _GuiDispatcher:
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None or not isValid(_dispatcher):
            app = QCoreApplication.instance()
            if app is None:
                raise RuntimeError("no QApplication: create one before delivering results to the GUI")
            dispatcher = _GuiDispatcher()
            if dispatcher.thread() is not app.thread():
                dispatcher.moveToThread(app.thread())
            _dispatcher = dispatcher
        return _dispatcher


def call_on_gui_thread(fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn(*args)`` on the GUI thread: at once when already there, else queued (in call order)."""
    app = QCoreApplication.instance()
    if app is not None and QThread.currentThread() is app.thread():
        fn(*args)
        return
    _gui_dispatcher().posted.emit(lambda: fn(*args))


def gui_callback(fn: Callable[..., Any], owner: QObject | None = None) -> Callable[..., None]:
    """A thread-safe wrapper of ``fn`` for plain-Python events (psygnal, service callbacks): it runs ``fn`` on
    the GUI thread, and not at all once ``owner`` is gone."""

    def relay(*args: Any) -> None:
        call_on_gui_thread(_call_if_alive, owner, fn, args)

    return relay


def _call_if_alive(owner: QObject | None, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    if owner is not None and not isValid(owner):
        return
    fn(*args)


def watch(future: Future, on_result: ResultHandler | None = None, on_error: ErrorHandler | None = None,
          owner: QObject | None = None, on_cancelled: Callable[[], None] | None = None,
          newest: Newest | None = None) -> Future:
    """Deliver a future's result or exception on the GUI thread, unless ``owner`` is gone by then or, with
    ``newest``, a newer request of the same kind has replaced it (the replaced future is cancelled). A cancelled
    future (the caller gave up, or the service's latest-wins replaced the request) delivers only ``on_cancelled``."""
    if newest is not None:
        newest.replace(future)

    def current() -> bool:
        return newest is None or newest.future is future

    def done(f: Future) -> None:
        if f.cancelled():
            if on_cancelled is not None:
                call_on_gui_thread(_call_if_alive, owner, on_cancelled, ())
            return
        exc = f.exception()
        if exc is not None:
            call_on_gui_thread(lambda: current() and _deliver_error(owner, on_error, exc))
        elif on_result is not None:
            call_on_gui_thread(lambda: current() and _call_if_alive(owner, on_result, (f.result(),)))

    future.add_done_callback(done)
    return future


class Newest:
    """The newest request of one kind (a panel's projection, say). ``watch(future, ..., newest=this)`` makes the
    future the newest, cancels the one it replaces (long service work stops between its steps) and delivers an
    outcome only while its future is still the newest, so a late answer to an old question is never shown."""

    def __init__(self) -> None:
        self.future: Future | None = None

    def replace(self, future: Future | None) -> None:
        old, self.future = self.future, future
        if old is not None and old is not future:
            old.cancel()

    def cancel(self) -> None:
        """Forget (and cancel) the newest request: nothing of this kind is delivered until the next one."""
        self.replace(None)

    def is_newest(self, future: Future) -> bool:
        return future is self.future


def _deliver_error(owner: QObject | None, on_error: ErrorHandler | None, exc: BaseException) -> None:
    if isinstance(exc, CancelledError):
        return
    if on_error is None:
        errors.report(exc)
    elif owner is None or isValid(owner):
        on_error(exc)
    # else: the widget that would have handled it is gone (a closed window's stale projection, say), and with it
    # the question the job answered; a dialog about it would only puzzle the user.


class _Job(QRunnable):
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], future: Future):
        super().__init__()
        self._fn, self._args, self._kwargs, self._future = fn, args, kwargs, future

    def run(self) -> None:
        if not self._future.set_running_or_notify_cancel():
            return
        try:
            result = self._fn(*self._args, **self._kwargs)
        except BaseException as exc:  # delivered to the GUI thread, never lost
            self._future.set_exception(exc)
        else:
            self._future.set_result(result)


def run_in_background(fn: Callable[..., T], *args: Any, on_result: ResultHandler | None = None,
                      on_error: ErrorHandler | None = None, owner: QObject | None = None,
                      pool: QThreadPool | None = None, **kwargs: Any) -> Future:
    """Run ``fn(*args, **kwargs)`` on a Qt thread pool; returns its Future, outcome delivered via ``watch``."""
    future: Future = Future()
    watch(future, on_result, on_error, owner)
    (pool or QThreadPool.globalInstance()).start(_Job(fn, args, kwargs, future))
    return future
