"""The main window: the Compose tab (browser | composer | latent plot) and the Train tab, menus, status bar.

It owns no model logic: it wires the panels to the one ``ModelService`` and to each other, remembers layout,
recent files and preferences (``Settings``), and makes sure closing never loses a training run.

This module builds the window, wires the panels and handles closing; the rest lives beside it, each part in its own
module: actions and menus (window_menus), the status bar (window_status_bar), opening datasets, models and projects
(window_opening), exports (window_exports) and the layout and its persistence (window_layout).
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QIcon, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QSystemTrayIcon,
    QTabWidget,
    QWidget,
)

from studio import __version__
from studio.errors import StudioError
from studio.paths import icon_path
from studio.ui import errors
from studio.ui.browser import DatasetBrowser
from studio.ui.composer import ComposerPanel
from studio.ui.dialog_parts import message_box
from studio.ui.extra_docks import install_docks
from studio.ui.latent_plot import LatentPlotPanel
from studio.ui.settings import Preferences, PreferencesDialog, Settings
from studio.ui.training_tab import TrainingTab
from studio.ui.window_exports import ExportDialog, WindowExports
from studio.ui.window_layout import COMPOSE_PROPORTIONS, DEFAULT_WINDOW, WindowLayout, default_window_size
from studio.ui.window_menus import WindowMenus
from studio.ui.window_opening import CHECKPOINT_FILTER, PROJECT_FILTER, WindowOpening
from studio.ui.window_status_bar import WindowStatusBar
from studio.ui.workers import gui_callback

#: The names importers of this module have always found here (several now live in the modules above).
__all__ = ["CHECKPOINT_FILTER", "COMPOSE_PROPORTIONS", "DEFAULT_WINDOW", "PROJECT_FILTER", "ExportDialog",
           "MainWindow", "app_icon", "default_window_size"]


def app_icon() -> QIcon:
    """The window's and the tray's icon, from every shipped size (each platform picks the one it needs)."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        path = icon_path(size)
        if path.exists():
            icon.addFile(str(path), QSize(size, size))
    return icon


