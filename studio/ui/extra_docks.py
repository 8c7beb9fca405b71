"""The main window's Text and Values docks (issue 16), installed by one call so the window itself only names it.

View ▸ Text (Ctrl+T) types words in the composer's style and completes fonts from a few glyphs; View ▸ Value
Mining opens the Values panel, which each slot card's "Mine values…" button also opens on its slot.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu

from studio.ui.text_panel import TextPanel
from studio.ui.value_mining import ValueMiningPanel


def _view_menu(window: QMainWindow) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == "View":
            return action.menu()
    return None


def install_docks(window: Any) -> tuple[TextPanel, ValueMiningPanel]:
    """Add the two docks (hidden at first) with their View actions; their threads end with the window."""
    text = TextPanel(window.service, window.composer)
    values = ValueMiningPanel(window.service, window.composer)
    docks = []
    for panel, title, name, area, keys in ((text, "Text", "textDock", Qt.DockWidgetArea.BottomDockWidgetArea,
                                            "Ctrl+T"),
                                           (values, "Value Mining", "valuesDock",
                                            Qt.DockWidgetArea.RightDockWidgetArea, "Ctrl+Shift+M")):
        dock = QDockWidget(title, window)
        dock.setObjectName(name)
        dock.setWidget(panel)
        window.addDockWidget(area, dock)
        dock.hide()
        action: QAction = dock.toggleViewAction()
        action.setShortcut(QKeySequence(keys))
        menu = _view_menu(window)
        if menu is not None:
            if not docks:
                menu.addSeparator()
            menu.addAction(action)
        window.addAction(action)
        panel.status_changed.connect(lambda msg: window.statusBar().showMessage(msg, 6000))
        docks.append(dock)
    window.text_dock, window.values_dock = docks
    values.requested.connect(lambda: (window.values_dock.show(), window.values_dock.raise_()))
    window.closed.connect(text.shutdown)
    return text, values


__all__ = ["install_docks"]
