"""Folders labelled by their layout instead of an ``attributes.csv``, the way the ecosystem lays data out.

- ``layout=imagefolder``: torchvision's ImageFolder, one subfolder per value (``DIR/cat/001.png``); the attribute
  is named by ``attribute=NAME`` (default ``class``, torchvision's word) or by the folders' own names when they
  read ``NAME=VALUE``.
- ``layout=nested``: one folder level per attribute (``DIR/A/cmr10/001.png``), named by
  ``attributes=letter/font`` (or ``attributes=letter,font``), or by ``NAME=VALUE`` folder names
  (``DIR/letter=A/font=cmr10/001.png``), which need no option at all.

A folder without ``attributes.csv`` whose images all sit in subfolders opens this way by itself (``layout=auto``):
one level is an ImageFolder, several are nested. Files are checked (inside the folder, links resolved) and decoded
by ``FolderDataset``, whose guarded opener reads every image.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from studio.data.folder import CSV_NAME, IMAGE_SUFFIXES, FolderDataset, natural_key
from studio.errors import DatasetError

LAYOUTS = ("auto", "imagefolder", "nested")
DEFAULT_ATTRIBUTE = "class"
_NAMED = re.compile(r"^(?P<name>[A-Za-z_][\w]*)=(?P<value>.+)$")
_MAX_LISTED = 6


def image_paths(folder: Path) -> list[str]:
    """Every image below ``folder`` as a relative POSIX path, in natural order. Linked folders are not entered (a
    link could lead anywhere); linked files are listed and then checked like every other file."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(root).relative_to(folder)
        for name in files:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith("."):
                found.append((rel / name).as_posix())
    return sorted(found, key=natural_key)


def has_layout(folder: Path) -> bool:
    """Whether a folder without ``attributes.csv`` is labelled by its subfolders: it holds images, all in them."""
    if (folder / CSV_NAME).exists():
        return False
    try:
        if any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir()):
            return False
    except OSError:
        return False
    return bool(image_paths(folder))


