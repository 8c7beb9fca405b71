"""The Training tab: choose data, method and hyper-parameters, run a job in the background and watch it.

The hyper-parameter form is generated from the service's method descriptions (each config dataclass's fields),
so its defaults, bounds and tooltips come from the same source as the command line's. The job runs on the
service's training thread; its events arrive here through ``gui_callback`` (a queued hop to the GUI thread).
Loss curves are created once per loss and fed numpy arrays with ``setData`` on a timer, downsampled and clipped
by pyqtgraph.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPainter, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.errors import StudioError
from studio.paths import user_runs_dir
from studio.service.descriptions import ConfigField, MethodDescription, parse_field
from studio.ui import errors
from studio.ui.image_view import ImageView
from studio.ui.settings import DATASET_PRESETS, DEVICES, RESOLUTIONS
from studio.ui.workers import gui_callback, watch

LOSS_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#7f7f7f", "#bcbd22")


def format_duration(seconds: float) -> str:
    """ETA text: '1:02:03', '4:05' or '–' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def dataset_spec_with_resolution(spec: str, resolution: int) -> str:
    """Add ``res=`` to a spec that does not say its resolution."""
    spec = spec.strip()
    if any(part.strip().startswith("res=") for part in spec.split(",")[1:]):
        return spec
    return f"{spec},res={int(resolution)}"


# --- the generated hyper-parameter form -----------------------------------------------------------------
class ConfigForm(QWidget):
    """One editor per field of a method's config dataclass; ``changed_values()`` gives the overrides.

    Numbers are typed as text and parsed by ``parse_field`` (the CLI's parser), so 1e-4 reads as a person
    writes it and a bad value gets the same message the command line would print.
    """

    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fields: list[ConfigField] = []
        self._editors: dict[str, QWidget] = {}
        self._form = QFormLayout(self)
        self._form.setContentsMargins(0, 0, 0, 0)
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._form.setVerticalSpacing(4)

    def set_fields(self, config: Sequence[ConfigField]) -> None:
        """One editor per option (a method's ``MethodDescription.fields``)."""
        while self._form.rowCount():
            self._form.removeRow(0)
        self._fields = list(config)
        self._editors = {}
        for f in self._fields:
            editor = self._make_editor(f)
            editor.setToolTip(self._tooltip(f))
            self._editors[f.name] = editor
            label = QLabel(f.name.replace("_", " "))
            label.setToolTip(editor.toolTip())
            self._form.addRow(label, editor)

    def fields(self) -> list[ConfigField]:
        return list(self._fields)

    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def _tooltip(self, f: ConfigField) -> str:
        extra = []
        if f.choices:
            extra.append("choices: " + ", ".join(map(str, f.choices)))
        if f.low is not None or f.high is not None:
            extra.append(f"range: {'' if f.low is None else f.low} … {'' if f.high is None else f.high}")
        extra.append(f"default: {self._text(f, f.default)}")
        return f.help + ("\n" + "; ".join(extra) if extra else "")

    @staticmethod
    def _text(f: ConfigField, value: Any) -> str:
        if f.type is tuple:
            return ",".join(str(v) for v in value)
        if f.type is float:
            return f"{value:g}"
        return str(value)

    def _make_editor(self, f: ConfigField) -> QWidget:
        if f.type is bool:
            box = QCheckBox()
            box.setChecked(bool(f.default))
            box.toggled.connect(self.edited)
            return box
        if f.choices:
            combo = QComboBox()
            for choice in f.choices:
                combo.addItem(str(choice), choice)
            combo.setCurrentIndex(max(0, combo.findData(f.default)))
            combo.currentIndexChanged.connect(self.edited)
            return combo
        if f.type is int and f.low is not None and f.high is not None and f.high - f.low <= 1_000_000:
            spin = QSpinBox()
            spin.setRange(int(f.low), int(f.high))
            spin.setValue(int(f.default))
            spin.valueChanged.connect(self.edited)
            return spin
        line = QLineEdit(self._text(f, f.default))
        line.setPlaceholderText(self._text(f, f.default) or "(empty)")
        line.textChanged.connect(lambda _t, e=line: e.setStyleSheet(""))
        line.textChanged.connect(self.edited)
        return line

    def value(self, name: str) -> Any:
        """The parsed value of one field; a bad entry raises StudioError naming the field."""
        f = next(x for x in self._fields if x.name == name)
        editor = self._editors[name]
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            return editor.currentData()
        if isinstance(editor, QSpinBox):
            return editor.value()
        assert isinstance(editor, QLineEdit)
        text = editor.text().strip()
        if f.type is str:
            return text
        if f.type is tuple and not text:
            return ()
        try:
            return parse_field(f, text)
        except ValueError as e:
            editor.setStyleSheet("QLineEdit { border: 1px solid #d62728; }")
            raise StudioError(f"{f.name.replace('_', ' ')}: {str(e).split(': ', 1)[-1]}") from None

    def values(self) -> dict[str, Any]:
        return {f.name: self.value(f.name) for f in self._fields}

    def changed_values(self) -> dict[str, Any]:
        """Only the fields that differ from their defaults (what goes into ``method_options``)."""
        out = {}
        for f in self._fields:
            v = self.value(f.name)
            if v != f.default:
                out[f.name] = v
        return out

    def set_value(self, name: str, value: Any) -> None:
        f = next(x for x in self._fields if x.name == name)
        editor = self._editors[name]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findData(value)))
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value))
        else:
            assert isinstance(editor, QLineEdit)
            editor.setText(self._text(f, value))

    def reset(self) -> None:
        for f in self._fields:
            self.set_value(f.name, f.default)


