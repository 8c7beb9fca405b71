"""Folder datasets: the export round trip, unlabelled folders, resizing, and every validation error naming the
line, file or column to fix."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli.main import main
from studio.data import open_dataset
from studio.data.export import export_dataset
from studio.data.folder import FolderDataset, auto_resolution, sort_values
from studio.data.splits import ZeroShotSplit
from studio.errors import DatasetError


def write_folder(root: Path, csv_text: str | None, images: dict[str, tuple[int, int]] | None = None,
                 colour: tuple[int, int, int] = (10, 200, 30)) -> Path:
    """A folder with ``attributes.csv`` holding ``csv_text`` and one flat-coloured PNG per ``{name: (w, h)}``."""
    root.mkdir(parents=True, exist_ok=True)
    if csv_text is not None:
        (root / "attributes.csv").write_text(csv_text)
    for name, size in (images or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, colour).save(root / name)
    return root


def four_images() -> dict[str, tuple[int, int]]:
    return {f"{k}.png": (16, 16) for k in "abcd"}


# --- round trip ---------------------------------------------------------------------------------


def test_export_round_trip_keeps_values_and_pixels(tiny_fonts, tmp_folder_dataset):
    folder = FolderDataset(tmp_folder_dataset)
    assert len(folder) == len(tiny_fonts) and folder.resolution == 32
    assert folder.schema.names == tiny_fonts.schema.names
    for i in range(len(folder)):
        assert folder.values(i) == tiny_fonts.values(i)
    assert np.array_equal(folder.images(np.arange(len(folder))), tiny_fonts.images(np.arange(len(tiny_fonts))))
    # Colour names known to the Fonts palette come back with their RGB.
    fc = folder.schema["font_color"]
    assert fc.rgb == tuple(tiny_fonts.schema["font_color"].rgb[tiny_fonts.schema["font_color"].index(v)]
                           for v in fc.values)
    assert folder.schema["letter"].rgb is None


def test_export_limit_and_no_labels(tiny_shapes, tmp_path):
    out = export_dataset(tiny_shapes, tmp_path / "some", limit=40, seed=3, progress=False)
    assert len(list(out.glob("*.png"))) == 40
    again = export_dataset(tiny_shapes, tmp_path / "again", limit=40, seed=3, progress=False)
    assert (out / "attributes.csv").read_text() == (again / "attributes.csv").read_text()
    bare = export_dataset(tiny_shapes, tmp_path / "bare", limit=30, labels=False, progress=False)
    assert not (bare / "attributes.csv").exists()
    unlabelled = FolderDataset(bare)
    assert len(unlabelled) == 30 and len(unlabelled.schema) == 0 and unlabelled.codes.shape == (30, 0)


def test_export_refuses_a_non_empty_folder(tiny_fonts, tmp_folder_dataset):
    with pytest.raises(DatasetError, match="not empty"):
        export_dataset(tiny_fonts, tmp_folder_dataset, limit=3, progress=False)
    export_dataset(tiny_fonts, tmp_folder_dataset, limit=3, overwrite=True, progress=False)
    assert len(FolderDataset(tmp_folder_dataset)) == 3


def test_cli_export_then_info(tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["data", "export", "shapes:tiny,res=16", str(out), "--limit", "50"]) == 0
    assert "wrote 50 images" in capsys.readouterr().out
    assert main(["data", "info", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    assert "items        50" in text and "resolution   16 px" in text and "all 50 images decode" in text


def test_spec_of_a_folder_reopens_it(tmp_folder_dataset):
    ds = open_dataset(str(tmp_folder_dataset))
    assert open_dataset(ds.spec).fingerprint == ds.fingerprint
    assert open_dataset(f"{tmp_folder_dataset},res=16").resolution == 16


def test_fingerprint_follows_labels_and_files(tmp_folder_dataset):
    before = FolderDataset(tmp_folder_dataset).fingerprint
    assert FolderDataset(tmp_folder_dataset).fingerprint == before
    Image.new("RGB", (32, 32), (1, 2, 3)).save(tmp_folder_dataset / "00007.png")
    assert FolderDataset(tmp_folder_dataset).fingerprint != before


# --- unlabelled folders, sorting, resizing ------------------------------------------------------


def test_folder_without_csv_is_unlabelled_and_splits_by_item(tmp_path):
    root = write_folder(tmp_path / "u", None, {f"img{k}.png": (20, 20) for k in (10, 2, 1, 33)})
    (root / "notes.txt").write_text("not an image")
    ds = open_dataset(str(root))
    assert ds.files == ["img1.png", "img2.png", "img10.png", "img33.png"]
    assert ds.codes.shape == (4, 0) and "unlabelled" in ds.describe()
    assert ds.resolution == 16  # 20 px rounds to the nearest power of two
    split = ZeroShotSplit.make(ds.codes, 0.25, seed=0)
    assert len(split.test) == 1 and sorted([*split.train, *split.test]) == [0, 1, 2, 3]


def test_csv_with_only_file_column_lists_the_images(tmp_path):
    root = write_folder(tmp_path / "f", "file\nb.png\na.png\n", four_images())
    ds = FolderDataset(root)
    assert ds.files == ["b.png", "a.png"] and len(ds.schema) == 0


def test_vocabularies_sort_naturally_and_colours_get_rgb(tmp_path):
    csv = "file,count,name,tint\na.png,10,img10,#ff0000\nb.png,2,img2,#00ff00\nc.png,1,img1,#ff0000\n"
    ds = FolderDataset(write_folder(tmp_path / "v", csv, {"a.png": (8, 8), "b.png": (8, 8), "c.png": (8, 8)}), 8)
    assert ds.schema["count"].values == ("1", "2", "10")
    assert ds.schema["name"].values == ("img1", "img2", "img10")
    assert ds.schema["tint"].rgb == ((0, 255, 0), (255, 0, 0))
    assert ds.codes.tolist() == [[2, 2, 1], [1, 1, 0], [0, 0, 1]]
    assert sort_values(["1.0", "0.75", "0.5"]) == ["0.5", "0.75", "1.0"]


def test_other_sizes_are_centre_cropped_and_resized(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    wide = np.zeros((30, 60, 3), np.uint8)
    wide[:, :] = (255, 0, 0)
    wide[:, 15:45] = (0, 0, 255)  # only the centre square is blue
    Image.fromarray(wide).save(root / "wide.png")
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.save(root / "clear.png")
    (root / "attributes.csv").write_text("file,kind\nwide.png,w\nclear.png,c\n")
    ds = FolderDataset(root, 16)
    assert ds.image(0).shape == (16, 16, 3)
    assert (ds.image(0) == (0, 0, 255)).all()
    assert (ds.image(1) == 255).all()  # transparency is flattened onto white
    assert auto_resolution(60, 30) == 32 and auto_resolution(100, 100) == 128 and auto_resolution(5000, 4000) == 256


# --- validation errors --------------------------------------------------------------------------


def error_for(root: Path, resolution: int | None = None) -> str:
    with pytest.raises(DatasetError) as info:
        FolderDataset(root, resolution)
    return str(info.value)


def test_not_a_folder_and_empty_folder(tmp_path):
    assert "is not a folder" in error_for(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    message = error_for(tmp_path / "empty")
    assert "neither attributes.csv nor any images" in message and "empty" in message


def test_missing_file_column_is_named(tmp_path):
    message = error_for(write_folder(tmp_path / "a", "filename,colour\na.png,red\nb.png,blue\n", four_images()))
    assert "no 'file' column" in message and "rename column 'filename'" in message


def test_unnamed_and_duplicate_columns(tmp_path):
    message = error_for(write_folder(tmp_path / "a", "file,colour,\na.png,red,x\nb.png,blue,y\n", four_images()))
    assert "column 3 has no name" in message
    message = error_for(write_folder(tmp_path / "b", "file,colour,colour\na.png,red,x\nb.png,blue,y\n"))
    assert "column 'colour' appears twice" in message


def test_empty_cell_names_line_and_column(tmp_path):
    csv = "file,colour,size\na.png,red,big\nb.png,,small\nc.png,blue,big\n"
    message = error_for(write_folder(tmp_path / "a", csv, four_images()))
    assert "line 3" in message and "colour" in message and "size" not in message.split("line 3")[1]


def test_row_with_extra_cells_names_its_line(tmp_path):
    csv = "file,colour\na.png,red\nb.png,blue,extra\n"
    message = error_for(write_folder(tmp_path / "a", csv, four_images()))
    assert "line 3" in message and "3 cells" in message


def test_missing_images_are_listed_with_their_lines(tmp_path):
    csv = "file,colour\na.png,red\ngone.png,blue\nb.png,red\nalso_gone.png,blue\n"
    message = error_for(write_folder(tmp_path / "a", csv, four_images()))
    assert "2 listed image(s) not found" in message
    assert "line 3 ('gone.png')" in message and "line 5 ('also_gone.png')" in message


def test_unreadable_image_is_reported_lazily_with_file_and_line(tmp_path, capsys):
    root = write_folder(tmp_path / "a", "file,colour\na.png,red\nb.png,blue\nc.png,red\n", four_images())
    (root / "b.png").write_bytes(b"this is not a png")
    ds = FolderDataset(root)  # opening does not decode the images
    assert ds.image(0).shape == (16, 16, 3)
    with pytest.raises(DatasetError, match=r"line 3 \('b.png'\) cannot be read as an image"):
        ds.image(1)
    with pytest.raises(DatasetError, match=r"1 image\(s\) cannot be read: attributes.csv line 3 \('b.png'\)"):
        ds.verify()
    assert main(["data", "info", str(root), "--check"]) == 2
    assert "b.png" in capsys.readouterr().err


def test_unreadable_first_image_without_resolution(tmp_path):
    root = write_folder(tmp_path / "a", "file,colour\na.png,red\nb.png,blue\n", four_images())
    (root / "a.png").write_bytes(b"garbage")
    message = error_for(root)
    assert "line 2 ('a.png') cannot be read" in message and "res=64" in message


def test_single_valued_column_is_useless(tmp_path):
    csv = "file,colour,shape\na.png,red,square\nb.png,blue,square\n"
    message = error_for(write_folder(tmp_path / "a", csv, four_images()))
    assert "column 'shape'" in message and "single value 'square'" in message


def test_duplicate_file_rows_name_both_lines(tmp_path):
    csv = "file,colour\na.png,red\nb.png,blue\na.png,blue\n"
    message = error_for(write_folder(tmp_path / "a", csv, four_images()))
    assert "line 4" in message and "'a.png' is already listed on line 2" in message


def test_paths_must_stay_inside_the_folder(tmp_path):
    write_folder(tmp_path, None, {"outside.png": (16, 16)})
    csv = "file,colour\na.png,red\n../outside.png,blue\n"
    message = error_for(write_folder(tmp_path / "a", csv, four_images()))
    assert "inside the folder" in message and "line 3" in message


def test_empty_or_headerless_csv(tmp_path):
    assert "is empty" in error_for(write_folder(tmp_path / "a", "", four_images()))
    assert "lists no images" in error_for(write_folder(tmp_path / "b", "file,colour\n", four_images()))


def test_csv_that_is_not_utf8(tmp_path):
    root = write_folder(tmp_path / "a", None, four_images())
    (root / "attributes.csv").write_bytes("file,colour\na.png,r\xe9d\nb.png,blue\n".encode("latin-1"))
    assert "not UTF-8" in error_for(root)


def test_bad_resolution(tmp_path):
    root = write_folder(tmp_path / "a", "file,colour\na.png,red\nb.png,blue\n", four_images())
    assert "res=4" in error_for(root, 4)
