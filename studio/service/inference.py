"""The one thread that owns the torch model, and latest-wins coalescing of requests per channel.

A single-thread executor keeps every torch call on one thread (no locks around the model, no CUDA context
hopping). Long work (projections, direction fits) is cut into short jobs so that a slider's compose never waits
behind more than one of them.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from studio.errors import StudioError

T = TypeVar("T")

CancelCheck = Callable[[], bool] | threading.Event | None


class Cancelled(StudioError):
    """Long work stopped because its caller asked for it; not a failure."""


def is_cancelled(cancel: CancelCheck) -> bool:
    """Accept either a ``threading.Event`` or a plain callable, so GUI workers and scripts can both cancel."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


class InferenceWorker:
    """A single worker thread; ``call`` from the worker itself runs inline so nested service calls never
    deadlock."""

    def __init__(self, name: str = "studio-inference") -> None:
        self._thread_id: int | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=self._remember)
        self._closed = False

    def _remember(self) -> None:
        self._thread_id = threading.get_ident()

    @property
    def on_worker(self) -> bool:
        return self._thread_id is not None and threading.get_ident() == self._thread_id

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        if self._closed:
            raise StudioError("the model service has been shut down")
        if self.on_worker:
            done: Future[T] = Future()
            try:
                done.set_result(fn(*args, **kwargs))
            except BaseException as e:
                done.set_exception(e)
            return done
        return self._executor.submit(fn, *args, **kwargs)

    def enqueue(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Always queue, even from the worker itself (a job that schedules its successor)."""
        if self._closed:
            raise StudioError("the model service has been shut down")
        try:
            return self._executor.submit(fn, *args, **kwargs)
        except RuntimeError:  # shut down between the check and the submit
            raise StudioError("the model service has been shut down") from None

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run on the worker and wait for the result (inline when already on the worker)."""
        if self.on_worker:
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def shutdown(self, wait: bool = True) -> None:
        self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)


@dataclass
class _Channel:
    running: bool = False
    latest: int = 0
    pending: tuple[int, Callable[[int], Any], Callable[[Any], None], Callable[[BaseException], None]] | None = None
    dropped: int = 0
    delivered: int = 0
    last_delivered: int = 0


class Coalescer:
    """Latest wins, per channel: while one job of a channel runs, a newer request replaces the queued one, so only
    the newest request is computed; a result older than one already delivered is dropped. A result computed while
    newer requests waited is still delivered, so a dragged slider shows frames during the drag, not only after it.

    ``work(request_id)`` runs on the worker; ``deliver(result)`` and ``fail(exception)`` are called on the worker
    thread too, so callers hop to their own thread (the GUI does this with a queued signal).
    """

    def __init__(self, worker: InferenceWorker, ids: itertools.count | None = None) -> None:
        self._worker = worker
        self._ids = ids if ids is not None else itertools.count(1)
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def request(self, channel: str, work: Callable[[int], Any], deliver: Callable[[Any], None],
                fail: Callable[[BaseException], None]) -> int:
        with self._lock:
            request_id = next(self._ids)
            ch = self._channels.setdefault(channel, _Channel())
            ch.latest = request_id
            if ch.running:
                if ch.pending is not None:
                    ch.dropped += 1
                ch.pending = (request_id, work, deliver, fail)
                return request_id
            ch.running = True
        self._start(channel, request_id, work, deliver, fail)
        return request_id

    def stats(self, channel: str) -> dict[str, int]:
        """How many requests of a channel were delivered, and how many were replaced or dropped as stale."""
        with self._lock:
            ch = self._channels.get(channel, _Channel())
            return {"delivered": ch.delivered, "dropped": ch.dropped, "latest": ch.latest}

    def _start(self, channel: str, request_id: int, work: Callable[[int], Any], deliver: Callable[[Any], None],
               fail: Callable[[BaseException], None]) -> None:
        try:
            self._worker.enqueue(self._run, channel, request_id, work, deliver, fail)
        except StudioError:  # the service is shutting down: nothing runs any more, and that is no error
            with self._lock:
                self._channels[channel].running = False
                self._channels[channel].pending = None

    def _run(self, channel: str, request_id: int, work: Callable[[int], Any], deliver: Callable[[Any], None],
             fail: Callable[[BaseException], None]) -> None:
        try:
            result = work(request_id)
            error: BaseException | None = None
        except Exception as e:  # reported through ``fail``; the worker thread must live on
            result, error = None, e
        with self._lock:
            ch = self._channels[channel]
            stale = request_id <= ch.last_delivered
            if stale:
                ch.dropped += 1
            else:
                ch.delivered += 1
                ch.last_delivered = request_id
        if not stale:
            try:
                if error is None:
                    deliver(result)
                else:
                    fail(error)
            except Exception as e:  # a failing callback must not stop the channel
                fail(e)
        with self._lock:
            nxt = ch.pending
            ch.pending = None
            if nxt is None:
                ch.running = False
        if nxt is not None:
            self._start(channel, *nxt)
