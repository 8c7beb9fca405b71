"""The main window's layout: its first size, how the Compose tab's width is shared between the browser, the
composer and the latent plot, the side panels that fold away and come back, and what is remembered across runs
(geometry, splitters, panels, tab and the training form).

``WindowLayout`` is mixed into ``MainWindow``.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QSize
from PySide6.QtGui import QScreen

#: How the Compose tab's width is shared at first (browser, composer, latent plot), in percent.
COMPOSE_PROPORTIONS = (22, 52, 26)
DEFAULT_WINDOW = QSize(1480, 900)


def default_window_size(screen: QScreen | None) -> QSize:
    """The first-run size: roomy, but never larger than the screen's free area (a 1366×768 laptop included)."""
    if screen is None:
        return QSize(DEFAULT_WINDOW)
    free = screen.availableGeometry().size()
    return QSize(min(DEFAULT_WINDOW.width(), free.width()), min(DEFAULT_WINDOW.height(), free.height()))


class WindowLayout:
    """Layout, side panels and their persistence in ``MainWindow``."""

    def _show_side_panel(self, index: int, shown: bool) -> None:
        """Show or hide the browser (0) or the plot (2); one folded away by the splitter opens at a usable width."""
        widget = self.compose_splitter.widget(index)
        widget.setVisible(shown)
        sizes = self.compose_splitter.sizes()
        if shown and sizes[index] == 0:
            want = max(widget.minimumSizeHint().width(), round(sum(sizes) * COMPOSE_PROPORTIONS[index] / 100))
            sizes[index] = want
            sizes[1] = max(0, sizes[1] - want)
            self.compose_splitter.setSizes(sizes)

    def _on_compose_splitter_moved(self, _pos: int, _index: int) -> None:
        """A side panel dragged shut counts as hidden, so View ▸ Dataset Browser / Latent Plot bring it back."""
        sizes = self.compose_splitter.sizes()
        if not any(sizes):  # not laid out yet
            return
        for index, action in ((0, self.show_browser_action), (2, self.show_plot_action)):
            if sizes[index] == 0 and action.isChecked():
                action.setChecked(False)

    def _restore_layout(self) -> None:
        geometry = self.settings.bytes_value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(default_window_size(self.screen()))
        state = self.settings.bytes_value("window/state")
        if state is not None:
            self.restoreState(state)
        splitter = self.settings.bytes_value("window/compose_splitter")
        if splitter is not None and self.compose_splitter.restoreState(splitter):
            self._default_split_pending = False
        training = self.settings.bytes_value("window/training_splitter")
        if training is not None:
            self.training.splitter.restoreState(training)
        self.show_browser_action.setChecked(self.settings.value("window/browser", "true") != "false")
        self.show_plot_action.setChecked(self.settings.value("window/plot", "true") != "false")
        if not self._default_split_pending:  # a restored splitter may hold a panel that was dragged shut
            self._on_compose_splitter_moved(0, 0)
        self.tabs.setCurrentIndex(1 if self.settings.value("window/tab", "0") == "1" else 0)
        try:
            form = json.loads(self.settings.value("training/form", "") or "{}")
        except ValueError:
            form = {}  # an unreadable entry (edited by hand, an older format): start from the defaults
        if isinstance(form, dict):
            self.training.restore_form_state(form)


    def _apply_default_split(self) -> None:
        total = self.compose_splitter.width()
        wants = [round(total * share / 100) for share in COMPOSE_PROPORTIONS]
        mins = [self.compose_splitter.widget(k).minimumSizeHint().width() for k in range(3)]
        if sum(mins) <= total:  # a side panel below its minimum would fold away: give it its minimum instead
            for k in (0, 2):
                if wants[k] < mins[k]:
                    wants[1] -= mins[k] - wants[k]
                    wants[k] = mins[k]
        self.compose_splitter.setSizes(wants)

    def save_layout(self) -> None:
        self.settings.set_bytes("window/geometry", self.saveGeometry())
        self.settings.set_bytes("window/state", self.saveState())
        self.settings.set_bytes("window/compose_splitter", self.compose_splitter.saveState())
        self.settings.set_bytes("window/training_splitter", self.training.splitter.saveState())
        self.settings.set_value("window/browser", "true" if self.show_browser_action.isChecked() else "false")
        self.settings.set_value("window/plot", "true" if self.show_plot_action.isChecked() else "false")
        self.settings.set_value("window/tab", str(self.tabs.currentIndex()))
        self.settings.set_value("training/form", json.dumps(self.training.form_state()))
        self.settings.sync()
