"""A user's own images as an attributed dataset: a folder of images plus ``attributes.csv``.

The CSV has a ``file`` column (paths relative to the folder) and one column per attribute; every cell is a string
value. Without ``attributes.csv`` (or with only the ``file`` column) the folder opens as an *unlabelled* dataset
with no attributes, which unsupervised methods train on. Everything is checked when the folder is opened except the
image contents, which are decoded lazily (``verify()`` decodes them all on request), so a folder of a million
photos opens in seconds.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from studio.data.dataset import AttributedDataset
from studio.data.fonts import COLORS
from studio.data.image_files import ImageFileError, decode_fully, image_size, load_square_rgb
from studio.data.schema import Attribute, AttributeSchema
from studio.errors import DatasetError

CSV_NAME = "attributes.csv"
FILE_COLUMN = "file"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Bump whenever loading, cropping or resizing changes: it is part of the fingerprint.
LOADER_VERSION = "folder-1"
DEFAULT_RESOLUTION = 64
_MAX_LISTED = 8
_FILE_COLUMN_LOOKALIKES = {"filename", "file_name", "path", "image", "img", "name", "files"}
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def natural_key(text: str) -> tuple:
    """Sort key under which ``img2`` comes before ``img10``."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), text


def sort_values(values: Sequence[str]) -> list[str]:
    """Numbers by value (so ``0.5`` < ``0.75`` < ``1.0``), anything else in natural order."""
    try:
        return sorted(values, key=lambda v: (float(v), v))
    except ValueError:
        return sorted(values, key=natural_key)


def colour_table(values: Sequence[str]) -> tuple[tuple[int, int, int], ...] | None:
    """RGB for each value when every value is a known colour name or a ``#rrggbb`` code, else None."""
    out = []
    for v in values:
        if v.lower() in COLORS:
            out.append(COLORS[v.lower()])
        elif _HEX_COLOR.match(v):
            out.append((int(v[1:3], 16), int(v[3:5], 16), int(v[5:7], 16)))
        else:
            return None
    return tuple(out)


def auto_resolution(width: int, height: int) -> int:
    """The power of two nearest the image's short side, kept within 16..256 px (what the networks are built for)."""
    side = min(width, height)
    if side <= 0:
        return DEFAULT_RESOLUTION
    return int(min(256, max(16, 2 ** round(math.log2(side)))))


