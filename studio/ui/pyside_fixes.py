"""Work-arounds for defects of the Qt binding that would crash the app; each checks that the defect is present.

PySide6 6.12's ``SignalInstance.emit()`` returns ``True`` without a new reference. On CPython before 3.12, where
``True`` and ``False`` are ordinary reference-counted objects, every ``emit()`` made from Python therefore takes a
reference away from ``True``; after a few thousand emits (a slider drag, a training run's progress) the count
reaches zero and the interpreter aborts with "deallocating True or False". CPython 3.12 made both immortal; here
we give them a reference count no session can exhaust, which is the same thing.
"""

from __future__ import annotations

import ctypes
import sys

_applied = False


def emit_leaks_true() -> bool:
    """True when emitting a signal from Python takes a reference away from ``True`` (the 6.12 defect)."""
    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        ping = Signal()

    probe = Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    return sys.getrefcount(True) < before


def apply() -> bool:
    """Apply the work-around if this binding needs it; returns whether it was applied (once per process)."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _applied
    if emit_leaks_true():
        for obj in (True, False):
            ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40  # ob_refcnt is a PyObject's first field
        _applied = True
    return _applied
