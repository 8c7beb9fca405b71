"""Dataset specs: parsing, the errors for bad ones, and ``studio data info``."""

import pytest

from studio.cli.main import main
from studio.data import open_dataset
from studio.data.folder import FolderDataset
from studio.data.fonts import FontsDataset
from studio.data.shapes import ShapesDataset
from studio.data.spec import parse_spec, preset_kind
from studio.errors import DatasetError


@pytest.mark.parametrize(("spec", "parsed"), [
    ("fonts", ("fonts", None, {})),
    ("fonts:small", ("fonts", "small", {})),
    (" fonts:small,res=32 ", ("fonts", "small", {"res": "32"})),
    ("shapes:tiny,res=16", ("shapes", "tiny", {"res": "16"})),
    ("/data/my faces", ("folder", "/data/my faces", {})),
    ("/data/a,b/faces,res=64", ("folder", "/data/a,b/faces", {"res": "64"})),
    ("relative/dir,res=32,x=1", ("folder", "relative/dir", {"res": "32", "x": "1"})),
])
def test_parse_spec(spec, parsed):
    assert parse_spec(spec) == parsed


def test_preset_kind_names_built_in_presets_only():
    assert preset_kind("fonts:small,res=64") == "fonts" and preset_kind("shapes") == "shapes"
    assert preset_kind("/data/my faces") is None and preset_kind("") is None


def test_specs_open_the_right_dataset(tmp_folder_dataset):
    fonts = open_dataset("fonts:tiny,res=16")
    assert isinstance(fonts, FontsDataset) and fonts.resolution == 16 and fonts.preset == "tiny"
    shapes = open_dataset("shapes:tiny")
    assert isinstance(shapes, ShapesDataset) and shapes.resolution == 64
    assert isinstance(open_dataset("shapes"), ShapesDataset) and open_dataset("shapes").preset == "full"
    folder = open_dataset(f"{tmp_folder_dataset},res=16")
    assert isinstance(folder, FolderDataset) and folder.resolution == 16


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty dataset spec"),
    ("   ", "empty dataset spec"),
    ("fonts:tiny,res=big", "res='big' is not a whole number"),
    ("fonts:tiny,colour=red", "unknown option(s) colour; allowed: fonts, res"),
    ("shapes:tiny,fonts=/tmp", "unknown option(s) fonts; allowed: res"),
    ("fonts:huge", "unknown Fonts preset 'huge'"),
    ("shapes:huge", "unknown Shapes preset 'huge'"),
    ("/no/such/folder,res=32", "no such folder /no/such/folder"),
    ("fonts:tiny,res=4", "res=4 is too small"),
])
def test_bad_specs_say_what_would_work(spec, message):
    with pytest.raises(DatasetError) as info:
        open_dataset(spec)
    assert message in str(info.value)


def test_folder_options_are_checked(tmp_folder_dataset):
    with pytest.raises(DatasetError, match="unknown option"):
        open_dataset(f"{tmp_folder_dataset},fonts=x")


def test_cli_data_info_prints_schema_size_and_fingerprint(capsys, tiny_shapes):
    assert main(["data", "info", "shapes:tiny,res=32"]) == 0
    out = capsys.readouterr().out
    assert "shapes:tiny,res=32" in out and "items        288" in out
    assert f"fingerprint  {tiny_shapes.fingerprint}" in out
    for name in tiny_shapes.schema.names:
        assert name in out
    assert "square, ellipse, triangle" in out


def test_cli_data_info_reports_bad_specs_without_traceback(capsys):
    assert main(["data", "info", "fonts:nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("studio: error:") and "unknown Fonts preset 'nope'" in err and "Traceback" not in err


def test_cli_data_without_action_prints_help(capsys):
    assert main(["data"]) == 0
    assert "export" in capsys.readouterr().out