# --- loss curves ----------------------------------------------------------------------------------------
#: Figures a method logs beside its losses that are not losses (a gradient norm, LORD's stage number): plotted
#: on the loss axis they would dwarf the curves, so the plot leaves them to metrics.jsonl and tensorboard.
DIAGNOSTIC_PREFIXES = ("grad_norm", "stage")
ENDED = ("finished", "cancelled", "failed")


def is_diagnostic(name: str) -> bool:
    return name.startswith(DIAGNOSTIC_PREFIXES)


class LossHistory:
    """Growing numpy columns of (step, loss) per loss name; amortised O(1) appends, views for setData."""

    def __init__(self) -> None:
        self._steps = np.zeros(256, dtype=np.float64)
        self._values: dict[str, np.ndarray] = {}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def names(self) -> list[str]:
        return list(self._values)

    def append(self, step: int, losses: dict[str, float]) -> None:
        if self._n == len(self._steps):
            self._steps = np.resize(self._steps, 2 * len(self._steps))
            for k in self._values:
                self._values[k] = np.resize(self._values[k], len(self._steps))
        for k in losses:
            if k not in self._values:
                column = np.full(len(self._steps), np.nan, dtype=np.float64)
                self._values[k] = column
        self._steps[self._n] = step
        for k, column in self._values.items():
            column[self._n] = float(losses.get(k, np.nan))
        self._n += 1

    def steps(self) -> np.ndarray:
        return self._steps[: self._n]

    def values(self, name: str) -> np.ndarray:
        return self._values[name][: self._n]

    def clear(self) -> None:
        self.__init__()