def parse_attribute_names(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    names = tuple(n.strip() for n in re.split(r"[/,+]", text) if n.strip())
    for n in names:
        if not re.match(r"^[A-Za-z_]\w*$", n):
            raise DatasetError(f"attribute name {n!r} must be a word (letters, digits, '_'), e.g. "
                               "attributes=letter/font")
    if len(set(names)) != len(names):
        raise DatasetError(f"attributes={text}: a name appears twice")
    return names


def layout_table(folder: Path, layout: str = "auto", names: Sequence[str] = ()
                 ) -> tuple[list[str], list[str], list[list[str]], str]:
    """(files, attribute names, one row of values per file, the layout used) read from the folder names."""
    if layout not in LAYOUTS:
        raise DatasetError(f"layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    files = image_paths(folder)
    if not files:
        raise DatasetError(f"{folder} holds no images in subfolders ({', '.join(IMAGE_SUFFIXES)}); lay them out as "
                           "DIR/VALUE/image.png (layout=imagefolder) or DIR/VALUE1/VALUE2/image.png (layout=nested)")
    depths = {f: len(Path(f).parts) - 1 for f in files}
    loose = [f for f, d in depths.items() if d == 0]
    if loose:
        raise DatasetError(f"{folder}: {len(loose)} image(s) lie in the folder itself, outside any value folder: "
                           f"{_listing(loose)}; move each into the folder of its value (e.g. DIR/cat/{loose[0]})")
    by_depth: dict[int, list[str]] = {}
    for f, d in depths.items():
        by_depth.setdefault(d, []).append(f)
    if len(by_depth) > 1:
        common = max(by_depth, key=lambda d: len(by_depth[d]))
        odd = [f for d, fs in by_depth.items() if d != common for f in fs]
        raise DatasetError(f"{folder}: every image must sit {common} folder level(s) deep (one per attribute), but "
                           f"{len(odd)} do not: {_listing(odd)}; move them, or open a folder with attributes.csv")
    depth = next(iter(by_depth))
    if layout == "imagefolder" and depth != 1:
        raise DatasetError(f"{folder}: layout=imagefolder wants DIR/VALUE/image.png, but images sit {depth} levels "
                           f"deep (e.g. {files[0]}); use layout=nested with attributes=NAME1/NAME2/...")
    used = "imagefolder" if depth == 1 else "nested"
    if layout == "nested":
        used = "nested"
    levels = [[Path(f).parts[k] for f in files] for k in range(depth)]
    columns: list[str] = []
    values: list[list[str]] = []
    for k, level in enumerate(levels):
        named = [_NAMED.match(v) for v in level]
        given = names[k] if k < len(names) else None
        if all(named):
            found = {m["name"] for m in named if m}
            if len(found) != 1:
                raise DatasetError(f"{folder}: folder level {k + 1} names several attributes "
                                   f"({', '.join(sorted(found))}); every folder of one level must be NAME=VALUE "
                                   "with the same NAME")
            name = found.pop()
            if given is not None and given != name:
                raise DatasetError(f"{folder}: attributes= names level {k + 1} {given!r}, but its folders say "
                                   f"{name}=...; drop the option or rename the folders")
            values.append([m["value"] for m in named if m])
        else:
            if any(named):
                mixed = sorted({v for v, m in zip(level, named) if m is None})[:3]
                raise DatasetError(f"{folder}: at folder level {k + 1} some folders read NAME=VALUE and others "
                                   f"({', '.join(mixed)}) do not; name them all one way")
            if given is None:
                if depth == 1:
                    given = DEFAULT_ATTRIBUTE
                else:
                    raise DatasetError(f"{folder}: images sit {depth} folder levels deep; name the attribute of each "
                                       f"level, e.g. attributes={'/'.join(f'name{j + 1}' for j in range(depth))}, or "
                                       "name the folders NAME=VALUE (letter=A/font=cmr10/...)")
            name = given
            values.append(list(level))
        if name in columns:
            raise DatasetError(f"{folder}: attribute {name!r} names two folder levels")
        columns.append(name)
        distinct = sorted(set(values[-1]))
        if len(distinct) < 2:
            raise DatasetError(f"{folder}: every image has {name}={distinct[0]!r} (one folder at level {k + 1}), so "
                               "nothing can be learned from it; add folders of other values")
    if len(names) > depth:
        raise DatasetError(f"{folder}: attributes= names {len(names)} levels ({', '.join(names)}) but images sit "
                           f"{depth} level(s) deep (e.g. {files[0]})")
    cells = [[values[k][i] for k in range(depth)] for i in range(len(files))]
    return files, columns, cells, used


class LayoutFolderDataset(FolderDataset):
    """A ``FolderDataset`` whose labels come from its folder names (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, resolution: int | None = None, layout: str = "auto",
                 attributes: Sequence[str] = ()) -> None:
        self._layout_request = layout
        self._layout_names = tuple(attributes)
        self.layout = layout
        super().__init__(path, resolution)
        names = "/".join(self.schema.names)
        self.spec = f"{self.folder},layout={self.layout},attributes={names},res={self.resolution}"

    def _labelled_by_table(self) -> bool:
        return True

    def _read_table(self) -> tuple[list[str], list[int], list[str], list[list[str]]]:
        files, columns, cells, used = layout_table(self.folder, self._layout_request, self._layout_names)
        self.layout = used
        return files, [], columns, cells

    def _fingerprint_parts(self) -> list[str]:
        return [*super()._fingerprint_parts(), f"layout={self.layout}"]


def open_layout(path: Path, options: dict[str, str], resolution: int | None) -> LayoutFolderDataset:
    """The dataset of a folder spec's layout options (``layout``, ``attributes``/``attribute``)."""
    layout = options.get("layout", "auto")
    names = parse_attribute_names(options.get("attributes") or options.get("attribute"))
    if "attribute" in options and len(names) != 1:
        raise DatasetError(f"attribute={options['attribute']} names one attribute; for several use attributes=a/b")
    return LayoutFolderDataset(path, resolution, layout, names)


def split_layout_spec(spec: str) -> str:
    """``DIR,layout=nested,attributes=letter,font,res=32`` -> the same with ``attributes=letter/font``, so that the
    comma form the ecosystem writes parses as one option. A leading ``folder=`` is dropped."""
    head = spec.strip()
    if head.startswith("folder="):
        head = head[len("folder="):]
    parts = head.split(",")
    out: list[str] = []
    k = 0
    while k < len(parts):
        part = parts[k]
        if part.strip().startswith("attributes="):
            names = [part.strip()[len("attributes="):]]
            while k + 1 < len(parts) and re.match(r"^\s*[A-Za-z_]\w*\s*$", parts[k + 1]):
                k += 1
                names.append(parts[k].strip())
            part = "attributes=" + "/".join(n for n in names if n)
        out.append(part)
        k += 1
    return ",".join(out)


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")
