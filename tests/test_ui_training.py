"""The Training tab: a form generated from the method's config, and a real tiny job run, watched and used."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QLineEdit, QSpinBox

from studio.errors import StudioError
from studio.methods.config import FormHints, config_fields, option
from studio.methods.registry import get_method, method_names
from studio.service import training_door
from studio.service.descriptions import describe_config
from studio.training.trainer import TrainSettings
from studio.ui.training_form import RUN_WIDGET_NAMES, TrainingForm
from studio.ui.training_options import FLOAT_LIMIT, INT_LIMIT
from studio.ui.training_tab import ConfigForm, LossHistory, TrainingTab, dataset_spec_with_resolution, format_duration

pytestmark = pytest.mark.usefixtures("no_leaks")

#: Small enough for a few steps a second on a busy CPU (the same shape as conftest's tiny_gzs_run).
TINY = {"width": 8, "hidden": 64, "residual_blocks": 1, "latent_dim": 20, "kernel": 3, "norm": "batch"}



def fill_tiny_run(tab: TrainingTab, steps: int) -> None:
    tab.set_dataset("fonts:tiny")
    tab.resolution_combo.setCurrentIndex(tab.resolution_combo.findData(32))
    tab.set_method("gzs")
    tab.device_combo.setCurrentText("cpu")
    tab.apply_recipe(None)  # the method's defaults, not the CPU recipe the form starts with on a CPU
    tab.steps_spin.setValue(steps)
    tab.batch_spin.setValue(2)
    tab.sample_spin.setValue(2)
    tab.checkpoint_spin.setValue(3)
    tab.log_spin.setValue(1)
    for name, value in TINY.items():
        tab.config_form.set_value(name, value)


# --- pure helpers -----------------------------------------------------------------------------------------
def test_format_duration_and_spec_resolution():
    assert format_duration(5) == "0:05"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(math.inf) == "–"
    assert dataset_spec_with_resolution("fonts:tiny", 32) == "fonts:tiny,res=32"
    assert dataset_spec_with_resolution("fonts:tiny,res=16", 32) == "fonts:tiny,res=16"


def test_loss_history_grows_and_keeps_late_losses_aligned():
    history = LossHistory()
    for step in range(1, 601):
        history.append(step, {"loss": 1.0 / step} if step < 300 else {"loss": 0.0, "late": float(step)})
    assert len(history) == 600 and history.steps()[-1] == 600
    assert history.values("loss")[0] == 1.0
    late = history.values("late")
    assert np.isnan(late[:299]).all() and late[-1] == 600.0


# --- the generated form --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", method_names())
def test_config_form_shows_every_field_with_its_default_and_help(qtbot, method):
    form = ConfigForm()
    qtbot.addWidget(form)
    cls = get_method(method).config_class
    form.set_fields(describe_config(cls))
    fields = config_fields(cls)
    assert [f.name for f in form.fields()] == [f.name for f in fields]
    assert form.values() == {f.name: f.default for f in fields}
    assert form.changed_values() == {}
    for f in fields:
        assert form.editor(f.name).toolTip().startswith(f.help)
        if f.choices:
            assert isinstance(form.editor(f.name), QComboBox)
        elif f.type is bool:
            assert isinstance(form.editor(f.name), QCheckBox)


def test_config_form_reports_changes_and_names_a_bad_field(qtbot):
    form = ConfigForm()
    qtbot.addWidget(form)
    form.set_fields(describe_config(get_method("gzs").config_class))
    form.editor("lr").setText("3e-3")
    form.set_value("norm", "batch")
    form.editor("latent_sizes").setText("4,4,4,4,4")
    assert form.changed_values() == {"lr": 3e-3, "norm": "batch", "latent_sizes": (4, 4, 4, 4, 4)}
    lr = form.editor("lr")
    assert isinstance(lr, QLineEdit)
    lr.setText("fast")
    with pytest.raises(StudioError, match="lr"):
        form.changed_values()
    form.reset()
    assert form.changed_values() == {}


def test_settings_come_from_the_form(qtbot, ui_service, tmp_path):
    tab = TrainingTab(ui_service, runs_dir=tmp_path / "runs")
    qtbot.addWidget(tab)
    fill_tiny_run(tab, steps=7)
    settings = tab.settings()
    assert settings.method == "gzs" and settings.dataset == "fonts:tiny,res=32"
    assert settings.steps == 7 and settings.batch == 2 and settings.device == "cpu"
    assert settings.method_options == {k: v for k, v in TINY.items() if v != getattr(
        get_method("gzs").config_class(), k)}
    assert settings.out.parent == tmp_path / "runs" and settings.out.name.startswith("gzs-fonts-tiny-")
    assert settings.lr_decay == "none"
    tab.lr_decay_combo.setCurrentIndex(tab.lr_decay_combo.findData("cosine"))
    assert tab.settings().lr_decay == "cosine"
    tab.resume_check.setChecked(True)  # a continued run keeps the schedule it started with
    assert not tab.lr_decay_combo.isEnabled() and tab.settings().lr_decay is None
    tab.init_edit.setText(str(tmp_path / "x.safetensors"))
    tab.resume_check.setChecked(True)
    with pytest.raises(StudioError, match="fine-tuning"):
        tab.settings()
    tab.shutdown()


def test_a_recipe_fills_the_form_and_the_budget_reaches_the_settings(qtbot, ui_service, tmp_path):
    tab = TrainingTab(ui_service, runs_dir=tmp_path / "runs")
    qtbot.addWidget(tab)
    tab.set_method("gzs")
    recipe = get_method("gzs").recipes["cpu"]
    assert tab.recipe_combo.isEnabled() and tab.recipe_combo.findData("cpu") > 0
    tab.recipe_combo.setCurrentIndex(tab.recipe_combo.findData("cpu"))
    tab.recipe_combo.activated.emit(tab.recipe_combo.currentIndex())  # as a person picking it
    settings = tab.settings()
    assert settings.budget_minutes == recipe.settings["budget_minutes"] and settings.lr_decay == "cosine"
    assert settings.batch == recipe.settings["batch"] and settings.steps == recipe.settings["steps"]
    defaults = get_method("gzs").config_class()
    assert {k: settings.method_options.get(k, getattr(defaults, k)) for k in recipe.options} == recipe.options
    tab.config_form.set_value("width", 20)  # still editable
    assert tab.settings().method_options["width"] == 20
    tab.apply_recipe(None)  # back to the method's defaults
    settings = tab.settings()
    assert settings.method_options == {} and settings.budget_minutes == 0 and settings.lr_decay == "none"
    tab.resume_check.setChecked(True)  # a continued run keeps its budget
    assert not tab.budget_spin.isEnabled() and tab.settings().budget_minutes is None
    tab.set_method("deae")  # a method without recipes
    assert not tab.recipe_combo.isEnabled()
    tab.shutdown()


# --- the run settings, declared once (TrainSettings) ---------------------------------------------------------------
class Declaring:
    """A stand-in service for the form alone: the methods as the service describes them, and run settings from
    ``declaration`` (TrainSettings, or a variant of it with more fields)."""

    device = "cpu"

    def __init__(self, declaration: type = TrainSettings) -> None:
        self.declaration = declaration

    @staticmethod
    def methods():
        return training_door.methods()

    def run_setting_fields(self):
        return tuple(f for f in describe_config(self.declaration) if f.form is not None)

    def train_settings(self, **values: Any):
        return self.declaration(**values)


def row_label(form: TrainingForm, name: str) -> str:
    """The text of the label beside a run setting's editor, in whichever box it sits."""
    editor = form.run_editor(name)
    for box in form.findChildren(QGroupBox):
        layout = box.layout()
        if isinstance(layout, QFormLayout) and layout.labelForField(editor) is not None:
            label = layout.labelForField(editor)
            assert isinstance(label, QLabel)
            return label.text()
    raise AssertionError(f"{name}: no row")


