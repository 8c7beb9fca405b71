"""Opening things from the main window: datasets, models and projects, the session at startup, and the
question before "Use in composer" would replace the composition.

Everything loads in the background through the service; the composer, the plot and the browser follow its
``model_changed`` and ``dataset_changed`` events, so this module only chooses what to open and reports failures.
File dialogs open where the user last was for that kind of file. ``WindowOpening`` is mixed into ``MainWindow``.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.data.spec import preset_kind
from studio.errors import StudioError
from studio.paths import shipped_models
from studio.service.composition import Project
from studio.service.mined_values import for_model, project_values
from studio.ui.dialog_parts import message_box
from studio.ui.training_tab import dataset_spec_with_resolution
from studio.ui.workers import watch

CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.json);;All files (*)"
PROJECT_FILTER = "Attribute Studio projects (*.studio.json *.json);;All files (*)"


class WindowOpening:
    """Opening datasets, models and projects in ``MainWindow``."""

    def _spec_for_model(self, spec: str) -> str:
        """Built-in datasets open at the loaded model's resolution (64 px without a model)."""
        model = self.service.model
        return dataset_spec_with_resolution(spec, model.resolution if model is not None else 64)

    def open_dataset(self, spec: str) -> Future:
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

    def open_model(self, path: str | Path) -> Future:
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
            project = self.composer.open_project(path)
        except StudioError as e:
            self.reporter.report(e)
            return
        self.settings.add_recent("projects", str(path))
        self.tabs.setCurrentIndex(0)
        self.statusBar().showMessage(f"Opened project {Path(path).name}{self._take_project_values(project, path)}",
                                     8000)

    def _take_project_values(self, project: Project, path: str | Path) -> str:
        """Add the project's mined values to the user's own file (the Value Mining panel's); a name the user
        already holds for another value keeps the user's. Returns what the status bar adds about them."""
        if not project.mined_values:
            return ""
        store = self.values_panel.store
        try:
            added, clashing = store.merge(project_values(project, str(path)))
        except StudioError as e:
            self.reporter.report(e)
            return ""
        self.values_panel.refresh_saved()
        parts = []
        if added:
            parts.append(f"{len(added)} mined value{'s' if len(added) != 1 else ''} added to {store.path.name}")
        if clashing:
            parts.append(f"kept your own {', '.join(repr(n) for n in clashing)} (the project's differ)")
        return f"; {'; '.join(parts)}" if parts else ""

    def project_mined_values(self) -> list[dict]:
        """The JSON of the saved mined values made with the loaded model: what a saved project carries."""
        model = self.service.model
        if model is None:
            return []
        try:
            values = self.values_panel.store.load()
        except StudioError as e:
            self.reporter.report(e)
            return []
        return [v.to_json() for v in for_model(values, model.fingerprint)]

    def choose_project_to_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save Project",
                                              str(self.start_folder("dirs/project") / "composition.studio.json"),
                                              PROJECT_FILTER)
        if path:
            self.settings.set_value("dirs/project", str(Path(path).parent))
            values = self.project_mined_values()
            self._run_export(lambda: self.composer.save_project(path, values), "Saved project")

    def start_session(self, model: Path | None, dataset: str | None = None, prompt: bool = True) -> None:
        """Open the model (its own dataset comes with it) or, without one, ``dataset`` and a prompt to train."""
        if model is not None:
            def loaded(_info: Any) -> None:
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
        box, (train, open_button) = message_box(
            self, "No model yet", QMessageBox.Icon.Information, "There is no trained model yet.",
            "Train one in the Train tab (GZS-Net on Fonts works well to start), or open a checkpoint you already have.",
            [("Go to Training", QMessageBox.ButtonRole.AcceptRole), ("Open Model…", QMessageBox.ButtonRole.ActionRole)],
            QMessageBox.StandardButton.Close)
        train.clicked.connect(lambda: self.tabs.setCurrentIndex(1))
        open_button.clicked.connect(lambda: QTimer.singleShot(0, self.choose_model))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self._prompt = box
        return box

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
        box, (use,) = message_box(
            self, "Replace the composition?", QMessageBox.Icon.Question,
            f"The checkpoint is a {described.method} model on {described.dataset_spec or 'other data'}; its slots "
            "differ from the composition's.",
            "Using it starts a new composition and clears the undo history. Save the project first (Ctrl+S) to keep "
            "this one.",
            [("Use It", QMessageBox.ButtonRole.AcceptRole)], QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is use
