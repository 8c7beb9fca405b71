"""Desktop packaging: one reverse-DNS id everywhere, entry points, icons, and the app's offscreen smoke test
(on a tiny trained model, and on the model shipped in models/)."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import studio
from studio.paths import default_model, icon_path, install_root, shipped_models

ROOT = install_root()
PACKAGING = ROOT / "packaging"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
REVERSE_DNS = re.compile(r"^[a-z][a-z0-9-]*(\.[a-zA-Z0-9_-]+){2,}$")
SMOKE_LINE = re.compile(r"^smoke test passed: model=(?P<model>.+?) \((?P<method>\w+), step (?P<step>\d+)\) "
                        r"dataset=(?P<dataset>\S+) \((?P<items>\d+) items\) image=(?P<image>\d+x\d+x3) "
                        r"device=\S+ id=(?P<id>\S+) seconds=(?P<seconds>[\d.]+)$", re.MULTILINE)


def run_smoke_test(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m studio.ui.app --smoke-test ARGS`` offscreen, as a packager or CI would run it."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "studio.ui.app", "--smoke-test", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def passed_line(result: subprocess.CompletedProcess) -> re.Match:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    match = SMOKE_LINE.search(result.stdout)
    assert match is not None, f"no summary line in:\n{result.stdout}"
    return match


# --- one id everywhere ----------------------------------------------------------------------------------------
def test_desktop_file_metainfo_and_app_id_share_one_reverse_dns_id():
    app_id = studio.APP_ID
    assert REVERSE_DNS.match(app_id), app_id
    desktop_path = PACKAGING / f"{app_id}.desktop"
    metainfo_path = PACKAGING / f"{app_id}.metainfo.xml"
    assert desktop_path.is_file() and metainfo_path.is_file()

    desktop = configparser.ConfigParser(interpolation=None)
    desktop.optionxform = str  # keys are case-sensitive
    desktop.read(desktop_path, encoding="utf-8")
    entry = desktop["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Icon"] == app_id
    assert entry["Exec"].split()[0] == "attribute-studio"

    component = ET.parse(metainfo_path).getroot()
    assert component.tag == "component" and component.get("type") == "desktop-application"
    assert component.findtext("id") == app_id
    launchable = component.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == desktop_path.name
    assert component.findtext("icon") == app_id
    assert component.find("provides/binary").text == entry["Exec"].split()[0]
    release = component.find("releases/release")
    assert release is not None and release.get("version") == studio.__version__


def test_pyproject_declares_the_gui_launcher_and_the_cli():
    tomllib = pytest.importorskip("tomllib")  # 3.11+ (3.10 lacks it); installed entry points: below
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["gui-scripts"]["attribute-studio"] == "studio.ui.app:main"
    assert project["scripts"]["studio"] == "studio.cli.main:main"


def test_one_version_an_spdx_license_and_the_license_file():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+ (the project allows 3.10, which lacks it); runs on CI
    with open(ROOT / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    project = pyproject["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "studio.__version__"}
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_every_subpackage_and_the_data_folders_go_into_the_wheel():
    """The package list is written out (the data folders are mapped in), so a new subpackage must be added."""
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    source = ROOT / "studio"
    subpackages = {"studio." + ".".join(p.parent.relative_to(source).parts) for p in source.rglob("__init__.py")}
    subpackages = {name.rstrip(".") for name in subpackages}
    assert subpackages <= set(setuptools["packages"]), sorted(subpackages - set(setuptools["packages"]))
    assert setuptools["package-dir"] == {"studio.shipped_models": "models", "studio.resources": "resources"}
    for package, folder in setuptools["package-dir"].items():
        assert (ROOT / folder / "__init__.py").is_file() and package in setuptools["packages"]


def test_project_files_have_a_mime_type_the_desktop_file_opens():
    desktop = configparser.ConfigParser(interpolation=None)
    desktop.optionxform = str
    desktop.read(PACKAGING / f"{studio.APP_ID}.desktop", encoding="utf-8")
    entry = desktop["Desktop Entry"]
    assert entry["Exec"].endswith(" %F")
    mime = ET.parse(PACKAGING / f"{studio.APP_ID}.mime.xml").getroot()
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    types = [t.get("type") for t in mime.findall("m:mime-type", ns)]
    assert types and entry["MimeType"].rstrip(";").split(";") == types
    globs = [g.get("pattern") for g in mime.findall("m:mime-type/m:glob", ns)]
    assert "*.studio.json" in globs


def test_installed_entry_points_reach_callables():
    from importlib.metadata import distribution

    found = {(ep.group, ep.name): ep for ep in distribution("attribute-studio").entry_points}
    gui = found[("gui_scripts", "attribute-studio")]
    cli = found[("console_scripts", "studio")]
    assert gui.value == "studio.ui.app:main" and callable(gui.load())
    assert cli.value == "studio.cli.main:main" and callable(cli.load())


def test_bundle_files_exist_and_the_spec_is_python():
    spec = PACKAGING / "attribute-studio.spec"
    compile(spec.read_text(encoding="utf-8"), str(spec), "exec")
    assert (PACKAGING / "launcher.py").is_file()
    script = (PACKAGING / "build_bundle.sh").read_text(encoding="utf-8")
    assert "--smoke-test" in script and "attribute-studio.spec" in script


# --- icons --------------------------------------------------------------------------------------------------
def test_icons_exist_in_every_size_and_load(qapp):
    from PySide6.QtGui import QIcon, QImage

    svg = icon_path()
    assert svg.suffix == ".svg" and svg.is_file()
    assert not QIcon(str(svg)).pixmap(64, 64).isNull()
    for size in ICON_SIZES:
        png = icon_path(size)
        assert png.parent == ROOT / "resources" / "icons"
        image = QImage(str(png))
        assert not image.isNull(), png
        assert (image.width(), image.height()) == (size, size), png
        assert not QIcon(str(png)).isNull()

    from studio.ui.main_window import app_icon

    icon = app_icon()
    assert {s.width() for s in icon.availableSizes()} >= set(ICON_SIZES)


# --- the smoke test -----------------------------------------------------------------------------------------
def test_smoke_test_composes_with_a_tiny_model(tiny_gzs_run: Path):
    result = run_smoke_test("--model", str(tiny_gzs_run))
    line = passed_line(result)
    assert Path(line["model"]) == tiny_gzs_run / "checkpoints" / "last.safetensors"
    assert line["method"] == "gzs" and line["step"] == "60"
    assert line["dataset"] == "fonts:tiny,res=32" and line["items"] == "240"
    assert line["image"] == "32x32x3"
    assert line["id"] == studio.APP_ID  # the running app called setDesktopFileName with the shared id


def test_smoke_test_fails_with_the_message_for_a_missing_model(tmp_path: Path):
    missing = tmp_path / "nowhere.safetensors"
    result = run_smoke_test("--model", str(missing))
    assert result.returncode != 0
    assert "smoke test FAILED" in result.stderr and str(missing) in result.stderr
    assert "smoke test passed" not in result.stdout


def test_smoke_test_watchdog_ends_a_run_that_takes_too_long(tiny_gzs_run: Path):
    result = run_smoke_test("--model", str(tiny_gzs_run), "--smoke-timeout", "0.2", timeout=60)
    assert result.returncode == 3
    assert "timed out after 0.2 s" in result.stderr


# --- the shipped model ----------------------------------------------------------------------------------------
def test_models_folder_holds_a_shipped_model_with_its_card():
    shipped = shipped_models()
    assert shipped, (f"{ROOT / 'models'} holds no shipped model (<name>/<checkpoint>.safetensors and a model "
                     "card): train the default Fonts model and put it there before committing")
    assert default_model("fonts") in shipped, "no shipped model in a models/fonts* folder: the app opens with that one"
    for checkpoint in shipped:
        cards = list(checkpoint.parent.glob("*.md"))
        assert cards, f"{checkpoint.parent} has no model card (Markdown)"


@pytest.mark.parametrize("checkpoint", shipped_models(), ids=lambda p: p.parent.name)
def test_smoke_test_composes_with_the_shipped_model(checkpoint: Path):
    """The default Fonts model opens with no arguments at all (what a first-time user runs); any other shipped
    model is opened by path."""
    is_default = default_model("fonts") == checkpoint
    result = run_smoke_test() if is_default else run_smoke_test("--model", str(checkpoint))
    line = passed_line(result)
    assert Path(line["model"]).resolve() == checkpoint.resolve()
    assert line["id"] == studio.APP_ID
