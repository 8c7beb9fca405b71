"""The main window: the Compose tab (browser | composer | latent plot) and the Train tab, menus, status bar.

It owns no model logic: it wires the panels to the one ``ModelService`` and to each other, remembers layout,
recent files and preferences (``Settings``), and makes sure closing never loses a training run.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence, QScreen
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QSpinBox,
    QSplitter,
    QSystemTrayIcon,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio import __version__
from studio.data.spec import preset_kind
from studio.errors import StudioError
from studio.paths import icon_path, shipped_models
from studio.service.composition import Project
from studio.ui import errors
from studio.ui.browser import DatasetBrowser
from studio.ui.composer import ComposerPanel
from studio.ui.extra_docks import install_docks
from studio.ui.latent_plot import LatentPlotPanel
from studio.ui.settings import DATASET_PRESETS, Preferences, PreferencesDialog, Settings
from studio.ui.training_tab import TrainingTab, dataset_spec_with_resolution, format_duration
from studio.ui.workers import gui_callback, watch

CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.json);;All files (*)"
PROJECT_FILTER = "Attribute Studio projects (*.studio.json *.json);;All files (*)"


#: How the Compose tab's width is shared at first (browser, composer, latent plot), in percent.
COMPOSE_PROPORTIONS = (22, 52, 26)
DEFAULT_WINDOW = QSize(1480, 900)


def default_window_size(screen: QScreen | None) -> QSize:
    """The first-run size: roomy, but never larger than the screen's free area (a 1366×768 laptop included)."""
    if screen is None:
        return QSize(DEFAULT_WINDOW)
    free = screen.availableGeometry().size()
    return QSize(min(DEFAULT_WINDOW.width(), free.width()), min(DEFAULT_WINDOW.height(), free.height()))


def app_icon() -> QIcon:
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        path = icon_path(size)
        if path.exists():
            icon.addFile(str(path), QSize(size, size))
    return icon


class ExportDialog(QDialog):
    """Scale (and frame count for strips and GIFs) before the file dialog."""

    def __init__(self, title: str, frames: int | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        # wide enough for the whole title in the title bar (window managers cut it to the dialog's width)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance(title) + 160)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(4)
        self.scale.setSuffix("×")
        self.scale.setToolTip("Enlarge with crisp pixels (model images are small)")
        form = QFormLayout()
        form.addRow("Scale", self.scale)
        self.frames = QSpinBox()
        self.frames.setRange(2, 240)
        self.frames.setValue(frames or 2)
        self.frames.setToolTip("Images from A to B")
        if frames is not None:
            form.addRow("Frames", self.frames)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)


