"""Blocking model-service calls handed out as futures (on a short-lived thread, or on the task threads with a
cancel flag), the 'busy' notices that long work sends, and the one line a failure nobody waits on becomes.

Apart from ``model_service`` so that the plumbing between threads and futures reads on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from studio.errors import StudioError
from studio.service.inference import Cancelled, TaskThreads, cancel_future


def in_thread(fn: Callable[..., Any], *args: Any) -> Future:
    """Run blocking service calls (which themselves hop to the worker for torch) on a short-lived thread."""
    future: Future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as e:
            future.set_exception(e)

    threading.Thread(target=run, name=f"studio-{fn.__name__}", daemon=True).start()
    return future


def cancellable(tasks: TaskThreads, fn: Callable[[threading.Event], Any]) -> Future:
    """Run ``fn(cancel)`` on ``tasks``; cancelling the future sets ``cancel`` (long work stops between worker
    jobs), and a ``Cancelled`` raised after that cancels the future rather than failing it."""
    future: Future = Future()
    cancel = threading.Event()
    future.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)

    def run() -> None:
        try:
            result = fn(cancel)
        except Cancelled:
            if cancel.is_set():
                cancel_future(future)
            elif future.set_running_or_notify_cancel():
                future.set_exception(Cancelled("cancelled"))
        except BaseException as e:
            if future.set_running_or_notify_cancel():
                future.set_exception(e)
        else:
            if future.set_running_or_notify_cancel():
                future.set_result(result)

    tasks.enqueue(run)
    return future


class BusySpans:
    """Nested spans of long work: ``emit(text)`` as each starts, ``emit('')`` when the last one open ends."""

    def __init__(self, emit: Callable[[str], Any], lock: threading.RLock) -> None:
        self._emit = emit
        self._lock = lock
        self._depth = 0

    @contextmanager
    def span(self, text: str) -> Iterator[None]:
        with self._lock:
            self._depth += 1
        self._emit(text)
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                idle = self._depth == 0
            if idle:
                self._emit("")


def message(e: BaseException) -> str:
    return str(e) if isinstance(e, StudioError) else f"{type(e).__name__}: {e}"