def box_of(form: TrainingForm, name: str) -> str:
    editor = form.run_editor(name)
    return next(box.title() for box in form.findChildren(QGroupBox)
                if isinstance(box.layout(), QFormLayout) and box.layout().labelForField(editor) is not None)


def check_rows_follow(form: TrainingForm, declaration: type) -> None:
    """Every row of the run settings is its declared field: label, box, help, bounds, choices and new-run value."""
    declared = [f for f in config_fields(declaration) if f.form is not None]
    assert list(form.run_editors) == [f.name for f in declared]
    for f in declared:
        editor = form.run_editor(f.name)
        assert row_label(form, f.name) == f.form.label and box_of(form, f.name) == f.form.group
        assert editor.toolTip() == f.help
        offered = f.choices or f.form.offers
        new_run = f.default if f.default is not None else offered[0] if offered else f.low
        assert form.run_value(f.name) == new_run, f.name
        if offered:
            assert isinstance(editor, QComboBox)
            assert [editor.itemData(i) for i in range(editor.count())] == list(offered)
            assert [editor.itemText(i) for i in range(editor.count())] == [f.form.choice_label(v) for v in offered]
        elif f.type is bool:
            assert isinstance(editor, QCheckBox)
        elif f.type in (int, float):
            assert isinstance(editor, QSpinBox if f.type is int else QDoubleSpinBox)
            limit = INT_LIMIT if f.type is int else FLOAT_LIMIT
            assert editor.minimum() == (f.low if f.low is not None else -limit - (f.type is int))
            assert editor.maximum() == (f.high if f.high is not None else limit)
            assert editor.suffix() == f.form.suffix and editor.specialValueText() == f.form.special