class MainWindow(QMainWindow):
    """See the module docstring. ``quit_app_on_close`` (the app sets it) quits the application after the window
    closes, or after a training job kept running in the background ends."""

    closed = Signal()

    def __init__(self, service, settings: Settings | None = None, parent: QWidget | None = None, *,
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

    # --- actions and menus ---------------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_actions(self) -> None:
        self.open_folder_action = self._action("&Folder…", self.choose_dataset_folder, "Ctrl+Shift+D",
                                               "Open a folder of images with an attributes.csv")
        self.open_model_action = self._action("&Open Model…", self.choose_model, QKeySequence.StandardKey.Open,
                                              "Open a checkpoint (.safetensors) or a run folder")
        self.open_project_action = self._action("Open &Project…", self.choose_project_to_open, "Ctrl+Shift+O",
                                                "Open a saved composition")
        self.save_project_action = self._action("&Save Project…", self.choose_project_to_save,
                                                QKeySequence.StandardKey.Save, "Save the composition to a file")
        self.export_image_action = self._action("&Export Image…", self.export_image, "Ctrl+E",
                                                "Save the composed image as PNG")
        self.export_strip_action = self._action("Export Interpolation &Strip…", self.export_strip,
                                                "Ctrl+Shift+E", "Save the A→B interpolation as one row of images")
        self.export_gif_action = self._action("Export Animated &GIF…", self.export_gif, "Ctrl+Alt+E",
                                              "Save the A→B interpolation as an animated GIF")
        self.preferences_action = self._action("&Preferences…", self.edit_preferences,
                                               QKeySequence.StandardKey.Preferences)
        if self.preferences_action.shortcut().isEmpty():
            self.preferences_action.setShortcut(QKeySequence("Ctrl+,"))
        self.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        if self.quit_action.shortcut().isEmpty():
            self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.about_action = self._action("&About Attribute Studio", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.compose_tab_action = self._action("&Compose", lambda: self.tabs.setCurrentIndex(0), "Ctrl+1")
        self.train_tab_action = self._action("&Train", lambda: self.tabs.setCurrentIndex(1), "Ctrl+2")
        self.show_browser_action = QAction("Dataset &Browser", self, checkable=True, checked=True)
        self.show_browser_action.setShortcut(QKeySequence("Ctrl+B"))
        self.show_browser_action.toggled.connect(lambda shown: self._show_side_panel(0, shown))
        self.show_plot_action = QAction("&Latent Plot", self, checkable=True, checked=True)
        self.show_plot_action.setShortcut(QKeySequence("Ctrl+L"))
        self.show_plot_action.toggled.connect(lambda shown: self._show_side_panel(2, shown))

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.dataset_menu = file_menu.addMenu("Open &Dataset")
        self.dataset_menu.aboutToShow.connect(self._fill_dataset_menu)
        self._fill_dataset_menu()
        file_menu.addAction(self.open_model_action)
        self.recent_models_menu = file_menu.addMenu("Open &Recent Model")
        self.recent_models_menu.aboutToShow.connect(self._fill_recent_models_menu)
        self._fill_recent_models_menu()
        file_menu.addSeparator()
        file_menu.addAction(self.open_project_action)
        file_menu.addAction(self.save_project_action)
        file_menu.addSeparator()
        file_menu.addAction(self.export_image_action)
        file_menu.addAction(self.export_strip_action)
        file_menu.addAction(self.export_gif_action)
        file_menu.addSeparator()
        file_menu.addAction(self.preferences_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.composer.undo_action)
        edit_menu.addAction(self.composer.redo_action)

        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.compose_tab_action)
        view_menu.addAction(self.train_tab_action)
        view_menu.addSeparator()
        view_menu.addAction(self.show_browser_action)
        view_menu.addAction(self.show_plot_action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)

        for action in (self.compose_tab_action, self.train_tab_action, self.show_browser_action,
                       self.show_plot_action):
            self.addAction(action)

    def _fill_dataset_menu(self) -> None:
        menu = self.dataset_menu
        menu.clear()
        model = self.service.model
        for label, spec in DATASET_PRESETS:
            full = self._spec_for_model(spec)
            action = menu.addAction(label)
            action.setToolTip(full)
            action.triggered.connect(lambda _checked=False, s=full: self.open_dataset(s))
        if model is not None and model.dataset_spec:
            menu.addSeparator()
            own = menu.addAction(f"The Model's Own ({model.dataset_spec})")
            own.triggered.connect(lambda _checked=False, s=model.dataset_spec: self.open_dataset(s))
        menu.addSeparator()
        menu.addAction(self.open_folder_action)
        recent = [r for r in self.settings.recent("datasets") if not r.startswith(("fonts", "shapes"))]
        if recent:
            menu.addSeparator()
            for spec in recent:
                action = menu.addAction(spec)
                action.triggered.connect(lambda _checked=False, s=spec: self.open_dataset(s))

    def _fill_recent_models_menu(self) -> None:
        menu = self.recent_models_menu
        menu.clear()
        recent = self.settings.recent("models")
        for path in recent:
            p = Path(path)
            label = f"{p.parent.parent.name}/{p.name}" if p.parent.name == "checkpoints" else p.name
            action = menu.addAction(label)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _checked=False, s=path: self.open_model(s))
        if not recent:
            empty = menu.addAction("No recent models")
            empty.setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear Recent", self._clear_recent_models)

    def _clear_recent_models(self) -> None:
        for path in self.settings.recent("models"):
            self.settings.remove_recent("models", path)

    # --- status bar -------------------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel()
        self.device_label = QLabel()
        self.dataset_label = QLabel()
        self.activity_label = QLabel()
        self.activity_label.setMinimumWidth(220)
        for label in (self.activity_label, self.model_label, self.dataset_label, self.device_label):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)
        self._busy_text = ""
        self._training_text = ""
        self._update_model_label()
        self._update_dataset_label()
        self._update_activity()

    def _update_model_label(self) -> None:
        model = self.service.model
        if model is None:
            self.model_label.setText("Model: none")
            self.model_label.setToolTip("Open a model (File ▸ Open Model) or train one (Train tab)")
            self.setWindowTitle("Attribute Studio")
        else:
            step = "" if "step" in model.title else f" · step {model.step:,}"
            self.model_label.setText(f"Model: {model.title}{step}")
            tip = str(model.path)
            if getattr(model, "dataset_warning", ""):
                tip += "\n⚠ " + model.dataset_warning
            self.model_label.setToolTip(tip)
            self.setWindowTitle(f"Attribute Studio — {model.title}")
        self.device_label.setText(f"Device: {getattr(self.service, 'device', '?')}")

    def _update_dataset_label(self) -> None:
        info = getattr(self.service, "dataset_info", None)
        dataset = self.service.items
        if dataset is None:
            self.dataset_label.setText("Dataset: none")
        else:
            spec = info.spec if info is not None else dataset.spec
            self.dataset_label.setText(f"Dataset: {spec} · {len(dataset):,} items")

    def _update_activity(self) -> None:
        text = self._training_text or ""
        if self._busy_text:
            text = f"{self._busy_text[0].upper()}{self._busy_text[1:]}…" + (f"  ·  {text}" if text else "")
        self.activity_label.setText(text or "Idle")

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

    def _on_model_changed(self, info) -> None:
        self._update_model_label()
        if info is not None:
            self.settings.add_recent("models", str(info.path))
            self.settings.set_value("session/model", str(info.path))

    def _on_dataset_changed(self, info) -> None:
        self._update_dataset_label()
        if info is not None:
            self.settings.add_recent("datasets", info.spec)
            self.settings.set_value("session/dataset", info.spec)

    def _on_busy(self, text: str) -> None:
        self._busy_text = text
        self._update_activity()

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

    def confirm_replacing_composition(self, path: Path) -> bool:
        """Before "Use in composer": a checkpoint of the same method on the same data keeps the composition and
        its undo history (the composer keeps them when the slots match); another one would replace them, so ask
        first, when there is something to lose."""
        model = self.service.model
        if model is None or self.composer.undo_stack.count() == 0:
            return True
        try:
            described = self.service.describe_checkpoint(path)
        except StudioError:
            return True  # loading it says what is wrong
        if described.method == model.method and (described.dataset_spec or "") == (model.dataset_spec or ""):
            return True
        return self.ask_replace_composition(described)

    def ask_replace_composition(self, described: Any) -> bool:
        """Yes or no (a separate method so tests can answer without a modal box)."""
        box = QMessageBox(self)
        box.setWindowTitle("Replace the composition?")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText(f"The checkpoint is a {described.method} model on {described.dataset_spec or 'other data'}; "
                    "its slots differ from the composition's.")
        box.setInformativeText("Using it starts a new composition and clears the undo history. Save the project "
                               "first (Ctrl+S) to keep this one.")
        use = box.addButton("Use It", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is use

    def _on_training_checkpoint_loaded(self, path) -> None:
        self.tabs.setCurrentIndex(0)
        self.statusBar().showMessage(f"Loaded {Path(path).name} from the training run", 5000)

    def _on_job_started(self, job) -> None:
        self._training_text = "Training: starting"
        self._update_activity()

    def _on_training_progress(self, event) -> None:
        rate = f" · {event.steps_per_s:,.1f} steps/s · {format_duration(event.eta_s)} left" if event.steps_per_s else ""
        self._training_text = f"Training: step {event.step:,}/{event.total:,}{rate}"
        self._update_activity()

    def _on_job_ended(self, state: str) -> None:
        self._training_text = f"Training {state}"
        self._update_activity()
        if self._tray is not None:
            self._tray.hide()
        if self._closing_done and self._quit_app_on_close:
            QApplication.quit()

    # --- opening things -----------------------------------------------------------------------------------
    def _spec_for_model(self, spec: str) -> str:
        """Built-in datasets open at the loaded model's resolution (64 px without a model)."""
        model = self.service.model
        return dataset_spec_with_resolution(spec, model.resolution if model is not None else 64)

    def open_dataset(self, spec: str):
        """Open a dataset in the background; the browser follows the service's dataset_changed event. A built-in
        preset of another kind than the loaded model's (Shapes while a Fonts model is loaded) brings its shipped
        model along, so that the composer keeps working instead of refusing the dataset."""
        companion = self._shipped_model_for(spec)
        if companion is not None:
            self.statusBar().showMessage(f"Opening {spec} with the shipped model {companion.parent.name}…")
            return watch(self.service.load_checkpoint_async(companion, spec),
                         lambda info: self.statusBar().showMessage(
                             f"Opened {spec} with {info.title} (step {info.step:,})", 5000),
                         self._on_open_failed, owner=self)
        self.statusBar().showMessage(f"Opening {spec}…")
        return watch(self.service.open_dataset_async(spec),
                     lambda info: self.statusBar().showMessage(f"Opened {info.spec} ({info.size:,} items)", 5000),
                     self._on_open_failed, owner=self)

    def _shipped_model_for(self, spec: str) -> Path | None:
        """The shipped model of a built-in preset's kind, when the loaded model was trained on another kind (with no
        model loaded, opening a dataset loads none: the user may be about to train one)."""
        kind = preset_kind(spec)
        model = self.service.model
        if kind is None or model is None or preset_kind(model.dataset_spec or "") == kind:
            return None
        for path in shipped_models():
            if path.parent.name.startswith(kind) and Path(model.path) != path:
                return path
        return None

    def open_model(self, path: str | Path):
        """Load a checkpoint in the background (the composer and plot follow model_changed)."""
        self.statusBar().showMessage(f"Loading {Path(path).name}…")

        def failed(exc: BaseException) -> None:
            if not Path(path).exists():
                self.settings.remove_recent("models", str(path))
            self._on_open_failed(exc)

        return watch(self.service.load_checkpoint_async(path),
                     lambda info: self.statusBar().showMessage(f"Loaded {info.title} (step {info.step:,})", 5000),
                     failed, owner=self)

    def _on_open_failed(self, exc: BaseException) -> None:
        self.statusBar().clearMessage()
        self.reporter.report(exc)

    def choose_dataset_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open Dataset Folder",
                                                  self.settings.value("dirs/dataset", str(Path.home())))
        if folder:
            self.settings.set_value("dirs/dataset", folder)
            model = self.service.model
            self.open_dataset(folder if model is None else f"{folder},res={model.resolution}")

    def choose_model(self) -> None:
        start = self.settings.value("dirs/model", str(self.prefs.effective_runs_dir()))
        path, _ = QFileDialog.getOpenFileName(self, "Open Model", start, CHECKPOINT_FILTER)
        if path:
            self.settings.set_value("dirs/model", str(Path(path).parent))
            self.open_model(path)

    def start_folder(self, key: str) -> Path:
        """Where a file dialog opens: the folder last used for this kind of file (remembered in the settings),
        else the user's documents folder (never the working directory the app happened to start in)."""
        last = self.settings.value(key, "")
        if last and Path(last).is_dir():
            return Path(last)
        documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        return Path(documents) if documents and Path(documents).is_dir() else Path.home()

    def choose_project_to_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open Project", str(self.start_folder("dirs/project")),
                                              PROJECT_FILTER)
        if path:
            self.settings.set_value("dirs/project", str(Path(path).parent))
            self.open_project(path)

    def open_project(self, path: str | Path) -> None:
        """Open a project; when it names another model that exists, load that model first."""
        try:
            project = Project.load(path)
        except StudioError as e:
            self.reporter.report(e)
            return
        wanted = Path(project.checkpoint) if project.checkpoint else None
        model = self.service.model
        if wanted is not None and wanted.exists() and (model is None or Path(model.path) != wanted):
            watch(self.service.load_checkpoint_async(wanted), lambda _info: self._apply_project(path),
                  self._on_open_failed, owner=self)
        else:
            self._apply_project(path)

    def _apply_project(self, path: str | Path) -> None:
        try:
            self.composer.open_project(path)
        except StudioError as e:
            self.reporter.report(e)
            return
        self.settings.add_recent("projects", str(path))
        self.tabs.setCurrentIndex(0)
        self.statusBar().showMessage(f"Opened project {Path(path).name}", 5000)

    def choose_project_to_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save Project",
                                              str(self.start_folder("dirs/project") / "composition.studio.json"),
                                              PROJECT_FILTER)
        if path:
            self.settings.set_value("dirs/project", str(Path(path).parent))
            self._run_export(lambda: self.composer.save_project(path), "Saved project")

    # --- exporting ----------------------------------------------------------------------------------------------
    def _run_export(self, work, what: str) -> None:
        try:
            written = work()
        except StudioError as e:
            self.reporter.report(e)
            return
        self.statusBar().showMessage(f"{what}: {written}", 6000)

    def _export_in_background(self, path: str, kind: str, frames: int, scale: int, what: str) -> Future | None:
        """Make and write an interpolation off the GUI thread; a progress dialog shows how far it is, and its
        Cancel stops it between frames. The window stays usable meanwhile."""
        dialog = QProgressDialog(f"{what.replace('Exported', 'Exporting')} to {Path(path).name}…", "Cancel", 0, 100,
                                 self)
        dialog.setWindowTitle("Export")
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumDuration(400)
        dialog.setValue(0)
        progress = gui_callback(lambda fraction: dialog.setValue(round(100 * fraction)), owner=dialog)
        try:
            future = self.composer.export_interpolation(path, kind, frames, scale=scale, progress=progress)
        except StudioError as e:
            dialog.deleteLater()
            self.reporter.report(e)
            return None
        self.export_future = future
        dialog.canceled.connect(future.cancel)

        def finished(written: Path) -> None:
            dialog.deleteLater()
            self.statusBar().showMessage(f"{what}: {written}", 6000)

        def failed(error: BaseException) -> None:
            dialog.deleteLater()
            self.reporter.report(error)

        def cancelled() -> None:
            dialog.deleteLater()
            self.statusBar().showMessage("Export cancelled; nothing was written", 6000)

        watch(future, finished, failed, owner=self, on_cancelled=cancelled)
        return future

    def _ask_export(self, title: str, frames: int | None, default_name: str, file_filter: str):
        dialog = ExportDialog(title, frames, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        start = self.start_folder("dirs/export") / default_name
        path, _ = QFileDialog.getSaveFileName(self, title, str(start), file_filter)
        if not path:
            return None
        self.settings.set_value("dirs/export", str(Path(path).parent))
        return path, dialog.scale.value(), dialog.frames.value()

    def export_image(self) -> None:
        chosen = self._ask_export("Export Image", None, "composition.png", "PNG images (*.png)")
        if chosen:
            path, scale, _ = chosen
            self._run_export(lambda: self.composer.export_image(path, scale=scale), "Exported image")

    def export_strip(self) -> None:
        chosen = self._ask_export("Export Interpolation Strip", 9, "interpolation.png", "PNG images (*.png)")
        if chosen:
            path, scale, frames = chosen
            self._export_in_background(path, "strip", frames, scale, "Exported strip")

    def export_gif(self) -> None:
        chosen = self._ask_export("Export Animated GIF", 24, "interpolation.gif", "GIF animations (*.gif)")
        if chosen:
            path, scale, frames = chosen
            self._export_in_background(path, "gif", frames, scale, "Exported GIF")

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

    # --- startup -------------------------------------------------------------------------------------------------
    def start_session(self, model: Path | None, dataset: str | None = None, prompt: bool = True) -> None:
        """Open the model (its own dataset comes with it) or, without one, ``dataset`` and a prompt to train."""
        if model is not None:
            def loaded(_info) -> None:
                if self.service.items is None:
                    self.open_dataset(self._spec_for_model(dataset or self.prefs.default_dataset))

            def failed(exc: BaseException) -> None:
                self._on_open_failed(exc)
                if self.service.items is None:
                    self.open_dataset(self._spec_for_model(dataset or self.prefs.default_dataset))

            watch(self.service.load_checkpoint_async(model), loaded, failed, owner=self)
            return
        self.open_dataset(self._spec_for_model(dataset or self.prefs.default_dataset))
        if prompt:
            QTimer.singleShot(0, self.prompt_to_train)

    def prompt_to_train(self) -> QMessageBox:
        """No model yet: say so, and offer the Training tab or a checkpoint file (non-blocking)."""
        box = QMessageBox(self)
        box.setWindowTitle("No model yet")
        box.setIcon(QMessageBox.Icon.Information)
        box.setText("There is no trained model yet.")
        box.setInformativeText("Train one in the Train tab (GZS-Net on Fonts works well to start), or open a "
                               "checkpoint you already have.")
        train = box.addButton("Go to Training", QMessageBox.ButtonRole.AcceptRole)
        open_button = box.addButton("Open Model…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Close)
        train.clicked.connect(lambda: self.tabs.setCurrentIndex(1))
        open_button.clicked.connect(lambda: QTimer.singleShot(0, self.choose_model))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self._prompt = box
        return box

    # --- layout persistence ---------------------------------------------------------------------------------------
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

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._default_split_pending:
            self._default_split_pending = False
            # after the layout has given the splitter its real width (before, the shares would not fit and the
            # side panels would fold away)
            QTimer.singleShot(0, self._apply_default_split)

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

    # --- closing --------------------------------------------------------------------------------------------------
    def ask_about_running_job(self) -> str:
        """'stop', 'background' or 'cancel' (a separate method so tests can answer without a modal box)."""
        box = QMessageBox(self)
        box.setWindowTitle("Training is running")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText("A training job is still running.")
        box.setInformativeText("Stop it and save a checkpoint, or keep it running in the background until it "
                               "ends (the window closes; the run goes on)?")
        stop = box.addButton("Stop and Save", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep Running in Background", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
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
