"""Folders labelled by their layout (ImageFolder, nested, NAME=VALUE folders) and ``fonts=system``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.data import AttributedDataset, open_dataset
from studio.data.folder_layouts import LayoutFolderDataset, split_layout_spec
from studio.data.fonts import builtin_font_dir
from studio.errors import DatasetError


def _write(tiny: AttributedDataset, root: Path, levels, every: int = 5) -> dict[str, int]:
    """Every ``every``-th item of fonts:tiny as ROOT/<level values>/<item>.png; returns file -> item."""
    written = {}
    for i in range(0, len(tiny), every):
        values = tiny.values(i)
        parts = [level(values) for level in levels]
        folder = root.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(tiny.image(i)).save(folder / f"{i}.png")
        written["/".join([*parts, f"{i}.png"])] = i
    return written


def test_imagefolder_one_subfolder_per_value(tiny_fonts: AttributedDataset, tmp_path: Path) -> None:
    root = tmp_path / "letters"
    written = _write(tiny_fonts, root, [lambda v: v["letter"]])
    ds = open_dataset(str(root))  # no attributes.csv, images only in subfolders: an ImageFolder by itself
    assert isinstance(ds, LayoutFolderDataset) and ds.layout == "imagefolder"
    assert ds.schema.names == ["class"] and ds.schema["class"].values == ("A", "B", "C", "D", "E")
    assert len(ds) == len(written)
    for k, name in enumerate(ds.files):
        assert ds.values(k) == {"class": tiny_fonts.values(written[name])["letter"]}
        assert np.array_equal(ds.image(k), tiny_fonts.image(written[name]))
    named = open_dataset(f"{root},attribute=letter,res=16")
    assert named.schema.names == ["letter"] and named.resolution == 16
    assert named.spec == f"{root.resolve()},layout=imagefolder,attributes=letter,res=16"
    again = open_dataset(named.spec)
    assert again.fingerprint == named.fingerprint and again.spec == named.spec


def test_nested_folders_name_several_attributes(tiny_fonts: AttributedDataset, tmp_path: Path) -> None:
    root = tmp_path / "nested"
    written = _write(tiny_fonts, root, [lambda v: v["letter"], lambda v: v["font"]])
    for spec in (f"{root},layout=nested,attributes=letter,font", f"folder={root},layout=nested,attributes=letter/font",
                 f"{root},attributes=letter,font,res=32"):
        ds = open_dataset(spec)
        assert ds.schema.names == ["letter", "font"], spec
        assert ds.layout == "nested"
        for k, name in enumerate(ds.files):
            want = tiny_fonts.values(written[name])
            assert ds.values(k) == {"letter": want["letter"], "font": want["font"]}
    with pytest.raises(DatasetError, match="attributes=name1/name2"):
        open_dataset(str(root))  # two levels, unnamed: say how to name them
    with pytest.raises(DatasetError, match="images sit 2 levels deep"):
        open_dataset(f"{root},layout=imagefolder")
    with pytest.raises(DatasetError, match="names 3 levels"):
        open_dataset(f"{root},attributes=letter/font/size")
    assert split_layout_spec("/d,layout=nested,attributes=a,b,c,res=32") == "/d,layout=nested,attributes=a/b/c,res=32"


def test_name_value_folders_need_no_options(tiny_fonts: AttributedDataset, tmp_path: Path) -> None:
    root = tmp_path / "named"
    written = _write(tiny_fonts, root, [lambda v: f"font_color={v['font_color']}", lambda v: f"size={v['size']}"])
    ds = open_dataset(str(root))
    assert ds.schema.names == ["font_color", "size"]
    assert ds.schema["font_color"].rgb is not None  # colour names get their swatches, as from attributes.csv
    for k, name in enumerate(ds.files):
        want = tiny_fonts.values(written[name])
        assert ds.values(k) == {"font_color": want["font_color"], "size": want["size"]}
    with pytest.raises(DatasetError, match="but its folders say font_color="):
        open_dataset(f"{root},attributes=colour/size")


def test_bad_layouts_say_what_to_do(tiny_fonts: AttributedDataset, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    _write(tiny_fonts, root, [lambda v: v["letter"]], every=40)
    Image.fromarray(tiny_fonts.image(0)).save(root / "loose.png")
    with pytest.raises(DatasetError, match=r"outside any value folder: loose\.png"):
        open_dataset(f"{root},layout=imagefolder")
    (root / "loose.png").unlink()
    deep = root / "A" / "extra"
    deep.mkdir()
    Image.fromarray(tiny_fonts.image(0)).save(deep / "deep.png")
    with pytest.raises(DatasetError, match=r"1 folder level\(s\) deep.*A/extra/deep\.png"):
        open_dataset(str(root))
    (deep / "deep.png").unlink()
    deep.rmdir()

    one = tmp_path / "one"
    (one / "A").mkdir(parents=True)
    Image.fromarray(tiny_fonts.image(0)).save(one / "A" / "0.png")
    with pytest.raises(DatasetError, match="every image has class='A'"):
        open_dataset(str(one))
    mixed = tmp_path / "mixed"
    for name in ("letter=A", "B"):
        (mixed / name).mkdir(parents=True)
        Image.fromarray(tiny_fonts.image(0)).save(mixed / name / "0.png")
    with pytest.raises(DatasetError, match="some folders read NAME=VALUE"):
        open_dataset(str(mixed))
    with pytest.raises(DatasetError, match="layout='grid'"):
        open_dataset(f"{one},layout=grid")
    with pytest.raises(DatasetError, match="unknown option"):
        open_dataset(f"{one},colour=red")


def test_linked_folders_are_not_entered(tiny_fonts: AttributedDataset, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "Z"
    outside.mkdir(parents=True)
    Image.fromarray(tiny_fonts.image(1)).save(outside / "secret.png")
    root = tmp_path / "linked"
    _write(tiny_fonts, root, [lambda v: v["letter"]], every=10)
    os.symlink(outside, root / "Z", target_is_directory=True)
    ds = open_dataset(str(root))
    assert "Z" not in ds.schema["class"].values and not any("secret" in f for f in ds.files)


def test_a_csv_folder_is_unchanged(tmp_folder_dataset: Path) -> None:
    ds = open_dataset(str(tmp_folder_dataset))
    assert not isinstance(ds, LayoutFolderDataset) and "letter" in ds.schema.names


def test_cli_data_info_on_a_layout(tiny_fonts: AttributedDataset, tmp_path: Path, capsys) -> None:
    from studio.cli.main import main

    root = tmp_path / "letters"
    _write(tiny_fonts, root, [lambda v: v["letter"]], every=8)
    assert main(["data", "info", f"{root},attribute=letter"]) == 0
    out = capsys.readouterr().out
    assert "layout=imagefolder,attributes=letter" in out and "letter" in out


# --- fonts=system ---------------------------------------------------------------------------------------
def test_fonts_system_adds_the_installed_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    import studio.data.system_fonts as system_fonts

    installed = [builtin_font_dir() / f"{n}.ttf" for n in ("cmr10", "DejaVuSansMono-Bold", "STIXNonUni", "cmtt10")]
    monkeypatch.setattr(system_fonts, "installed_font_files", lambda: installed)
    ds = open_dataset("fonts:tiny,res=32,fonts=system")
    fonts = ds.schema["font"].values
    # the preset's own fonts first, then the installed ones that draw Latin letters (STIXNonUni does not)
    assert fonts == ("DejaVuSans", "DejaVuSerif-Bold", "cmtt10", "STIXGeneralItalic", "cmr10", "DejaVuSansMono-Bold")
    assert ds.spec == "fonts:tiny,res=32,fonts=system"
    row = [0, 0, 0, 1, fonts.index("cmr10")]
    assert ds.render_values(row).shape == (32, 32, 3)
    monkeypatch.setattr(system_fonts, "installed_font_files", lambda: [])
    with pytest.raises(DatasetError, match=r"no installed TrueType/OpenType font.*fonts=DIR"):
        open_dataset("fonts:tiny,fonts=system")


def test_fonts_system_on_this_machine() -> None:
    from studio.data.system_fonts import installed_font_files

    if not installed_font_files():
        with pytest.raises(DatasetError, match="fonts=system"):
            open_dataset("fonts:tiny,fonts=system")
    else:
        ds = open_dataset("fonts:tiny,res=32,fonts=system")
        assert len(ds.schema["font"].values) >= 4
