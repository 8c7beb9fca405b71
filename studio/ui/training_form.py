"""The Training tab's form: data, method, recipe, run settings and the method's hyper-parameters, and the
service's run settings (``TrainSettings``) they describe.

What one can train comes from the service's method descriptions (options, recipes, run defaults), and the run
settings' rows (steps, batch, schedule, device, seed, saving, ...) from the service's description of
``TrainSettings`` (``run_setting_fields``), so the form offers what ``studio train`` accepts, with the same
defaults, bounds and help; a recipe fills it the way ``--recipe`` would, and every field stays editable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.errors import StudioError
from studio.paths import user_runs_dir
from studio.service.descriptions import ConfigField, MethodDescription
from studio.ui import errors
from studio.ui.settings import DATASET_PRESETS, RESOLUTIONS
from studio.ui.training_options import ConfigForm, hints, set_setting_value, setting_editor, setting_value

#: The names the run settings' editors have always had on the form (and the tab, the screenshots and the tests);
#: a setting not named here is reached with ``run_editor(name)``.
RUN_WIDGET_NAMES = {
    "steps": "steps_spin", "batch": "batch_spin", "lr_decay": "lr_decay_combo", "budget_minutes": "budget_spin",
    "device": "device_combo", "seed": "seed_spin", "checkpoint_every": "checkpoint_spin",
    "sample_every": "sample_spin", "log_every": "log_spin",
}
#: The box that holds the data, method and run folder rows; the run settings of this group join it.
RUN_GROUP = "Run"


def dataset_spec_with_resolution(spec: str, resolution: int) -> str:
    """Add ``res=`` to a spec that does not say its resolution."""
    spec = spec.strip()
    if any(part.strip().startswith("res=") for part in spec.split(",")[1:]):
        return spec
    return f"{spec},res={int(resolution)}"


class TrainingForm(QScrollArea):
    """The left side of the Training tab, scrolling. ``settings()`` gives the run it describes; ``form_state()``
    and ``restore_form_state()`` keep it between sessions."""

    def __init__(self, service, parent: QWidget | None = None, runs_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.runs_dir = Path(runs_dir) if runs_dir is not None else user_runs_dir()
        #: what the service says one can train, by name (options, recipes, run defaults)
        self.methods: dict[str, MethodDescription] = {m.name: m for m in service.methods()}
        #: the run settings the form shows, as the service declares them (``TrainSettings``' fields with form hints)
        self.run_fields: dict[str, ConfigField] = {f.name: f for f in service.run_setting_fields()}
        self.run_editors: dict[str, QWidget] = {}
        self._build()
        self._on_method_changed()

    # --- building ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.dataset_combo = QComboBox()
        self.dataset_combo.setEditable(True)
        for label, spec in DATASET_PRESETS:
            self.dataset_combo.addItem(spec, spec)
            self.dataset_combo.setItemData(self.dataset_combo.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        self.dataset_combo.setCurrentText("fonts:small")
        self.dataset_combo.setToolTip("A built-in dataset (fonts:small, shapes:tiny, ...) or the path of a folder "
                                      "with images and attributes.csv")
        self.dataset_combo.currentTextChanged.connect(self._update_out_placeholder)
        folder = QPushButton("Folder…")
        folder.setToolTip("Train on a folder of images with an attributes.csv")
        folder.clicked.connect(self._on_choose_dataset_folder)
        dataset_row = QHBoxLayout()
        dataset_row.addWidget(self.dataset_combo, 1)
        dataset_row.addWidget(folder)
        self.resolution_combo = QComboBox()
        for r in RESOLUTIONS:
            self.resolution_combo.addItem(f"{r} px", r)
        self.resolution_combo.setCurrentIndex(RESOLUTIONS.index(64))
        self.resolution_combo.setToolTip("Image size the model works at (ignored when the dataset spec has res=)")

        self.method_combo = QComboBox()
        for method in self.methods.values():
            self.method_combo.addItem(f"{method.label} — {method.name}", method.name)
        self.method_combo.setToolTip("The disentangling method; its hyper-parameters are listed below")
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)

        self.recipe_combo = QComboBox()
        self.recipe_combo.setToolTip("Fill the form with a measured set of settings for one situation, e.g. a short "
                                     "run on a CPU; every field stays editable")
        self.recipe_combo.activated.connect(self._on_recipe_chosen)
        boxes = self._build_run_settings()

        self.out_edit = QLineEdit()
        self.out_edit.setToolTip("The run folder (config, checkpoints, metrics, samples). Empty: a new folder "
                                 "under the runs folder of the preferences")
        out_browse = QPushButton("Browse…")
        out_browse.clicked.connect(self._on_choose_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(out_browse)
        self.resume_check = QCheckBox("Continue the run in this folder")
        self.resume_check.setToolTip("Resume exactly from the folder's last checkpoint (same settings)")
        for name, f in self.run_fields.items():
            if hints(f).kept_on_resume:  # a resumed run keeps its schedule and its time budget
                self.resume_check.toggled.connect(self.run_editors[name].setDisabled)

        self.init_edit = QLineEdit()
        self.init_edit.setPlaceholderText("(train from scratch)")
        self.init_edit.setToolTip("Fine-tune: start from the weights of this checkpoint (same method and slots); "
                                  "a .safetensors file or a run folder")
        init_browse = QPushButton("Browse…")
        init_browse.clicked.connect(self._on_choose_init)
        self.init_current = QPushButton("Current")
        self.init_current.setToolTip("Fine-tune the model that is loaded in the composer")
        self.init_current.clicked.connect(self._on_init_from_loaded)
        init_row = QHBoxLayout()
        init_row.addWidget(self.init_edit, 1)
        init_row.addWidget(init_browse)
        init_row.addWidget(self.init_current)

        run_form = boxes[RUN_GROUP][1]
        run_form.insertRow(0, "Dataset", dataset_row)
        run_form.insertRow(1, "Resolution", self.resolution_combo)
        run_form.insertRow(2, "Method", self.method_combo)
        run_form.insertRow(3, "Recipe", self.recipe_combo)
        run_form.addRow("Output folder", out_row)
        run_form.addRow("", self.resume_check)
        run_form.addRow("Fine-tune from", init_row)

        self.config_form = ConfigForm()
        self.method_box = QGroupBox("Hyper-parameters")
        reset = QPushButton("Reset to defaults")
        reset.setToolTip("Put every hyper-parameter back to the method's default")
        reset.clicked.connect(self.config_form.reset)
        box_layout = QVBoxLayout(self.method_box)
        box_layout.addWidget(self.config_form)
        box_layout.addWidget(reset, 0, Qt.AlignmentFlag.AlignRight)

        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.setContentsMargins(0, 0, 6, 0)
        self._boxes = [box for box, _form in boxes.values()] + [self.method_box]
        for box in self._boxes:
            inner_layout.addWidget(box)
        inner_layout.addStretch(1)
        self.setWidget(inner)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(inner.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 4)

    def _build_run_settings(self) -> dict[str, tuple[QGroupBox, QFormLayout]]:
        """One row per declared run setting, in declaration order, in the box its hints name (the run box first)."""
        boxes: dict[str, tuple[QGroupBox, QFormLayout]] = {}
        for group in [RUN_GROUP, *(hints(f).group for f in self.run_fields.values())]:
            if group not in boxes:
                box = QGroupBox(group)
                form = QFormLayout(box)
                form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
                boxes[group] = (box, form)
        for name, f in self.run_fields.items():
            editor = setting_editor(f)
            self.run_editors[name] = editor
            if name in RUN_WIDGET_NAMES:
                setattr(self, RUN_WIDGET_NAMES[name], editor)
            label = QLabel(hints(f).label)
            label.setToolTip(editor.toolTip())
            boxes[hints(f).group][1].addRow(label, editor)
        return boxes

    def run_editor(self, name: str) -> QWidget:
        """The editor of the run setting ``name``."""
        return self.run_editors[name]

    def run_value(self, name: str) -> Any:
        """The value the form holds for the run setting ``name``."""
        return setting_value(self.run_editors[name])

    def set_run_value(self, name: str, value: Any) -> bool:
        """Show ``value`` for the run setting ``name``; False where it does not fit (see ``set_setting_value``)."""
        return set_setting_value(self.run_fields[name], self.run_editors[name], value)

    def set_running(self, running: bool) -> None:
        """Lock the form while a run goes on (it describes that run)."""
        for w in self._boxes:
            w.setEnabled(not running)

    # --- the method and its recipes -----------------------------------------------------------------------
    def method_name(self) -> str:
        return str(self.method_combo.currentData())

    def method(self) -> MethodDescription:
        return self.methods[self.method_name()]

    def set_method(self, name: str) -> None:
        self.method_combo.setCurrentIndex(self.method_combo.findData(name))

    def set_dataset(self, spec: str) -> None:
        self.dataset_combo.setCurrentText(spec)

    def dataset_spec(self) -> str:
        spec = self.dataset_combo.currentText().strip()
        if not spec:
            raise StudioError("choose a dataset to train on: a built-in one (fonts:small, ...) or a folder")
        return dataset_spec_with_resolution(spec, int(self.resolution_combo.currentData()))

    def _on_method_changed(self, *_args) -> None:
        method = self.method()
        self.config_form.set_fields(method.fields)
        self.method_box.setTitle(f"{method.label} hyper-parameters")
        self.recipe_combo.clear()
        self.recipe_combo.addItem("method defaults", None)
        self.recipe_combo.setItemData(0, "Every hyper-parameter at the method's default", Qt.ItemDataRole.ToolTipRole)
        for name, recipe in method.recipes.items():
            self.recipe_combo.addItem(name, name)
            self.recipe_combo.setItemData(self.recipe_combo.count() - 1, recipe.summary, Qt.ItemDataRole.ToolTipRole)
        self.recipe_combo.setEnabled(bool(method.recipes))
        self.apply_recipe(self.auto_recipe())
        self._update_out_placeholder()

    def auto_recipe(self) -> str | None:
        """What ``studio train`` takes when no --recipe is given (``auto``): the method's ``cpu`` recipe when the
        run's device is the CPU ("auto" resolves as the service's own device did), else none."""
        method = self.method()
        if "cpu" not in method.recipes:
            return None
        device = str(self.run_value("device"))
        resolved = str(getattr(self.service, "device", "cpu")) if device == "auto" else device
        return "cpu" if resolved.startswith("cpu") else None

    def apply_recipe(self, name: str | None) -> None:
        """Fill the run settings and hyper-parameters from the method's recipe ``name`` (None: the defaults)."""
        method = self.method()
        recipe = method.recipes[name] if name is not None else None
        for setting, value in method.run_settings(name).items():
            if setting in self.run_editors:
                self.set_run_value(setting, value)
        self.config_form.reset()
        for option, value in (recipe.options if recipe else {}).items():
            self.config_form.set_value(option, value)
        self.recipe_combo.setCurrentIndex(0 if name is None else max(0, self.recipe_combo.findData(name)))

    def _on_recipe_chosen(self, index: int) -> None:
        self.apply_recipe(self.recipe_combo.itemData(index))

    # --- between sessions -----------------------------------------------------------------------------------
    def form_state(self) -> dict[str, Any]:
        """The form's values worth keeping for next time (not the run folder, resume or fine-tune source, which
        belong to one run, nor the device, which the preferences set), as JSON-ready data."""
        options: dict[str, Any] = {}
        for f in self.config_form.fields():
            try:
                value = self.config_form.value(f.name)
            except StudioError:
                continue  # a half-typed entry is not worth remembering
            if value != f.default:
                options[f.name] = list(value) if isinstance(value, tuple) else value
        remembered = {name: self.run_value(name) for name, f in self.run_fields.items() if hints(f).remembered}
        return {"dataset": self.dataset_combo.currentText(), "resolution": self.resolution_combo.currentData(),
                "method": self.method_name(), "recipe": self.recipe_combo.currentData(), **remembered,
                "options": options}

    def restore_form_state(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`form_state` gave; unknown methods, options or values are skipped one by one."""
        if state.get("method") in self.methods:
            self.set_method(state["method"])
        if isinstance(state.get("dataset"), str) and state["dataset"].strip():
            self.set_dataset(state["dataset"])
        index = self.resolution_combo.findData(state.get("resolution")) if state.get("resolution") else -1
        if index >= 0:
            self.resolution_combo.setCurrentIndex(index)
        if "recipe" in state:  # None: the method's defaults (item 0), which the automatic recipe may have replaced
            index = 0 if state["recipe"] is None else self.recipe_combo.findData(state["recipe"])
            if index >= 0:
                self.recipe_combo.setCurrentIndex(index)
        for name, f in self.run_fields.items():
            if hints(f).remembered and state.get(name) is not None:
                self.set_run_value(name, state[name])
        options = state.get("options")
        if isinstance(options, dict):  # the options that differ from the defaults, not from the automatic recipe
            self.config_form.reset()
        names = {f.name for f in self.config_form.fields()}
        for name, value in (options if isinstance(options, dict) else {}).items():
            if name in names:
                try:
                    self.config_form.set_value(name, tuple(value) if isinstance(value, list) else value)
                except (TypeError, ValueError):
                    continue

    # --- the run ---------------------------------------------------------------------------------------------
    def set_runs_dir(self, runs_dir: Path) -> None:
        """Where new runs go by default (the preferences' runs folder); the run-folder hint follows."""
        self.runs_dir = Path(runs_dir)
        self._update_out_placeholder()

    def _update_out_placeholder(self, *_args) -> None:
        self.out_edit.setPlaceholderText(str(self._default_out(stamp="<date>-<time>")))

    def _default_out(self, stamp: str | None = None) -> Path:
        spec = self.dataset_combo.currentText().strip() or "data"
        head = spec.split(",")[0]
        name = Path(head).name if ("/" in head or "\\" in head) else head.replace(":", "-")
        stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
        return self.runs_dir / f"{self.method_name()}-{name}-{stamp}"

    def settings(self):
        """The service's run settings (TrainSettings) this form describes; StudioError names a bad field."""
        out_text = self.out_edit.text().strip()
        out = Path(out_text).expanduser() if out_text else self._default_out()
        init = self.init_edit.text().strip() or None
        if init and self.resume_check.isChecked():
            raise StudioError("fine-tuning starts a new run; untick “Continue the run in this folder” or clear "
                              "“Fine-tune from”")
        resume = self.resume_check.isChecked()
        run = {name: None if resume and hints(f).kept_on_resume else self.run_value(name)
               for name, f in self.run_fields.items()}
        return self.service.train_settings(
            method=self.method_name(), dataset=self.dataset_spec(), out=out, resume=resume, init_from=init, **run,
            method_options=self.config_form.changed_values())

    def _on_choose_dataset_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Training Data Folder", str(Path.home()))
        if chosen:
            self.dataset_combo.setCurrentText(chosen)

    def _on_choose_out(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Run folder", str(self.runs_dir))
        if chosen:
            self.out_edit.setText(chosen)

    def _on_choose_init(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Fine-tune from checkpoint", str(self.runs_dir),
                                                "Checkpoints (*.safetensors);;All files (*)")
        if chosen:
            self.set_fine_tune_source(chosen)

    def _on_init_from_loaded(self) -> None:
        model = getattr(self.service, "model", None)
        if model is None:
            errors.reporter().report_message("No model is loaded; open one with File ▸ Open Model first.")
            return
        self.set_fine_tune_source(model.path)

    def set_fine_tune_source(self, path: str | Path) -> None:
        """Fine-tune from ``path``: the form takes the checkpoint's method, data and hyper-parameters, so the
        run starts from what the weights were made for (changing the network's shape would not fit them)."""
        try:
            described = self.service.describe_checkpoint(path)
        except StudioError as e:
            errors.reporter().report(e)
            return
        if described.method not in self.methods:
            errors.reporter().report(StudioError(f"{path}: made by an unknown method {described.method!r}"))
            return
        self.init_edit.setText(str(described.path))
        self.set_method(described.method)
        known = {f.name for f in self.config_form.fields()}
        for name, value in described.config.items():
            if name in known:
                self.config_form.set_value(name, tuple(value) if isinstance(value, list) else value)
        if described.dataset_spec:
            self.set_dataset(described.dataset_spec)