class MainWindow(WindowMenus, WindowStatusBar, WindowOpening, WindowExports, WindowLayout, QMainWindow):
    """See the module docstring. ``quit_app_on_close`` (the app sets it) quits the application after the window
    closes, or after a training job kept running in the background ends."""

    closed = Signal()

    def __init__(self, service: Any, settings: Settings | None = None, parent: QWidget | None = None, *,
                 quit_app_on_close: bool = False) -> None:
        super().__init__(parent)
        self.service = service
        self.settings = settings or Settings()
        self.prefs: Preferences = self.settings.preferences()
        self._quit_app_on_close = quit_app_on_close
        self._closing_done = False
        self._tray: QSystemTrayIcon | None = None
        self._active_slot: str | None = None
        self.export_future: Future | None = None  # the newest strip or GIF export
        self.reporter = errors.reporter()
        self.reporter.set_parent_widget(self)

        self.setWindowTitle("Attribute Studio")
        self.setWindowIcon(app_icon())
        self.browser = DatasetBrowser(service, thumbnail_size=self.prefs.thumbnail_size)
        self.composer = ComposerPanel(service)
        self.latent_plot = LatentPlotPanel(service, self.composer)
        self.training = TrainingTab(service, runs_dir=self.prefs.effective_runs_dir())
        self.training.device_combo.setCurrentText(self.prefs.device)

        self.compose_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.compose_splitter.addWidget(self.browser)
        self.compose_splitter.addWidget(self.composer)
        self.compose_splitter.addWidget(self.latent_plot)
        self.compose_splitter.setStretchFactor(0, 2)
        self.compose_splitter.setStretchFactor(1, 5)
        self.compose_splitter.setStretchFactor(2, 3)
        # The side panels fold away when dragged past their minimum (their View actions follow); the composer
        # never does.
        self.compose_splitter.setCollapsible(0, True)
        self.compose_splitter.setCollapsible(1, False)
        self.compose_splitter.setCollapsible(2, True)
        self._default_split_pending = True  # shared out by COMPOSE_PROPORTIONS when first shown, unless restored
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.compose_splitter, "Compose")
        self.tabs.addTab(self.training, "Train")
        self.setCentralWidget(self.tabs)

        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self._wire()
        self.text_panel, self.values_panel = install_docks(self)  # View ▸ Text and View ▸ Value Mining
        self._restore_layout()

    # --- wiring -------------------------------------------------------------------------------------------
    def _wire(self) -> None:
        events = self.service.events
        self._relays = [
            (events.model_changed, gui_callback(self._on_model_changed, self)),
            (events.dataset_changed, gui_callback(self._on_dataset_changed, self)),
            (events.busy, gui_callback(self._on_busy, self)),
        ]
        for signal, relay in self._relays:
            signal.connect(relay)
        self.compose_splitter.splitterMoved.connect(self._on_compose_splitter_moved)
        self.browser.slot_requested.connect(self._put_item)
        self.browser.item_activated.connect(self._on_item_activated)
        self.composer.slot_activated.connect(self._on_slot_activated)
        self.composer.status_changed.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.training.checkpoint_loaded.connect(self._on_training_checkpoint_loaded)
        self.training.confirm_use = self.confirm_replacing_composition
        self.training.job_started.connect(self._on_job_started)
        self.training.job_ended.connect(self._on_job_ended)
        self.training.progressed.connect(self._on_training_progress)

    def _on_model_changed(self, info: Any) -> None:
        self._update_model_label()
        if info is not None:
            self.settings.add_recent("models", str(info.path))
            self.settings.set_value("session/model", str(info.path))

    def _on_dataset_changed(self, info: Any) -> None:
        self._update_dataset_label()
        if info is not None:
            self.settings.add_recent("datasets", info.spec)
            self.settings.set_value("session/dataset", info.spec)

    def _on_slot_activated(self, slot: str) -> None:
        self._active_slot = slot

    def _put_item(self, slot: str, item: int) -> None:
        try:
            self.composer.set_slot_item(slot, item)
        except StudioError as e:
            self.reporter.report(e)

    def _on_item_activated(self, item: int) -> None:
        """Double-click in the browser: the item goes into the slot last worked on (or the first slot)."""
        model = self.service.model
        if model is None:
            self.statusBar().showMessage("Open a model first to compose with this item", 5000)
            return
        slot = self._active_slot if self._active_slot in model.slot_names else model.slot_names[0]
        self._put_item(slot, item)

    def _on_training_checkpoint_loaded(self, path: str | Path) -> None:
        self.tabs.setCurrentIndex(0)
        self.statusBar().showMessage(f"Loaded {Path(path).name} from the training run", 5000)

    def _on_job_ended(self, state: str) -> None:
        self._training_text = f"Training {state}"
        self._update_activity()
        if self._tray is not None:
            self._tray.hide()
        if self._closing_done and self._quit_app_on_close:
            QApplication.quit()

    # --- preferences and about ----------------------------------------------------------------------------------
    def edit_preferences(self) -> None:
        dialog = PreferencesDialog(self.prefs, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.apply_preferences(dialog.preferences())

    def apply_preferences(self, prefs: Preferences) -> None:
        device_changed = prefs.device != self.prefs.device
        self.prefs = prefs
        self.settings.set_preferences(prefs)
        self.browser.set_thumbnail_size(prefs.thumbnail_size)
        self.training.set_runs_dir(prefs.effective_runs_dir())
        if device_changed:
            self.statusBar().showMessage(f"Device “{prefs.device}” is used from the next start", 8000)

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Attribute Studio",
            f"<h3>Attribute Studio {__version__}</h3>"
            "<p>Edit images attribute by attribute: drag items into slots, mix and interpolate them, "
            "and synthesise combinations a dataset never showed.</p>"
            "<p>Methods: GZS-Net (group-supervised learning), DEAE, LORD, Oldfield et al.'s adversarial "
            "attribute codes, and LORBMS quadrant mixing.</p>"
            "<p>Built with PySide6, pyqtgraph and PyTorch. MIT licence.</p>")

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._default_split_pending:
            self._default_split_pending = False
            # after the layout has given the splitter its real width (before, the shares would not fit and the
            # side panels would fold away)
            QTimer.singleShot(0, self._apply_default_split)

    # --- closing --------------------------------------------------------------------------------------------------
    def ask_about_running_job(self) -> str:
        """'stop', 'background' or 'cancel' (a separate method so tests can answer without a modal box)."""
        box, (stop, keep) = message_box(
            self, "Training is running", QMessageBox.Icon.Question, "A training job is still running.",
            "Stop it and save a checkpoint, or keep it running in the background until it ends (the window closes; "
            "the run goes on)?",
            [("Stop and Save", QMessageBox.ButtonRole.DestructiveRole),
             ("Keep Running in Background", QMessageBox.ButtonRole.AcceptRole)], QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return "stop" if clicked is stop else "background" if clicked is keep else "cancel"

    def closeEvent(self, event: QCloseEvent) -> None:
        job_running = self.training.is_running()
        if job_running:
            answer = self.ask_about_running_job()
            if answer == "cancel":
                event.ignore()
                return
            if answer == "stop":
                self.training.stop()
                self._show_tray("Saving a checkpoint; Attribute Studio quits when it is written.")
            else:
                self._show_tray("Training goes on in the background; Attribute Studio quits when it ends.")
        self.save_layout()
        self.latent_plot.cancel()
        self.browser.shutdown()
        if not job_running:  # a job kept running still reports its end here, so the app can quit then
            self.training.shutdown()
        for signal, relay in self._relays:
            signal.disconnect(relay)
        self._relays = []
        self._closing_done = True
        event.accept()
        self.closed.emit()
        if self._quit_app_on_close and not job_running:
            QApplication.quit()

    def _show_tray(self, message: str) -> None:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return
        tray = QSystemTrayIcon(app_icon(), QApplication.instance())
        menu = QMenu()
        menu.addAction("Stop Training and Quit", self.training.stop)
        tray.setContextMenu(menu)
        tray.setToolTip("Attribute Studio: training")
        tray.show()
        tray.showMessage("Attribute Studio", message)
        self._tray = tray
        self._tray_menu = menu