def test_the_run_settings_rows_are_the_declared_fields(qtbot):
    form = TrainingForm(Declaring())
    qtbot.addWidget(form)
    form.set_method("gzs")  # no train_defaults: its run defaults are the declaration's
    form.apply_recipe(None)
    check_rows_follow(form, TrainSettings)
    shown = {f.name for f in config_fields(TrainSettings) if f.form is not None}
    assert {"amp", "keep_checkpoints", "method_options"}.isdisjoint(form.run_editors)
    for name, attribute in RUN_WIDGET_NAMES.items():  # the editors keep the names their users have always used
        assert name in shown and getattr(form, attribute) is form.run_editor(name)
    assert form.budget_spin.text() == "none" and form.steps_spin.text() == "20,000"
    form.resume_check.setChecked(True)  # the fields a resumed run keeps, as their hints say
    assert [n for n, e in form.run_editors.items() if not e.isEnabled()] == ["lr_decay", "budget_minutes"]


def test_the_service_hands_the_run_settings_as_the_cli_renders_them():
    from studio.cli.train import RUN_FLAGS
    from studio.ui.settings import DEVICES

    described = training_door.run_setting_fields()
    assert described == tuple(f for f in config_fields(TrainSettings) if f.form is not None)
    assert {f.name for f in described} <= RUN_FLAGS.keys()  # the form shows only what `studio train` takes
    device = next(f for f in described if f.name == "device")
    assert device.offered == DEVICES  # the preferences offer the devices the form does


def test_a_run_setting_declared_with_form_hints_appears_in_the_form(qtbot):
    @dataclass
    class Extended(TrainSettings):
        warmup: int = option(100, "steps of learning-rate warm-up", low=0, high=5000,
                             form=FormHints("Warm-up", "Schedule", suffix=" steps"))
        ema: float = option(0.0, "weight-average decay", low=0.0, high=1.0,
                            form=FormHints("EMA", "Schedule", special="off", decimals=3))
        profile: bool = option(False, "profile the first steps", form=FormHints("Profile", "Saving"))
        precision: str = option("fp32", "arithmetic", choices=("fp32", "bf16"), form=FormHints("Precision"))

    form = TrainingForm(Declaring(Extended))
    qtbot.addWidget(form)
    form.set_method("gzs")
    form.apply_recipe(None)
    check_rows_follow(form, Extended)
    assert box_of(form, "precision") == "Run" and box_of(form, "profile") == "Saving"
    assert form.run_editor("warmup").text() == "100 steps" and form.run_editor("ema").text() == "off"
    form.set_run_value("warmup", 250)
    form.set_run_value("profile", True)
    form.set_run_value("precision", "bf16")
    settings = form.settings()
    assert isinstance(settings, Extended)
    assert (settings.warmup, settings.ema, settings.profile, settings.precision) == (250, 0.0, True, "bf16")
    state = form.form_state()
    assert state["warmup"] == 250 and state["profile"] is True and "device" not in state
    again = TrainingForm(Declaring(Extended))
    qtbot.addWidget(again)
    again.restore_form_state({**state, "ema": "stale text", "precision": "fp64"})  # what does not fit is skipped
    assert again.form_state() == {**state, "ema": 0.0, "precision": "fp32"}


