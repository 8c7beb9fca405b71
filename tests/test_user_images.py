"""A user's folder is untrusted input: links out of the folder, decompression bombs in any row, mixed image sizes,
and a dropped file read through the same guarded opener."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli.main import main
from studio.data.folder import FolderDataset
from studio.data.image_files import MAX_PIXELS, ImageFileError, image_size, load_square_rgb
from studio.errors import DatasetError, StudioError
from studio.service.model_service import load_image_file


def write_images(root: Path, sizes: dict[str, tuple[int, int]], csv: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        Image.new("RGB", size, (20, 120, 220)).save(root / name)
    if csv is not None:
        (root / "attributes.csv").write_text(csv)
    return root


def write_bomb(path: Path, side: int = 20000) -> Path:
    """A valid 1-bit PNG of ``side`` x ``side`` white pixels: ~60 kB on disk, 400 megapixels decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    body = b"".join(packer.compress(row * 1000) for _ in range(side // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def error_for(root: Path, resolution: int | None = None) -> str:
    with pytest.raises(DatasetError) as info:
        FolderDataset(root, resolution)
    return str(info.value)


# --- links and paths out of the folder --------------------------------------------------------------


def test_a_link_to_an_image_outside_the_folder_is_refused_with_its_line(tmp_path):
    outside = write_images(tmp_path / "elsewhere", {"secret.png": (16, 16)})
    root = write_images(tmp_path / "data", {"a.png": (16, 16), "b.png": (16, 16)},
                        "file,colour\na.png,red\nb.png,blue\nlink.png,red\n")
    (root / "link.png").symlink_to(outside / "secret.png")
    message = error_for(root)
    assert "line 4 ('link.png')" in message and str(outside / "secret.png") in message
    assert "inside the folder" in message and "a.png" not in message


def test_a_link_to_etc_passwd_is_refused_with_or_without_a_csv(tmp_path):
    root = write_images(tmp_path / "data", {"a.png": (16, 16), "b.png": (16, 16)},
                        "file,colour\na.png,red\npasswd.png,blue\n")
    (root / "passwd.png").symlink_to("/etc/passwd")
    assert "line 3 ('passwd.png'), a link to /etc/passwd" in error_for(root)
    (root / "attributes.csv").unlink()  # the unlabelled listing takes every image file, links included
    message = error_for(root)
    assert "'passwd.png', a link to /etc/passwd" in message and "move it out of the folder" in message


def test_a_linked_subfolder_counts_too_and_links_inside_the_folder_are_fine(tmp_path):
    outside = write_images(tmp_path / "elsewhere", {"x.png": (16, 16)})
    root = write_images(tmp_path / "data", {"a.png": (16, 16), "b.png": (16, 16)},
                        "file,colour\na.png,red\nsame.png,blue\nsub/x.png,red\n")
    (root / "same.png").symlink_to(root / "b.png")  # a link that stays inside
    (root / "sub").symlink_to(outside, target_is_directory=True)
    assert "line 4 ('sub/x.png'), a link to" in error_for(root)
    (root / "attributes.csv").write_text("file,colour\na.png,red\nsame.png,blue\n")
    assert FolderDataset(root).image(1).shape == (16, 16, 3)


def test_dot_dot_and_absolute_paths_are_refused(tmp_path):
    write_images(tmp_path, {"x.png": (16, 16)})
    root = write_images(tmp_path / "a" / "b", {"a.png": (16, 16)},
                        f"file,colour\na.png,red\n../../x.png,blue\n{tmp_path / 'x.png'},red\n")
    message = error_for(root)
    assert "line 3 ('../../x.png')" in message and "line 4" in message and "without '..'" in message


def test_a_link_swapped_in_after_opening_is_still_refused(tmp_path):
    """The opener checks containment again at read time, not only when the folder is opened."""
    outside = write_images(tmp_path / "elsewhere", {"secret.png": (16, 16)})
    root = write_images(tmp_path / "data", {"a.png": (16, 16), "b.png": (16, 16)},
                        "file,colour\na.png,red\nb.png,blue\n")
    ds = FolderDataset(root, 16)
    (root / "b.png").unlink()
    (root / "b.png").symlink_to(outside / "secret.png")
    with pytest.raises(DatasetError, match=r"line 3 \('b.png'\) cannot be read as an image: it is a link to"):
        ds.image(1)


# --- decompression bombs ------------------------------------------------------------------------------


def test_a_bomb_in_the_first_row_is_a_clear_error(tmp_path):
    root = write_images(tmp_path / "data", {"b.png": (16, 16)}, "file,colour\nbomb.png,red\nb.png,blue\n")
    write_bomb(root / "bomb.png")
    message = error_for(root)  # the first image sets the resolution: its header is read when opening
    assert "line 2 ('bomb.png')" in message and "it is 400 megapixels, more than the 89" in message
    assert "decompression bomb" in message and "shrink it" in message


def test_a_bomb_in_a_later_row_is_a_clear_error_when_read_and_in_data_info(tmp_path, capsys):
    root = write_images(tmp_path / "data", {"a.png": (16, 16), "b.png": (16, 16)},
                        "file,colour\na.png,red\nb.png,blue\nbomb.png,red\n")
    write_bomb(root / "bomb.png")
    ds = FolderDataset(root)
    assert ds.image(0).shape == (16, 16, 3)
    with pytest.raises(DatasetError, match=r"line 4 \('bomb.png'\) cannot be read as an image: it is 400 megapixels"):
        ds.image(2)
    with pytest.raises(DatasetError, match=r"1 image\(s\) cannot be read: attributes.csv line 4 \('bomb.png'\)"):
        ds.verify()
    assert main(["data", "info", str(root)]) == 2  # the header scan for the size report finds it
    err = capsys.readouterr().err
    assert "line 4 ('bomb.png')" in err and "decompression bomb" in err and "Traceback" not in err


def test_a_dropped_bomb_or_odd_format_is_a_studio_error(tmp_path):
    with pytest.raises(StudioError, match=r"bomb.png cannot be read as an image: it is 400 megapixels"):
        load_image_file(write_bomb(tmp_path / "bomb.png"), 32)
    with pytest.raises(StudioError, match=r"it is 10000 x 10000 pixels, 100 megapixels"):  # below Pillow's refusal
        load_image_file(write_bomb(tmp_path / "smaller.png", 10000), 32)
    eps = tmp_path / "drawing.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")  # would run Ghostscript
    with pytest.raises(ImageFileError, match="not an image in a format"):
        load_image_file(eps, 32)
    assert MAX_PIXELS < 20000 * 20000


def test_the_opener_keeps_pixels_and_refuses_links_out_of_a_root(tmp_path):
    img = (np.arange(24 * 40 * 3) % 251).astype(np.uint8).reshape(24, 40, 3)
    Image.fromarray(img).save(tmp_path / "p.png")
    assert image_size(tmp_path / "p.png") == (40, 24)
    assert np.array_equal(load_square_rgb(tmp_path / "p.png", 24), img[:, 8:32])  # centre square, no resize
    root = tmp_path / "root"
    root.mkdir()
    (root / "l.png").symlink_to(tmp_path / "p.png")
    with pytest.raises(ImageFileError, match="outside the folder"):
        load_square_rgb("l.png", 24, root=root)


# --- mixed sizes --------------------------------------------------------------------------------------


def test_mixed_sizes_are_reported_once_in_data_info(tmp_path, capsys):
    sizes = {f"{k}.png": s for k, s in enumerate([(64, 64), (32, 20), (100, 48)] * 3)}
    csv = "file,kind\n" + "".join(f"{name},{'ab'[k % 2]}\n" for k, name in enumerate(sizes))
    root = write_images(tmp_path / "mixed", sizes, csv)
    ds = FolderDataset(root)
    assert ds.resolution == 64 and ds.image_sizes() == {(64, 64): 3, (32, 20): 3, (100, 48): 3}
    report = ds.size_report()
    assert report.startswith("9 images in 3 different sizes (32x20: 3, 64x64: 3, 100x48: 3)")
    assert "centre-crops the 6 non-square one(s)" in report and "resizes 6 to 64 x 64 px" in report
    assert main(["data", "info", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("image sizes  9 images in 3 different sizes") == 1
    uniform = write_images(tmp_path / "same", {"a.png": (32, 32), "b.png": (32, 32)}, "file,k\na.png,x\nb.png,y\n")
    assert FolderDataset(uniform).size_report() is None
    assert main(["data", "info", str(uniform)]) == 0
    assert "image sizes  all 32 x 32 px, used as they are" in capsys.readouterr().out
