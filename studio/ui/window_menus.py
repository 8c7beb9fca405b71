"""The main window's actions and menus: File (datasets, models, projects, exports, preferences), Edit (the
composer's undo and redo), View (tabs and side panels) and Help.

The dataset and recent-model menus are filled each time they open, so they always show the presets at the loaded
model's resolution and the files used last. ``WindowMenus`` is mixed into ``MainWindow``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction, QKeySequence

from studio.ui.settings import DATASET_PRESETS


class WindowMenus:
    """The actions and menu bar of ``MainWindow``."""

    def _action(self, text: str, slot: Callable[[], Any], shortcut: Any = None, tip: str = "") -> QAction:
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