# --- a real run ----------------------------------------------------------------------------------------------------
def test_tiny_job_runs_to_its_end_and_its_checkpoint_is_used(qtbot, ui_service, tmp_path):
    tab = TrainingTab(ui_service, runs_dir=tmp_path / "runs")
    qtbot.addWidget(tab)
    tab.show()
    fill_tiny_run(tab, steps=6)
    with qtbot.waitSignal(tab.job_ended, timeout=120_000) as ended:
        tab.start()
        assert tab.is_running() and not tab.start_button.isEnabled()
    assert ended.args == ["finished"] and tab.job.state == "finished"
    tab.plot.redraw()
    assert tab.plot.point_count("loss") == 6
    assert set(tab.plot.curves) >= {"loss", "reconstruction"}
    assert "grad_norm" not in tab.plot.curves     # a diagnostic, not a loss: it would dwarf the curves
    assert tab.progress.value() == 6 and tab.state_label.text() == "Finished at step 6."
    assert tab.sample_view.image() is not None
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()
    newest = tab.selected_checkpoint()
    assert newest is not None and newest.name == "step-00000006.safetensors" and newest.exists()

    with qtbot.waitSignal(tab.checkpoint_loaded, timeout=60_000):
        tab.use_selected_checkpoint()
    assert ui_service.model is not None and Path(ui_service.model.path) == newest
    assert ui_service.model.step == 6
    tab.shutdown()


def test_the_recipe_box_starts_where_the_cli_would(qtbot, ui_service, tmp_path):
    from studio.cli.train import choose_recipe

    tab = TrainingTab(ui_service, runs_dir=tmp_path / "runs")
    qtbot.addWidget(tab)
    tab.set_method("gzs")
    tab.device_combo.setCurrentText("auto")
    cli = choose_recipe(get_method("gzs"), "auto", "auto")
    assert tab.recipe_combo.currentData() == cli == tab.auto_recipe()
    if cli == "cpu":  # this machine trains on its CPU: the form holds the recipe's settings, as the CLI would
        assert tab.settings().budget_minutes == get_method("gzs").recipes["cpu"].settings["budget_minutes"]
        tab.device_combo.setCurrentText("cuda")  # another device: no CPU recipe, as `--device cuda` would
        assert tab.recipe_combo.currentData() is None
    tab.shutdown()


def test_pause_resume_and_stop_a_job(qtbot, ui_service, tmp_path):
    tab = TrainingTab(ui_service, runs_dir=tmp_path / "runs")
    qtbot.addWidget(tab)
    fill_tiny_run(tab, steps=100_000)
    tab.checkpoint_spin.setValue(0)
    tab.sample_spin.setValue(0)
    with qtbot.waitSignal(tab.progressed, timeout=120_000):
        tab.start()
    tab.pause_button.click()
    qtbot.waitUntil(lambda: tab.job.state == "paused", timeout=10_000)
    qtbot.waitUntil(lambda: tab.pause_button.text() == "Resume", timeout=10_000)
    assert tab.state_label.text().startswith("Paused")
    qtbot.wait(300)  # a step that was under way when Pause was pressed reports afterwards
    # the state line names the step the bar shows, and nothing runs down while paused (issue 17)
    assert tab.state_label.text() == f"Paused at step {tab.progress.value():,}."
    assert tab.eta_label.text() == "–" and tab.rate_label.text() == "–"
    tab.pause_button.click()
    qtbot.waitUntil(lambda: tab.job.state == "running", timeout=10_000)
    qtbot.waitUntil(lambda: tab.eta_label.text() != "–", timeout=30_000)
    with qtbot.waitSignal(tab.job_ended, timeout=120_000):
        tab.stop_button.click()
    assert tab.job.state == "finished"
    assert tab.state_label.text() == f"Finished at step {tab.job.result.step:,}."
    assert tab.progress.value() == tab.job.result.step and tab.eta_label.text() == "–"
    assert tab.job.result.stopped and tab.job.result.step < 100_000
    assert tab.checkpoint_list.count() == 1 and tab.selected_checkpoint().exists()
    assert tab.start_button.isEnabled()
    tab.shutdown()


def test_fine_tune_takes_the_checkpoints_settings_and_trains_on(qtbot, ui_service, tmp_path, tiny_gzs_run):
    tab = TrainingTab(ui_service, runs_dir=tmp_path / "runs")
    qtbot.addWidget(tab)
    tab.set_method("mixing")
    tab.set_fine_tune_source(tiny_gzs_run)
    assert tab.method_name() == "gzs" and tab.dataset_spec() == "fonts:tiny,res=32"
    assert tab.init_edit.text().endswith("last.safetensors")
    assert tab.config_form.value("width") == 8 and tab.config_form.value("norm") == "batch"
    tab.steps_spin.setValue(2)
    tab.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(tab.job_ended, timeout=120_000) as ended:
        tab.start()
    assert ended.args == ["finished"], tab.job.error
    assert tab.job.settings.init_from == tab.init_edit.text()
    tab.shutdown()
