"""Dataset specs: ``fonts:small,res=32``, ``shapes:tiny``, or a folder path (``/data/faces,res=64``)."""

from __future__ import annotations

import re
from pathlib import Path

from studio.data.dataset import AttributedDataset
from studio.errors import DatasetError

BUILTIN = ("fonts", "shapes")
_OPTION = re.compile(r"^(?P<key>[a-z_]+)=(?P<value>.+)$")


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """Split a spec into (kind, preset, options); kind is 'fonts', 'shapes' or 'folder' (preset is the path)."""
    spec = spec.strip()
    if not spec:
        raise DatasetError("empty dataset spec; use fonts:small, shapes:small or a folder path")
    head, *rest = spec.split(",")
    # A folder path may itself hold commas: only trailing key=value parts count as options.
    options: dict[str, str] = {}
    while rest and _OPTION.match(rest[-1].strip()):
        m = _OPTION.match(rest.pop().strip())
        assert m is not None
        options[m["key"]] = m["value"]
    head = ",".join([head, *rest])
    name, _, preset = head.partition(":")
    if name in BUILTIN:
        return name, preset or None, options
    return "folder", head, options


def preset_kind(spec: str) -> str | None:
    """'fonts' or 'shapes' for a built-in preset's spec, None for a folder or an empty or malformed spec."""
    try:
        kind = parse_spec(spec)[0]
    except DatasetError:
        return None
    return kind if kind in BUILTIN else None


def open_dataset(spec: str) -> AttributedDataset:
    """Open any dataset by its spec; errors say what was wrong and what would work."""
    if "attributes=" in spec or spec.strip().startswith("folder="):
        from studio.data.folder_layouts import split_layout_spec

        spec = split_layout_spec(spec)
    kind, preset, options = parse_spec(spec)
    res = _int_option(options, "res", 64, spec)
    if kind == "fonts":
        from studio.data.fonts import FontsDataset

        _only(options, {"res", "fonts"}, spec)
        return FontsDataset(preset or "full", res, options.get("fonts"))
    if kind == "shapes":
        from studio.data.shapes import ShapesDataset

        _only(options, {"res"}, spec)
        return ShapesDataset(preset or "full", res)
    from studio.data.folder import FolderDataset
    from studio.data.folder_layouts import has_layout, open_layout

    _only(options, {"res", "layout", "attributes", "attribute"}, spec)
    path = Path(preset or "").expanduser()
    if not path.exists():
        raise DatasetError(
            f"dataset {spec!r}: no such folder {path}; use fonts, fonts:small, fonts:tiny, shapes, shapes:small, "
            "shapes:tiny or the path of a folder holding images and attributes.csv"
        )
    if {"layout", "attributes", "attribute"} & set(options) or (path.is_dir() and has_layout(path)):
        return open_layout(path, options, res if "res" in options else None)  # labelled by its folder names
    return FolderDataset(path, res if "res" in options else None)


def _int_option(options: dict[str, str], key: str, default: int, spec: str) -> int:
    if key not in options:
        return default
    try:
        return int(options[key])
    except ValueError:
        raise DatasetError(f"dataset {spec!r}: {key}={options[key]!r} is not a whole number") from None


def _only(options: dict[str, str], allowed: set[str], spec: str) -> None:
    unknown = set(options) - allowed
    if unknown:
        raise DatasetError(
            f"dataset {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )
