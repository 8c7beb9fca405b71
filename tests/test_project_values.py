"""Mined values travel with a project: saved with the values mined with its model, added to the user's own file
when it is opened (studio.service.composition.Project, MinedValueStore.merge, the main window's File menu path)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from studio.errors import StudioError
from studio.service.composition import Composition, ItemSource, Project
from studio.service.mined_values import MinedValue, MinedValueStore, for_model, project_values

WAIT_MS = 60_000


def _value(name: str, fingerprint: str = "model-a", latent: tuple[float, ...] = (0.5, -1.0)) -> MinedValue:
    return MinedValue(name, "font_color", "font_color", latent, (len(latent),), (("blue", 1.0), ("green", -1.0)),
                      1.5, "", fingerprint, 1.0)


def test_a_project_keeps_its_mined_values(tmp_path: Path) -> None:
    values = [_value("teal"), _value("elsewhere", fingerprint="model-b"), _value("anywhere", fingerprint="")]
    carried = for_model(values, "model-a")
    assert [v.name for v in carried] == ["teal", "anywhere"]
    path = tmp_path / "p.studio.json"
    Project(Composition({}, ItemSource(3)), "ckpt", "fonts:small", mined_values=tuple(v.to_json() for v in carried)
            ).save(path)
    loaded = Project.load(path)
    assert project_values(loaded, str(path)) == carried
    # an old project (no field) opens with none
    data = json.loads(path.read_text())
    del data["mined_values"]
    path.write_text(json.dumps(data))
    assert Project.load(path).mined_values == ()
    # damage names the file and the value
    data["mined_values"] = {"teal": 1}
    path.write_text(json.dumps(data))
    with pytest.raises(StudioError, match="'mined_values' must be a list"):
        Project.load(path)
    data["mined_values"] = [{"name": "x"}]
    path.write_text(json.dumps(data))
    with pytest.raises(StudioError, match=r"p\.studio\.json: mined value 1.*damaged"):
        project_values(Project.load(path), str(path))


def test_merge_adds_new_names_and_keeps_the_users_own(tmp_path: Path) -> None:
    store = MinedValueStore(tmp_path / "mine.json")
    store.save(_value("teal"))
    store.save(_value("rose", latent=(2.0, 2.0)))
    added, clashing = store.merge([_value("teal"), _value("rose", latent=(9.0, 9.0)), _value("sky", latent=(0.0, 1.0))])
    assert added == ["sky"] and clashing == ["rose"]
    held = {v.name: v for v in store.load()}
    assert set(held) == {"teal", "rose", "sky"}
    assert held["rose"].latent == (2.0, 2.0)  # the user's own stays
    before = store.path.read_bytes()
    assert store.merge([replace(_value("teal"), created=5.0)]) == ([], [])  # same value: nothing to do
    assert store.path.read_bytes() == before


def test_the_window_saves_and_opens_a_projects_mined_values(qtbot, ui_service, ui_settings, tiny_gzs_run,
                                                             tmp_path: Path) -> None:
    from studio.service.mined_values import capture
    from studio.ui.main_window import MainWindow

    window = MainWindow(ui_service, ui_settings)
    qtbot.addWidget(window)
    window.start_session(tiny_gzs_run)
    qtbot.waitUntil(lambda: window.composer.image is not None, timeout=WAIT_MS)
    window.values_panel.store = MinedValueStore(tmp_path / "author.json")
    centre = ui_service.jump_to_centre(window.composer.composition, "font_color", "red")
    window.values_panel.store.save(capture(ui_service, centre, "font_color", "deep red"))
    window.values_panel.store.save(replace(_value("foreign"), model_fingerprint="another-model"))

    path = tmp_path / "shared.studio.json"
    window.composer.save_project(path, window.project_mined_values())
    assert [v["name"] for v in Project.load(path).mined_values] == ["deep red"]  # only this model's values

    # a collaborator with a file of their own opens it
    window.values_panel.store = MinedValueStore(tmp_path / "reader.json")
    assert window.values_panel.saved_list.count() == 0
    window.open_project(path)
    qtbot.waitUntil(lambda: "mined value" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    assert "1 mined value added to reader.json" in window.statusBar().currentMessage()
    assert [v.name for v in window.values_panel.store.load()] == ["deep red"]
    assert window.values_panel.saved_list.count() == 1
    window.close()
