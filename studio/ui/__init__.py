"""The Qt user interface. The only package that imports Qt."""

from studio.ui import pyside_fixes as _pyside_fixes

_pyside_fixes.apply()  # before any widget emits: see the module (a PySide6 6.12 defect aborts the interpreter)
