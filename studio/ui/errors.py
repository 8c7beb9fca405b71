"""Every failure ends in a dialog with the message and a details pane: never a silent failure, never a crash.

``ErrorReporter`` is the one route: workers hand it their exceptions, and ``install()`` points ``sys.excepthook``
and ``threading.excepthook`` at it, so an exception from any thread reaches the GUI thread as a dialog. A
``StudioError`` is something the user can act on, so its dialog shows the message alone, without a traceback.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
import weakref
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from studio.errors import StudioError

log = logging.getLogger("studio.ui")


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """The dialog's (message, details): a StudioError's message stands alone; anything else is a bug, so the
    traceback goes in the details pane for the report."""
    if isinstance(exc, StudioError):
        return str(exc) or type(exc).__name__, ""
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return message, details


class ErrorDialog(QDialog):
    """The message, a 'Details' toggle with the traceback (selectable, copyable) and a Close button."""

    def __init__(self, message: str, details: str = "", title: str = "Attribute Studio",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._repeats = 1
        self._message = message

        icon = QLabel()
        pixmaps = QStyle.StandardPixmap
        kind = pixmaps.SP_MessageBoxCritical if details else pixmaps.SP_MessageBoxWarning
        icon.setPixmap(self.style().standardIcon(kind).pixmap(40, 40))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.message_label = QLabel(message)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setMinimumWidth(360)
        text = QVBoxLayout()
        text.addWidget(self.message_label)
        if details:
            hint = QLabel("This looks like a bug in Attribute Studio; the details help to find it.")
            hint.setWordWrap(True)
            hint.setEnabled(False)
            text.addWidget(hint)
        text.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(icon)
        top.addLayout(text, 1)

        self.details = QPlainTextEdit(details)
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setMinimumHeight(220)
        self.details.setVisible(False)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.details_button = QPushButton("Show details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(self._on_details_toggled)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the message and details, e.g. for a bug report")
        self.copy_button.clicked.connect(self._on_copy)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        if details:
            buttons.addButton(self.details_button, QDialogButtonBox.ButtonRole.ActionRole)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)

    @property
    def message(self) -> str:
        return self._message

    def add_repeat(self) -> None:
        """The same failure again while the dialog is open: count it instead of stacking dialogs."""
        self._repeats += 1
        self.message_label.setText(f"{self._message}\n\n(happened {self._repeats} times)")

    def _on_details_toggled(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Show details")
        self.adjustSize()

    def _on_copy(self) -> None:
        text = self._message + ("\n\n" + self.details.toPlainText() if self.details.toPlainText() else "")
        QGuiApplication.clipboard().setText(text)


class ErrorReporter(QObject):
    """Turns exceptions from any thread into dialogs on the GUI thread (a queued signal does the hop)."""

    reported = Signal(str, str)  # message, details; emitted on the GUI thread when a dialog opens or repeats
    _incoming = Signal(str, str, str)

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__()
        self._parent_widget: weakref.ref[QWidget] | None = None
        self.set_parent_widget(parent_widget)
        self._open: dict[str, ErrorDialog] = {}
        self._previous_hooks: tuple | None = None
        self._incoming.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def set_parent_widget(self, widget: QWidget | None) -> None:
        """Dialogs open over this window; held weakly, so the reporter never keeps a closed window alive."""
        self._parent_widget = weakref.ref(widget) if widget is not None else None

    # --- entry points (any thread) --------------------------------------------------------------
    def report(self, exc: BaseException, title: str = "Attribute Studio") -> None:
        message, details = describe_exception(exc)
        if details:
            log.error("%s\n%s", message, details)
        self._incoming.emit(message, details, title)

    def report_message(self, message: str, details: str = "", title: str = "Attribute Studio") -> None:
        self._incoming.emit(message, details, title)

    def dialogs(self) -> list[ErrorDialog]:
        """Dialogs now open (tests and the main window close them)."""
        return [d for d in self._open.values() if isValid(d)]

    # --- hooks ------------------------------------------------------------------------------------
    def install(self) -> None:
        """Route uncaught exceptions of the GUI thread and of Python threads here."""
        if self._previous_hooks is None:
            self._previous_hooks = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        if self._previous_hooks is not None:
            sys.excepthook, threading.excepthook = self._previous_hooks
            self._previous_hooks = None

    def _excepthook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        if exc.__traceback__ is None and tb is not None:
            exc = exc.with_traceback(tb)
        self.report(exc)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        self.report(args.exc_value, title=f"Attribute Studio: error in {getattr(args.thread, 'name', 'a thread')}")

    # --- GUI thread -------------------------------------------------------------------------------
    @Slot(str, str, str)
    def _show(self, message: str, details: str, title: str) -> None:
        key = message + "\0" + details
        dialog = self._open.get(key)
        if dialog is not None and isValid(dialog):
            dialog.add_repeat()
        else:
            parent = self._parent_widget() if self._parent_widget is not None else None
            if parent is not None and (not isValid(parent) or not parent.isVisible()):
                parent = None
            dialog = ErrorDialog(message, details, title, parent)
            dialog.finished.connect(lambda _result, k=key: self._open.pop(k, None))
            self._open[key] = dialog
            dialog.show()
            dialog.raise_()
        self.reported.emit(message, details)


_reporter: ErrorReporter | None = None


def reporter() -> ErrorReporter:
    """The application's reporter (created on first use, on the GUI thread)."""
    global _reporter
    if _reporter is None or not isValid(_reporter):
        _reporter = ErrorReporter()
    return _reporter


def report(exc: BaseException) -> None:
    """Show ``exc`` in a dialog; safe to call from any thread once the reporter exists."""
    reporter().report(exc)
