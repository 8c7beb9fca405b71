"""Write any dataset in the folder layout (PNG files plus ``attributes.csv``), so built-in sets can be inspected,
edited and reopened like a user's own folder."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from studio.atomic import atomic_write_bytes
from studio.data.dataset import AttributedDataset
from studio.data.folder import CSV_NAME, FILE_COLUMN
from studio.errors import DatasetError


def _write_atomically(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data, durable=False)


def chosen_items(size: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """All items, or ``limit`` of them drawn at random (seeded) so that a short export still shows every value."""
    if limit is None or limit >= size:
        return np.arange(size)
    if limit < 1:
        raise DatasetError(f"--limit {limit}: give a positive number of images")
    return np.sort(np.random.default_rng(seed).choice(size, size=limit, replace=False))


def export_dataset(dataset: AttributedDataset, out_dir: str | os.PathLike, *, limit: int | None = None,
                   labels: bool = True, seed: int = 0, overwrite: bool = False, progress: bool = True) -> Path:
    """Write ``dataset`` (or a seeded random ``limit`` of it) to ``out_dir``; returns the folder.

    File names are the item indices, zero-padded so that a natural or plain sort keeps the dataset's order.
    Without ``labels`` (or for an unlabelled dataset) no ``attributes.csv`` is written.
    """
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder; choose a new folder to export to")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DatasetError(f"{out} is not empty; choose a new folder, or pass --force to write into it")
    out.mkdir(parents=True, exist_ok=True)
    items = chosen_items(len(dataset), limit, seed)
    width = max(5, len(str(len(dataset) - 1)))
    names: list[str] = []
    for i in tqdm(items, desc="export", unit="img", disable=not progress, leave=False):
        name = f"{int(i):0{width}d}.png"
        buffer = io.BytesIO()
        Image.fromarray(dataset.image(int(i))).save(buffer, format="PNG")
        _write_atomically(out / name, buffer.getvalue())
        names.append(name)
    if labels and len(dataset.schema) > 0:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([FILE_COLUMN, *dataset.schema.names])
        for name, i in zip(names, items):
            writer.writerow([name, *dataset.values(int(i)).values()])
        _write_atomically(out / CSV_NAME, text.getvalue().encode("utf-8"))
    return out
