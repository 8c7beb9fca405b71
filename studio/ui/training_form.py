"""The Training tab's form: data, method, recipe, run settings and the method's hyper-parameters, and the
service's run settings (``TrainSettings``) they describe.

What one can train comes from the service's method descriptions (options, recipes, run defaults), so the form
offers what ``studio train`` accepts; a recipe fills it the way ``--recipe`` would, and every field stays editable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.errors import StudioError
from studio.paths import user_runs_dir
from studio.service.descriptions import MethodDescription
from studio.ui import errors
from studio.ui.settings import DATASET_PRESETS, DEVICES, RESOLUTIONS
from studio.ui.training_options import ConfigForm


def dataset_spec_with_resolution(spec: str, resolution: int) -> str:
    """Add ``res=`` to a spec that does not say its resolution."""
    spec = spec.strip()
    if any(part.strip().startswith("res=") for part in spec.split(",")[1:]):
        return spec
    return f"{spec},res={int(resolution)}"


def int_spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    """One of the form's whole-number fields."""
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


class TrainingForm(QScrollArea):
    """The left side of the Training tab, scrolling. ``settings()`` gives the run it describes; ``form_state()``
    and ``restore_form_state()`` keep it between sessions."""

    def __init__(self, service, parent: QWidget | None = None, runs_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.runs_dir = Path(runs_dir) if runs_dir is not None else user_runs_dir()
        #: what the service says one can train, by name (options, recipes, run defaults)
        self.methods: dict[str, MethodDescription] = {m.name: m for m in service.methods()}
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

        self.steps_spin = int_spin(1, 10_000_000, 20000, "Optimisation steps of the whole run")
        self.steps_spin.setGroupSeparatorShown(True)
        self.batch_spin = int_spin(1, 4096, 8, "Batch size; for GZS-Net and DEAE it counts groups (several "
                                   "images each), for the other methods images")
        self.lr_decay_combo = QComboBox()
        for decay, label in (("none", "constant"), ("cosine", "cosine decay to zero"),
                             ("linear", "linear decay to zero")):
            self.lr_decay_combo.addItem(label, decay)
        self.lr_decay_combo.setToolTip("Learning-rate schedule over the run's steps; a short run ends sharper with "
                                       "a decay. A continued run keeps the schedule it started with")
        self.budget_spin = QDoubleSpinBox()
        self.budget_spin.setRange(0.0, 1_000_000.0)
        self.budget_spin.setDecimals(1)
        self.budget_spin.setSingleStep(5.0)
        self.budget_spin.setSuffix(" min")
        self.budget_spin.setSpecialValueText("none")
        self.budget_spin.setToolTip("Total training time of the run: it ends when the time is spent (or at Steps, "
                                    "whichever comes first), and the LR schedule follows the nearer of the two, so "
                                    "a slow or busy machine still finishes its schedule. A continued run keeps its own")
        self.recipe_combo = QComboBox()
        self.recipe_combo.setToolTip("Fill the form with a measured set of settings for one situation, e.g. a short "
                                     "run on a CPU; every field stays editable")
        self.recipe_combo.activated.connect(self._on_recipe_chosen)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto takes a CUDA GPU, then Apple MPS, then the CPU")
        self.seed_spin = int_spin(0, 2**31 - 1, 0,
                                  "Random seed of initialisation and batches (the zero-shot split stays fixed)")
        self.checkpoint_spin = int_spin(0, 10_000_000, 500,
                                        "Save a checkpoint every this many steps (0: only at the end)")
        self.sample_spin = int_spin(0, 10_000_000, 250, "Write a grid of samples every this many steps (0: never)")
        self.log_spin = int_spin(1, 100_000, 25, "Average the losses into metrics.jsonl every this many steps")

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
        self.resume_check.toggled.connect(self.lr_decay_combo.setDisabled)  # a resumed run keeps its schedule
        self.resume_check.toggled.connect(self.budget_spin.setDisabled)  # ... and its time budget

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

        run_box = QGroupBox("Run")
        run_form = QFormLayout(run_box)
        run_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        run_form.addRow("Dataset", dataset_row)
        run_form.addRow("Resolution", self.resolution_combo)
        run_form.addRow("Method", self.method_combo)
        run_form.addRow("Recipe", self.recipe_combo)
        run_form.addRow("Steps", self.steps_spin)
        run_form.addRow("Batch", self.batch_spin)
        run_form.addRow("LR schedule", self.lr_decay_combo)
        run_form.addRow("Time budget", self.budget_spin)
        run_form.addRow("Device", self.device_combo)
        run_form.addRow("Seed", self.seed_spin)
        run_form.addRow("Output folder", out_row)
        run_form.addRow("", self.resume_check)
        run_form.addRow("Fine-tune from", init_row)

        log_box = QGroupBox("Saving")
        log_form = QFormLayout(log_box)
        log_form.addRow("Checkpoint every", self.checkpoint_spin)
        log_form.addRow("Samples every", self.sample_spin)
        log_form.addRow("Log every", self.log_spin)

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
        inner_layout.addWidget(run_box)
        inner_layout.addWidget(log_box)
        inner_layout.addWidget(self.method_box)
        inner_layout.addStretch(1)
        self._boxes = [run_box, log_box, self.method_box]
        self.setWidget(inner)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(inner.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 4)

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
        device = self.device_combo.currentText()
        resolved = str(getattr(self.service, "device", "cpu")) if device == "auto" else device
        return "cpu" if resolved.startswith("cpu") else None

    def apply_recipe(self, name: str | None) -> None:
        """Fill the run settings and hyper-parameters from the method's recipe ``name`` (None: the defaults)."""
        method = self.method()
        recipe = method.recipes[name] if name is not None else None
        values = method.run_settings(name)
        self.steps_spin.setValue(min(int(values["steps"]), self.steps_spin.maximum()))
        self.batch_spin.setValue(int(values["batch"]))
        self.lr_decay_combo.setCurrentIndex(max(0, self.lr_decay_combo.findData(values["lr_decay"])))
        self.budget_spin.setValue(float(values["budget_minutes"]))
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
        return {"dataset": self.dataset_combo.currentText(), "resolution": self.resolution_combo.currentData(),
                "method": self.method_name(), "recipe": self.recipe_combo.currentData(),
                "steps": self.steps_spin.value(), "batch": self.batch_spin.value(),
                "lr_decay": self.lr_decay_combo.currentData(), "budget_minutes": self.budget_spin.value(),
                "seed": self.seed_spin.value(), "checkpoint_every": self.checkpoint_spin.value(),
                "sample_every": self.sample_spin.value(), "log_every": self.log_spin.value(), "options": options}

    def restore_form_state(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`form_state` gave; unknown methods, options or values are skipped one by one."""
        if state.get("method") in self.methods:
            self.set_method(state["method"])
        if isinstance(state.get("dataset"), str) and state["dataset"].strip():
            self.set_dataset(state["dataset"])
        for combo, key in ((self.resolution_combo, "resolution"), (self.lr_decay_combo, "lr_decay"),
                           (self.recipe_combo, "recipe")):
            index = combo.findData(state.get(key)) if state.get(key) is not None else -1
            if index >= 0:
                combo.setCurrentIndex(index)
        spins = {"steps": self.steps_spin, "batch": self.batch_spin, "seed": self.seed_spin,
                 "checkpoint_every": self.checkpoint_spin, "sample_every": self.sample_spin,
                 "log_every": self.log_spin, "budget_minutes": self.budget_spin}
        for key, spin in spins.items():
            value = state.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                spin.setValue(value if isinstance(spin, QDoubleSpinBox) else int(value))
        names = {f.name for f in self.config_form.fields()}
        for name, value in (state.get("options") or {}).items():
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
        return self.service.train_settings(
            method=self.method_name(), dataset=self.dataset_spec(), out=out, steps=self.steps_spin.value(),
            batch=self.batch_spin.value(), device=self.device_combo.currentText(), seed=self.seed_spin.value(),
            resume=self.resume_check.isChecked(), init_from=init, checkpoint_every=self.checkpoint_spin.value(),
            sample_every=self.sample_spin.value(), log_every=self.log_spin.value(),
            lr_decay=None if self.resume_check.isChecked() else self.lr_decay_combo.currentData(),
            budget_minutes=None if self.resume_check.isChecked() else self.budget_spin.value(),
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