class LossPlot(pg.PlotWidget):
    """One curve per loss, created the first time the loss appears; redrawn at most ``fps`` times a second."""

    def __init__(self, parent: QWidget | None = None, fps: float = 8.0) -> None:
        super().__init__(parent, background=None)
        self.history = LossHistory()
        self.curves: dict[str, pg.PlotDataItem] = {}
        item = self.getPlotItem()
        item.setLabel("bottom", "step")
        item.setLabel("left", "loss")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        self.legend = item.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self._dirty = False
        self.placeholder = pg.TextItem("Loss curves appear here once training starts", anchor=(0.5, 0.5),
                                       color=(128, 128, 128))
        item.getViewBox().addItem(self.placeholder, ignoreBounds=True)
        self.placeholder.setPos(0.5, 0.5)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / fps))
        self._timer.timeout.connect(self.redraw)
        self._timer.start()
        self.setMinimumHeight(180)

    def add(self, step: int, losses: dict[str, float]) -> None:
        self.history.append(step, {k: v for k, v in losses.items() if not is_diagnostic(k)})
        self._dirty = True

    def clear_history(self) -> None:
        self.history.clear()
        for curve in self.curves.values():
            self.getPlotItem().removeItem(curve)
            self.legend.removeItem(curve)
        self.curves = {}
        self._dirty = False
        self.placeholder.setVisible(True)

    def set_log_scale(self, on: bool) -> None:
        self.getPlotItem().setLogMode(y=on)

    def point_count(self, name: str | None = None) -> int:
        """Points the curve(s) hold now (tests check a finished run drew something)."""
        names = [name] if name else list(self.curves)
        total = 0
        for n in names:
            x, _y = self.curves[n].getOriginalDataset() if n in self.curves else (None, None)
            total += 0 if x is None else len(x)
        return total

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        steps = self.history.steps()
        self.placeholder.setVisible(len(steps) == 0)
        for i, name in enumerate(self.history.names):
            curve = self.curves.get(name)
            if curve is None:
                color = LOSS_COLORS[i % len(LOSS_COLORS)]
                pen = pg.mkPen(color, width=2.0 if name == "loss" else 1.2)
                curve = self.getPlotItem().plot(name=name, pen=pen, connect="finite")
                self.curves[name] = curve
            curve.setData(steps, self.history.values(name))


