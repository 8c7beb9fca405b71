"""The one thread that owns the torch model, the threads that run long service calls, and latest-wins coalescing
of requests per channel.

A single-thread executor keeps every torch call on one thread (no locks around the model, no CUDA context
hopping). Long work (projections, direction fits, interpolations) runs on ``TaskThreads`` and is cut into short
worker jobs, so that a slider's compose never waits behind more than one of them; background jobs
(``call_when_idle``: encoding thousands of items for a plot) also wait until the worker has had no interactive job
for ``idle_gap`` seconds, so that a drag never queues behind them at all. Every long call hands its
caller a ``concurrent.futures.Future``; ``Coalescer`` is the one place where a newer request of a channel
replaces an older one.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
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

    #: seconds without an interactive job before a background job may start (a drag sends one every 16-50 ms)
    idle_gap = 0.25

    def __init__(self, name: str = "studio-inference") -> None:
        self._thread_id: int | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=self._remember)
        self._closed = False
        self._idle = threading.Condition()
        self._interactive = 0  # interactive jobs queued or running
        self._last_interactive = float("-inf")  # when the last one ended (time.monotonic)

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
        return self._submit_interactive(fn, *args, **kwargs)

    def enqueue(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Always queue, even from the worker itself (a job that schedules its successor)."""
        if self._closed:
            raise StudioError("the model service has been shut down")
        try:
            return self._submit_interactive(fn, *args, **kwargs)
        except RuntimeError:  # shut down between the check and the submit
            raise StudioError("the model service has been shut down") from None

    def _submit_interactive(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue a job that background jobs give way to: they wait while it is queued or running, and for
        ``idle_gap`` seconds after."""
        with self._idle:
            self._interactive += 1

        def run() -> T:
            try:
                return fn(*args, **kwargs)
            finally:
                self._interactive_done()

        try:
            return self._executor.submit(run)
        except BaseException:
            self._interactive_done()
            raise

    def _interactive_done(self) -> None:
        with self._idle:
            self._interactive -= 1
            self._last_interactive = time.monotonic()
            self._idle.notify_all()

    def call_when_idle(self, fn: Callable[..., T], *args: Any, cancel: CancelCheck = None) -> T:
        """Run a background job (one piece of long work) on the worker once it has been free of interactive
        jobs for ``idle_gap`` seconds, and wait for its result; inline when already on the worker. Raises
        ``Cancelled`` when ``cancel`` is set while it waits."""
        if self.on_worker:
            return fn(*args)
        with self._idle:
            while not self._closed:
                if is_cancelled(cancel):
                    raise Cancelled("cancelled")
                quiet = time.monotonic() - self._last_interactive
                if self._interactive == 0 and quiet >= self.idle_gap:
                    break
                # woken when an interactive job ends; the timeout only bounds how late a cancel is seen
                self._idle.wait(timeout=0.05 if self._interactive else max(0.005, min(0.05, self.idle_gap - quiet)))
        if self._closed:
            raise StudioError("the model service has been shut down")
        try:
            return self._executor.submit(fn, *args).result()
        except RuntimeError:  # shut down between the check and the submit
            raise StudioError("the model service has been shut down") from None

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run on the worker and wait for the result (inline when already on the worker)."""
        if self.on_worker:
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def shutdown(self, wait: bool = True) -> None:
        with self._idle:
            self._closed = True
            self._idle.notify_all()
        self._executor.shutdown(wait=wait, cancel_futures=True)


def cancel_future(future: Future) -> None:
    """Cancel a future that no executor owns and wake ``concurrent.futures.wait`` callers: ``Future.cancel`` alone
    leaves them asleep until their timeout (executors notify them through ``set_running_or_notify_cancel``)."""
    if future.cancel():
        with contextlib.suppress(RuntimeError):  # already cancelled and notified
            future.set_running_or_notify_cancel()


class TaskThreads:
    """A few threads for long service calls that mostly wait on the inference worker (projections, fits,
    interpolations), so that they never tie up a caller's thread, the GUI's least of all."""

    def __init__(self, threads: int = 2, name: str = "studio-task") -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._closed = False

    def enqueue(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        if self._closed:
            raise StudioError("the model service has been shut down")
        try:
            return self._executor.submit(fn, *args, **kwargs)
        except RuntimeError:  # shut down between the check and the submit
            raise StudioError("the model service has been shut down") from None

    def shutdown(self, wait: bool = True) -> None:
        self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)


@dataclass
class _Request:
    id: int
    work: Callable[[int], Any]
    deliver: Callable[[Any], None]
    fail: Callable[[BaseException], None]
    dropped: Callable[[], None] | None = None
    #: set when a newer request interrupts this one (``interrupt=True``); long work checks it between steps
    cancel: threading.Event | None = None


@dataclass
class _Channel:
    running: bool = False
    latest: int = 0
    pending: _Request | None = None
    current: _Request | None = None
    dropped: int = 0
    delivered: int = 0
    last_delivered: int = 0


class Coalescer:
    """Latest wins, per channel: while one job of a channel runs, a newer request replaces the queued one, so only
    the newest request is computed; a result older than one already delivered is dropped. A result computed while
    newer requests waited is still delivered, so a dragged slider shows frames during the drag, not only after it.

    ``work(request_id)`` runs on the worker; ``deliver(result)`` and ``fail(exception)`` are called on the worker
    thread too, so callers hop to their own thread (the GUI does this with a queued signal). ``submit`` is the
    same as a future: a replaced or stale request's future is cancelled, so a caller that watches futures gets
    exactly the results worth showing. ``worker`` is the inference worker or ``TaskThreads`` (anything with
    ``enqueue``).
    """

    def __init__(self, worker: InferenceWorker | TaskThreads, ids: itertools.count | None = None) -> None:
        self._worker = worker
        self._ids = ids if ids is not None else itertools.count(1)
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def request(self, channel: str, work: Callable[[int], Any], deliver: Callable[[Any], None],
                fail: Callable[[BaseException], None], dropped: Callable[[], None] | None = None,
                interrupt: threading.Event | None = None) -> int:
        """Queue ``work``; ``dropped()`` is called when it is replaced before it ran or its result is stale.
        ``interrupt``: this request's cancel event; a newer request of the channel sets the running one's."""
        replaced: _Request | None = None
        start_now = False
        with self._lock:
            request_id = next(self._ids)
            req = _Request(request_id, work, deliver, fail, dropped, interrupt)
            ch = self._channels.setdefault(channel, _Channel())
            ch.latest = request_id
            if ch.running:
                if ch.pending is not None:
                    ch.dropped += 1
                    replaced = ch.pending
                ch.pending = req
                if ch.current is not None and ch.current.cancel is not None:
                    ch.current.cancel.set()
            else:
                ch.running = start_now = True
        if replaced is not None:
            _call_dropped(replaced)
        if start_now:
            self._start(channel, req)
        return request_id

    def submit(self, channel: str, work: Callable[[int, threading.Event], T], interrupt: bool = False) -> Future[T]:
        """``request`` as a future. ``work(request_id, cancel)`` may check ``cancel`` between steps: it is set when
        the future is cancelled and, with ``interrupt``, when a newer request of the channel arrives."""
        future: Future[T] = Future()
        cancel = threading.Event()

        def deliver(result: T) -> None:
            if future.set_running_or_notify_cancel():
                future.set_result(result)

        def fail(error: BaseException) -> None:
            if isinstance(error, Cancelled) and cancel.is_set():
                cancel_future(future)
            elif future.set_running_or_notify_cancel():
                future.set_exception(error)

        future.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)
        self.request(channel, lambda rid: work(rid, cancel), deliver, fail, lambda: cancel_future(future),
                     cancel if interrupt else None)
        return future

    def stats(self, channel: str) -> dict[str, int]:
        """How many requests of a channel were delivered, and how many were replaced or dropped as stale."""
        with self._lock:
            ch = self._channels.get(channel, _Channel())
            return {"delivered": ch.delivered, "dropped": ch.dropped, "latest": ch.latest}

    def _start(self, channel: str, req: _Request) -> None:
        with self._lock:
            self._channels[channel].current = req
        try:
            self._worker.enqueue(self._run, channel, req)
        except StudioError:  # the service is shutting down: nothing runs any more, and that is no error
            with self._lock:
                ch = self._channels[channel]
                left = [r for r in (req, ch.pending) if r is not None]
                ch.running, ch.pending, ch.current = False, None, None
            for r in left:
                _call_dropped(r)

    def _run(self, channel: str, req: _Request) -> None:
        try:
            result = req.work(req.id)
            error: BaseException | None = None
        except Exception as e:  # reported through ``fail``; the worker thread must live on
            result, error = None, e
        with self._lock:
            ch = self._channels[channel]
            stale = req.id <= ch.last_delivered or (req.cancel is not None and req.cancel.is_set())
            if stale:
                ch.dropped += 1
            else:
                ch.delivered += 1
                ch.last_delivered = req.id
        if stale:
            _call_dropped(req)
        else:
            try:
                if error is None:
                    req.deliver(result)
                else:
                    req.fail(error)
            except Exception as e:  # a failing callback must not stop the channel
                req.fail(e)
        with self._lock:
            nxt = ch.pending
            ch.pending = None
            ch.current = None
            if nxt is None:
                ch.running = False
        if nxt is not None:
            self._start(channel, nxt)


def _call_dropped(req: _Request) -> None:
    if req.dropped is not None:
        with contextlib.suppress(Exception):  # a caller's bookkeeping must not stop the channel
            req.dropped()