def _listing(items: list[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    return shown + (f"; ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


class FolderDataset(AttributedDataset):
    """Images listed in ``attributes.csv`` (or every image in the folder when there is none)."""

    def __init__(self, path: str | os.PathLike, resolution: int | None = None) -> None:
        folder = Path(path).expanduser().resolve()
        if not folder.is_dir():
            raise DatasetError(f"{folder} is not a folder; give a folder holding images and {CSV_NAME}")
        self.folder = folder
        self.csv_path = folder / CSV_NAME
        if self._labelled_by_table():
            files, lines, columns, cells = self._read_table()
        else:
            files = sorted((p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                            and p.is_file()), key=natural_key)
            if not files:
                raise DatasetError(
                    f"{folder} holds neither {CSV_NAME} nor any images ({', '.join(IMAGE_SUFFIXES)}); "
                    "add images, and an attributes.csv to label them"
                )
            lines, columns, cells = [], [], []
        self.files = files
        self._lines = lines
        self._sizes: Counter[tuple[int, int]] | None = None
        sizes = self._check_files()
        schema, codes = self._encode(columns, cells)
        if resolution is None:
            resolution = self._auto_resolution()
        elif not 8 <= resolution <= 1024:
            raise DatasetError(f"res={resolution} is outside 8..1024 px; use e.g. res=64")
        self._content_digest = self._digest(sizes)
        super().__init__(f"{folder},res={resolution}", schema, codes, resolution)

    # --- reading and checking attributes.csv --------------------------------------------------
    def _labelled_by_table(self) -> bool:
        """Whether ``_read_table`` gives the files and labels: attributes.csv here (folder_layouts reads folder
        names instead)."""
        return self.csv_path.exists()

    def _where(self, index: int) -> str:
        """How a person finds item ``index``: its file and, when there is a CSV, its line."""
        if self._lines:
            return f"{CSV_NAME} line {self._lines[index]} ({self.files[index]!r})"
        return repr(self.files[index])

    def _read_table(self) -> tuple[list[str], list[int], list[str], list[list[str]]]:
        where = self.csv_path
        try:
            with open(where, newline="", encoding="utf-8-sig") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                rows: list[tuple[int, list[str]]] = []
                for row in reader:
                    if row and any(cell.strip() for cell in row):
                        rows.append((reader.line_num, row))
        except UnicodeDecodeError as e:
            raise DatasetError(f"{where} is not UTF-8 text ({e}); save it as UTF-8 CSV") from None
        except csv.Error as e:
            raise DatasetError(f"{where} is not a valid CSV file: {e}") from None
        if not header or not any(h.strip() for h in header):
            raise DatasetError(f"{where} is empty; its first line must name the columns, starting with "
                               f"{FILE_COLUMN!r}")
        header = [h.strip() for h in header]
        for k, name in enumerate(header):
            if not name:
                raise DatasetError(f"{where}: column {k + 1} has no name in the header (line 1); name it or delete "
                                   "the column")
            if any(ch in name for ch in ",=:"):
                raise DatasetError(f"{where}: column name {name!r} holds ',', '=' or ':'; rename it (these "
                                   "characters separate names and values on the command line)")
        seen: set[str] = set()
        for name in header:
            if name in seen:
                raise DatasetError(f"{where}: column {name!r} appears twice in the header; rename or delete one")
            seen.add(name)
        if FILE_COLUMN not in header:
            alike = [h for h in header if h.lower() in _FILE_COLUMN_LOOKALIKES or h.lower() == FILE_COLUMN]
            hint = f" (rename column {alike[0]!r} to {FILE_COLUMN!r})" if alike else ""
            raise DatasetError(f"{where} has no {FILE_COLUMN!r} column{hint}; the header is {', '.join(header)}. "
                               f"Add a column named {FILE_COLUMN!r} holding each image's path relative to the folder")
        if not rows:
            raise DatasetError(f"{where} lists no images; add one line per image below the header")
        file_at = header.index(FILE_COLUMN)
        columns = [h for h in header if h != FILE_COLUMN]
        files: list[str] = []
        lines: list[int] = []
        cells: list[list[str]] = []
        first_line: dict[str, int] = {}
        for line, row in rows:
            if len(row) != len(header):
                raise DatasetError(f"{where}, line {line}: {len(row)} cells where the header names {len(header)} "
                                   f"columns ({', '.join(header)}); fix the row (a value holding a comma must be "
                                   "quoted)")
            row = [cell.strip() for cell in row]
            empty = [header[k] for k, cell in enumerate(row) if not cell]
            if empty:
                raise DatasetError(f"{where}, line {line}: empty cell in column(s) {', '.join(empty)}; fill in a "
                                   "value or delete the row")
            name = row[file_at]
            if name in first_line:
                raise DatasetError(f"{where}, line {line}: file {name!r} is already listed on line "
                                   f"{first_line[name]}; list every image once")
            first_line[name] = line
            files.append(name)
            lines.append(line)
            cells.append([cell for k, cell in enumerate(row) if k != file_at])
        return files, lines, columns, cells

    def _check_files(self) -> list[int]:
        """Every listed file exists inside the folder, also once its links are followed (a link to a file
        elsewhere, say ``/etc/passwd``, is refused); returns their sizes (for the fingerprint)."""
        missing: list[str] = []
        outside: list[str] = []
        sizes: list[int] = []
        for k, name in enumerate(self.files):
            sizes.append(-1)
            if Path(name).is_absolute() or ".." in Path(name).parts:
                outside.append(self._where(k))
                continue
            if "\x00" in name:  # no file system allows it (and os calls raise ValueError on it)
                missing.append(f"{self._where(k)} (a NUL character in the name)")
                continue
            try:
                resolved = (self.folder / name).resolve()
            except (OSError, RuntimeError):  # a link loop
                missing.append(f"{self._where(k)} (a link that leads nowhere)")
                continue
            if not resolved.is_relative_to(self.folder):
                outside.append(f"{self._where(k)}, a link to {resolved}")
                continue
            try:
                st = resolved.stat()
            except OSError:
                st = None
            if st is None or not stat.S_ISREG(st.st_mode):
                missing.append(self._where(k))
            else:
                sizes[-1] = st.st_size
        if outside:
            raise DatasetError(f"{self.folder}: file paths must stay inside the folder (relative, without '..', and "
                               f"not links to files elsewhere): {_listing(outside)}; copy those images into the "
                               f"folder or {self._remedy(len(outside))}")
        if missing:
            raise DatasetError(f"{self.folder}: {len(missing)} listed image(s) not found: {_listing(missing)}; "
                               f"copy them into the folder or delete their lines from {CSV_NAME}")
        return sizes

    def _remedy(self, count: int = 1) -> str:
        """What a person can do about unusable files."""
        if self._lines:
            return f"delete {'its line' if count == 1 else 'their lines'} from {CSV_NAME}"
        return f"move {'it' if count == 1 else 'them'} out of the folder"

    def _encode(self, columns: list[str], cells: list[list[str]]) -> tuple[AttributeSchema, np.ndarray]:
        if not columns:
            return AttributeSchema(()), np.zeros((len(self.files), 0), dtype=np.int16)
        table = np.array(cells, dtype=object)
        attributes = []
        codes = np.empty((len(self.files), len(columns)), dtype=np.int32)
        for j, name in enumerate(columns):
            vocabulary = sort_values(sorted(set(table[:, j].tolist())))
            if len(vocabulary) == 1:
                raise DatasetError(
                    f"{self.csv_path}: column {name!r} holds the single value {vocabulary[0]!r} in every row, so "
                    "nothing can be learned from it; delete the column or add images with other values"
                )
            lookup = {v: i for i, v in enumerate(vocabulary)}
            codes[:, j] = [lookup[v] for v in table[:, j]]
            attributes.append(Attribute(name, tuple(vocabulary), colour_table(vocabulary)))
        return AttributeSchema(tuple(attributes)), codes

    def _auto_resolution(self) -> int:
        try:
            return auto_resolution(*image_size(self.files[0], self.folder))
        except ImageFileError as e:
            raise DatasetError(f"{self.folder}: {self._where(0)} cannot be read as an image: {e.reason}. Replace "
                               f"the file or {self._remedy()} (or give the resolution, e.g. res=64, which the first "
                               "image sets otherwise)") from None

    def _digest(self, sizes: list[int]) -> str:
        h = hashlib.sha256()
        if self.csv_path.exists():
            h.update(self.csv_path.read_bytes())
        for name, size in zip(self.files, sizes):
            h.update(f"{name}\0{size}\n".encode())
        return h.hexdigest()[:16]

    # --- the dataset contract ------------------------------------------------------------------
    def _fingerprint_parts(self) -> list[str]:
        import PIL

        return [LOADER_VERSION, f"pillow={PIL.__version__}", f"content={self._content_digest}",
                str(self.schema.to_json())]

    def _render(self, index: int) -> np.ndarray:
        try:
            return load_square_rgb(self.files[index], self.resolution, root=self.folder)
        except ImageFileError as e:
            raise DatasetError(f"{self.folder}: {self._where(index)} cannot be read as an image: {e.reason}. "
                               f"Replace the file or {self._remedy()}") from None

    def render_values(self, row) -> np.ndarray | None:
        return None if len(self.schema) == 0 else super().render_values(row)

    @property
    def labelled(self) -> bool:
        return len(self.schema) > 0

    def verify(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Decode every image once; raise one DatasetError naming every file that fails (slow on big folders)."""
        bad: list[str] = []
        for i in range(len(self)):
            try:
                decode_fully(self.files[i], self.folder)
            except ImageFileError as e:
                bad.append(f"{self._where(i)}: {e.reason}")
            if progress is not None:
                progress(i + 1, len(self))
        if bad:
            raise DatasetError(f"{self.folder}: {len(bad)} image(s) cannot be read: {_listing(bad)}; replace the "
                               f"files or {self._remedy(len(bad))}")

    def image_sizes(self, progress: Callable[[int, int], None] | None = None) -> Counter[tuple[int, int]]:
        """How many images have each (width, height), read from the file headers (no decoding); unreadable
        headers, decompression bombs included, are one DatasetError naming them all."""
        if self._sizes is None:
            sizes: Counter[tuple[int, int]] = Counter()
            bad: list[str] = []
            for i in range(len(self)):
                try:
                    sizes[image_size(self.files[i], self.folder)] += 1
                except ImageFileError as e:
                    bad.append(f"{self._where(i)}: {e.reason}")
                if progress is not None:
                    progress(i + 1, len(self))
            if bad:
                raise DatasetError(f"{self.folder}: {len(bad)} image(s) cannot be read: {_listing(bad)}; replace "
                                   f"the files or {self._remedy(len(bad))}")
            self._sizes = sizes
        return self._sizes

    def size_report(self, progress: Callable[[int, int], None] | None = None) -> str | None:
        """One sentence on the images that are not already ``resolution`` px squares, which loading centre-crops
        and resizes (how many, which sizes); None when there are none."""
        sizes = self.image_sizes(progress)
        res = self.resolution
        if set(sizes) <= {(res, res)}:
            return None
        ranked = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
        listed = ", ".join(f"{w}x{h}: {n}" for (w, h), n in ranked[:_MAX_LISTED])
        if len(ranked) > _MAX_LISTED:
            listed += f", ... and {len(ranked) - _MAX_LISTED} more sizes"
        cropped = sum(n for (w, h), n in sizes.items() if w != h)
        resized = sum(n for (w, h), n in sizes.items() if min(w, h) != res)
        done = []
        if cropped:
            done.append(f"centre-crops the {cropped} non-square one(s) to a square")
        if resized:
            done.append(f"resizes {resized} to {res} x {res} px")
        kinds = f"{len(sizes)} different sizes" if len(sizes) > 1 else "one size"
        return f"{len(self)} images in {kinds} ({listed}): loading {' and '.join(done)}"

    def describe(self) -> str:
        text = super().describe()
        if not self.labelled:
            text += "\n  (none: unlabelled images, for unsupervised methods such as mixing)"
        return text