class PlaceholderList(QListWidget):
    """A list that says what will appear in it while it is empty."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._placeholder = placeholder

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            painter.end()


# --- the tab ----------------------------------------------------------------------------------------------
class TrainingTab(QWidget):
    """Form on the left, the live run on the right. ``checkpoint_loaded(path)`` fires after "Use in composer"
    has loaded a checkpoint into the service (the main window then shows the composer)."""

    job_started = Signal(object)  # TrainingJob
    job_ended = Signal(str)  # final state
    progressed = Signal(object)  # ProgressEvent, on the GUI thread
    checkpoint_loaded = Signal(object)  # Path

    def __init__(self, service, parent: QWidget | None = None, runs_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.runs_dir = Path(runs_dir) if runs_dir is not None else user_runs_dir()
        #: what the service says one can train, by name (options, recipes, run defaults)
        self.methods: dict[str, MethodDescription] = {m.name: m for m in service.methods()}
        self.job = None
        self._relays: list[tuple[Any, Any]] = []
        self._last_step = 0
        self._state = ""  # the job's state as last shown
        #: asked before "Use in composer" loads a checkpoint (the main window: would it replace the composition?)
        self.confirm_use: Any = None
        self._started_at = 0.0

        self._build_form()
        self._build_monitor()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._form_scroll)
        splitter.addWidget(self._monitor)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 800])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)
        self._on_method_changed()
        self._set_running(False)
        self.device_combo.currentTextChanged.connect(self._on_device_changed)

    # --- building ---------------------------------------------------------------------------------------
    def _build_form(self) -> None:
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

        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 10_000_000)
        self.steps_spin.setValue(20000)
        self.steps_spin.setGroupSeparatorShown(True)
        self.steps_spin.setToolTip("Optimisation steps of the whole run")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setValue(8)
        self.batch_spin.setToolTip("Batch size; for GZS-Net and DEAE it counts groups (several images each), "
                                   "for the other methods images")
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
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Random seed of initialisation and batches (the zero-shot split stays fixed)")
        self.checkpoint_spin = QSpinBox()
        self.checkpoint_spin.setRange(0, 10_000_000)
        self.checkpoint_spin.setValue(500)
        self.checkpoint_spin.setToolTip("Save a checkpoint every this many steps (0: only at the end)")
        self.sample_spin = QSpinBox()
        self.sample_spin.setRange(0, 10_000_000)
        self.sample_spin.setValue(250)
        self.sample_spin.setToolTip("Write a grid of samples every this many steps (0: never)")
        self.log_spin = QSpinBox()
        self.log_spin.setRange(1, 100_000)
        self.log_spin.setValue(25)
        self.log_spin.setToolTip("Average the losses into metrics.jsonl every this many steps")

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
        self._form_widgets = [run_box, log_box, self.method_box]
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(inner.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        self._form_scroll = scroll

    def _build_monitor(self) -> None:
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start training with these settings (runs in the background)")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause the run without losing anything; Resume continues it")
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Save a checkpoint and end the run")
        self.stop_button.clicked.connect(self.stop)
        self.state_label = QLabel("Ready to train.")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.state_label, 1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("No run yet")
        self.rate_label = QLabel("–")
        self.eta_label = QLabel("–")
        self.loss_label = QLabel("–")
        stats = QHBoxLayout()
        for caption, label in (("Speed", self.rate_label), ("Remaining", self.eta_label), ("Loss", self.loss_label)):
            cap = QLabel(caption + ":")
            cap.setEnabled(False)
            stats.addWidget(cap)
            stats.addWidget(label)
            stats.addSpacing(16)
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setToolTip("Logarithmic loss axis (losses that can be negative, like a WGAN's, drop out)")
        self.log_scale.toggled.connect(lambda on: self.plot.set_log_scale(on))
        stats.addStretch(1)
        stats.addWidget(self.log_scale)

        self.plot = LossPlot()

        self.sample_view = ImageView("Sample grids appear here while the model trains", side=240)
        self.sample_caption = QLabel("Newest samples")
        sample_box = QWidget()
        sample_layout = QVBoxLayout(sample_box)
        sample_layout.setContentsMargins(0, 0, 0, 0)
        sample_layout.addWidget(self.sample_caption)
        sample_layout.addWidget(self.sample_view, 1)

        self.checkpoint_list = PlaceholderList("Checkpoints of the run are listed here")
        self.checkpoint_list.setToolTip("Checkpoints of this run, newest first; double-click to use one")
        self.checkpoint_list.itemDoubleClicked.connect(lambda _item: self.use_selected_checkpoint())
        self.checkpoint_list.currentItemChanged.connect(lambda *_: self._update_use_button())
        self.use_button = QPushButton("Use in composer")
        self.use_button.setToolTip("Load the selected checkpoint and show it in the composer")
        self.use_button.clicked.connect(self.use_selected_checkpoint)
        self.open_folder_button = QPushButton("Open run folder")
        self.open_folder_button.clicked.connect(self._on_open_folder)
        ckpt_buttons = QHBoxLayout()
        ckpt_buttons.addWidget(self.use_button)
        ckpt_buttons.addWidget(self.open_folder_button)
        ckpt_box = QWidget()
        ckpt_layout = QVBoxLayout(ckpt_box)
        ckpt_layout.setContentsMargins(0, 0, 0, 0)
        ckpt_layout.addWidget(QLabel("Checkpoints"))
        ckpt_layout.addWidget(self.checkpoint_list, 1)
        ckpt_layout.addLayout(ckpt_buttons)

        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(sample_box)
        bottom.addWidget(ckpt_box)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 2)
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(self.plot)
        vertical.addWidget(bottom)
        vertical.setStretchFactor(0, 1)
        vertical.setStretchFactor(1, 1)

        monitor = QWidget()
        layout = QVBoxLayout(monitor)
        layout.setContentsMargins(6, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addLayout(stats)
        layout.addWidget(vertical, 1)
        self._monitor = monitor
        self._update_use_button()

    def sizeHint(self) -> QSize:
        return QSize(1200, 760)

    # --- form ---------------------------------------------------------------------------------------------
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

    def _on_device_changed(self, *_args) -> None:
        """Follow the device with the recipe, as the CLI would, while the form still holds an automatic choice."""
        if self.recipe_combo.currentData() in (None, "cpu") and not self.is_running():
            wanted = self.auto_recipe()
            if wanted != self.recipe_combo.currentData():
                self.apply_recipe(wanted)

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

    def _on_recipe_chosen(self, index: int) -> None:
        self.apply_recipe(self.recipe_combo.itemData(index))

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

    # --- running -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a job from the form (errors in the form go to the error dialog)."""
        if self.job is not None and self.job.running:
            return
        try:
            settings = self.settings()
            job = self.service.start_training(settings)
        except (StudioError, KeyError, ValueError) as e:
            errors.reporter().report(e if isinstance(e, StudioError) else StudioError(str(e)))
            return
        self.attach(job)

    def attach(self, job) -> None:
        """Follow a job (one this tab started, or one the service already runs)."""
        self._detach()
        self.job = job
        self.plot.clear_history()
        self.checkpoint_list.clear()
        self.sample_view.set_image(None)
        self.sample_caption.setText("Newest samples")
        self._last_step = 0
        self._started_at = time.monotonic()
        self.progress.setFormat("step %v of %m")
        self.progress.setRange(0, max(1, int(job.settings.steps)))
        self.progress.setValue(0)
        handlers = {
            "progress": self._on_progress, "sample": self._on_sample, "checkpoint": self._on_checkpoint,
            "finished": self._on_finished, "failed": self._on_failed, "state_changed": self._on_state_changed,
        }
        for name, handler in handlers.items():
            relay = gui_callback(handler, self)
            getattr(job.events, name).connect(relay)
            self._relays.append((getattr(job.events, name), relay))
        for event in list(job.history):
            self.plot.add(event.step, event.losses)
        for path in list(job.checkpoints):
            self._add_checkpoint(self._step_of(path), path)
        if getattr(job, "last_sample", None) is not None:
            self.sample_view.set_image(job.last_sample)
        self._set_running(job.running)
        self._on_state_changed(job.state)
        self.job_started.emit(job)

    def _detach(self) -> None:
        for signal, relay in self._relays:
            try:
                signal.disconnect(relay)
            except (ValueError, RuntimeError):
                continue
        self._relays = []

    def pause(self) -> None:
        if self.job is not None:
            self.job.pause()

    def resume(self) -> None:
        if self.job is not None:
            self.job.resume()

    def stop(self) -> None:
        """Save a checkpoint and end the run."""
        if self.job is not None and self.job.running:
            self.job.stop()

    def is_running(self) -> bool:
        return self.job is not None and self.job.running

    def _on_pause_clicked(self) -> None:
        if self.job is None:
            return
        if self.job.state == "paused":
            self.job.resume()
        else:
            self.job.pause()

    def _set_running(self, running: bool) -> None:
        for w in self._form_widgets:
            w.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        if not running:
            self.pause_button.setText("Pause")

    # --- job events (GUI thread) ------------------------------------------------------------------------
    def _on_progress(self, event) -> None:
        self._last_step = int(event.step)
        self.plot.add(event.step, event.losses)
        self.progress.setMaximum(max(1, int(event.total)))
        self.progress.setValue(int(event.step))
        headline = event.losses.get("loss", next(iter(event.losses.values()), float("nan")))
        self.loss_label.setText(f"{headline:.4g}")
        if self._state in ("starting", "running"):
            self.rate_label.setText(f"{event.steps_per_s:,.1f} steps/s" if event.steps_per_s else "–")
            self.eta_label.setText(format_duration(event.eta_s))
        else:  # a step that ended after Pause or Stop was pressed: the state line names it, nothing runs down
            self._on_state_changed(self._state)
        self.progressed.emit(event)

    def _on_sample(self, step: int, grid: np.ndarray, _path) -> None:
        self.sample_view.set_image(grid)
        self.sample_caption.setText(f"Newest samples (step {int(step):,})")

    def _on_checkpoint(self, step: int, path) -> None:
        self._add_checkpoint(int(step), Path(path))

    def _add_checkpoint(self, step: int, path: Path) -> None:
        for row in range(self.checkpoint_list.count() - 1, -1, -1):
            existing = Path(self.checkpoint_list.item(row).data(Qt.ItemDataRole.UserRole))
            if existing == path or not existing.exists():
                self.checkpoint_list.takeItem(row)
        item = QListWidgetItem(f"step {step:,}  ·  {path.name}")
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        self.checkpoint_list.insertItem(0, item)
        if self.checkpoint_list.currentRow() < 0 or self.checkpoint_list.currentRow() == 1:
            self.checkpoint_list.setCurrentRow(0)
        self._update_use_button()

    @staticmethod
    def _step_of(path: Path) -> int:
        digits = "".join(ch for ch in Path(path).stem if ch.isdigit())
        return int(digits) if digits else 0

    def _on_finished(self, result) -> None:
        final = Path(getattr(result, "checkpoint", "") or "")
        step = int(getattr(result, "step", self._last_step))
        kept = getattr(result, "kept", None)  # the numbered checkpoint of the last step, when the run keeps it
        if kept is not None and Path(kept).exists():
            final = Path(kept)
        if final.name and final.exists():
            self._add_checkpoint(step, final)
        if step > 0:  # the bar and the state line both end at the step the run ended at
            self._last_step = step
            self.progress.setMaximum(max(self.progress.maximum(), step))
            self.progress.setValue(step)
        self._on_state_changed(self.job.state if self.job is not None and self.job.state in ENDED else "finished")
        self.plot.redraw()
        self._set_running(False)
        self._detach()  # an ended job sends nothing more; holding on would keep this tab alive with it
        self.job_ended.emit(self.job.state if self.job is not None else "finished")

    def _on_failed(self, message: str) -> None:
        self.plot.redraw()
        self._set_running(False)
        self.state_label.setText("Failed: " + message)
        details = getattr(self.job, "details", "") if self.job is not None else ""
        errors.reporter().report_message(f"Training failed: {message}", details)
        self._detach()
        self.job_ended.emit("failed")

    def _on_state_changed(self, state: str) -> None:
        self._state = state
        if state not in ("starting", "running"):  # nothing runs down while paused or after the end
            self.eta_label.setText("–")
            self.rate_label.setText("–")
        step = f" at step {self._last_step:,}" if self._last_step else ""
        texts = {
            "starting": "Starting… (opening the dataset and building the model)",
            "running": "Training…",
            "paused": f"Paused{step}.",
            "stopping": "Stopping: saving a checkpoint…",
            "cancelling": "Cancelling…",
            "finished": f"Finished{step}.",
            "cancelled": f"Cancelled{step}.",
            "failed": "Failed.",
        }
        if state != "failed" or not self.state_label.text().startswith("Failed"):
            self.state_label.setText(texts.get(state, state))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        if state in ("finished", "cancelled", "failed"):
            self._set_running(False)

    # --- checkpoints -------------------------------------------------------------------------------------
    def selected_checkpoint(self) -> Path | None:
        item = self.checkpoint_list.currentItem()
        return Path(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def _update_use_button(self) -> None:
        has = self.checkpoint_list.currentItem() is not None
        self.use_button.setEnabled(has)
        self.open_folder_button.setEnabled(has or self.job is not None)

    def use_selected_checkpoint(self) -> None:
        """Load the selected checkpoint into the service; ``checkpoint_loaded`` follows on success."""
        path = self.selected_checkpoint()
        if path is None:
            return
        if not path.exists():
            errors.reporter().report(StudioError(f"{path} no longer exists (older checkpoints are pruned as a run "
                                                 "goes on); choose a newer one"))
            return
        if self.confirm_use is not None and not self.confirm_use(path):
            return  # the user kept the composition (the window asked: the new model would replace it)
        self.use_button.setEnabled(False)
        self.state_label.setText(f"Loading {path.name}…")

        def loaded(_info) -> None:
            self._update_use_button()
            self.state_label.setText(f"Loaded {path.name} into the composer.")
            self.checkpoint_loaded.emit(path)

        def failed(exc: BaseException) -> None:
            self._update_use_button()
            errors.reporter().report(exc)

        watch(self.service.load_checkpoint_async(path), loaded, failed, owner=self)

    def _on_open_folder(self) -> None:
        path = self.selected_checkpoint()
        folder = path.parent.parent if path is not None else (Path(self.job.settings.out) if self.job else None)
        if folder is not None and folder.exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def shutdown(self) -> None:
        """Unsubscribe from the job (the job itself is the service's and may keep running)."""
        self._detach()
        self.plot._timer.stop()
