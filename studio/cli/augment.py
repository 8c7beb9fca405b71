"""``studio augment CHECKPOINT OUT_DIR --count N [--mode new|interpolate]``: write synthesised images, with their
attribute labels, as a folder dataset (PNG files plus ``attributes.csv``) that trains or tests other models.

- ``new``: attribute combinations the model never trained on, each made by a cover query over the training
  split (every attribute's slot taken from a training item that shows the wanted value).
- ``interpolate``: an attribute slot moved part of the way between two training items (paper 003's exploration);
  that attribute's label is ``VALUE_A~VALUE_B`` (the nearer end first), the others are the first item's.

Everything goes through the model service, so it works with every method whose slots name attributes.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.errors import StudioError

MODES = ("new", "interpolate")
COMBINATIONS = ("held-out", "unseen")


@dataclass
class Synthesised:
    """Images (n, H, W, 3) uint8 with one label dict per image, and a line per image on how it was made."""

    images: np.ndarray
    labels: list[dict[str, str]]
    recipes: list[str]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "augment", help="write synthesised images (new combinations or interpolations) as a folder dataset",
        description="Synthesise labelled images with a trained model and write them as a folder dataset "
                    "(PNG files and attributes.csv with a `file` column and one column per attribute).")
    p.add_argument("checkpoint", help="checkpoint file (.safetensors) or run folder")
    p.add_argument("out_dir", type=Path, help="folder to write (must be new or empty, unless --force)")
    p.add_argument("--count", type=int, required=True, help="number of images to synthesise")
    p.add_argument("--mode", choices=MODES, default="new",
                   help="new: unseen attribute combinations via cover queries; interpolate: one attribute slot "
                        "between two training items (default new)")
    p.add_argument("--combinations", choices=COMBINATIONS, default="held-out",
                   help="mode new: held-out combinations of the zero-shot split (real, valid, never trained on) "
                        "or any combination of known values absent from training (default held-out)")
    p.add_argument("--attributes", default="", metavar="A,B",
                   help="mode interpolate: only move these attributes' slots (default: every attribute slot)")
    p.add_argument("--t-range", default="0.25,0.75", metavar="LOW,HIGH",
                   help="mode interpolate: positions between the two items, drawn uniformly (default 0.25,0.75)")
    p.add_argument("--dataset", metavar="SPEC", help="dataset the sources come from (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random choices (default 0)")
    p.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    p.add_argument("--cache-dir", type=Path, default=None, help="latent cache folder (default: the user cache)")
    p.set_defaults(run=run)


def _combinations_absent_from_training(codes: np.ndarray, train: np.ndarray, cardinalities: list[int],
                                       count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random code rows (repeats allowed only when there are fewer) that no training item has."""
    seen = {row.tobytes() for row in np.ascontiguousarray(codes[train], dtype=np.int64)}
    total = int(np.prod(cardinalities, dtype=np.float64))
    if total - len(seen) <= 0:
        raise StudioError("every combination of attribute values occurs in the training split; there is nothing "
                          "new to synthesise (try --mode interpolate)")
    found: dict[bytes, np.ndarray] = {}
    tries = 0
    while len(found) < count and tries < 50 * count + 1000:
        row = np.array([rng.integers(c) for c in cardinalities], dtype=np.int64)
        tries += 1
        if row.tobytes() not in seen:
            found.setdefault(row.tobytes(), row)
    if not found:
        raise StudioError("could not find a combination absent from training; try --mode interpolate")
    rows = np.stack(list(found.values()))
    return rows[rng.integers(len(rows), size=count)] if len(rows) < count else rows


def training_items(checkpoint: str | Path, dataset) -> np.ndarray:
    """The training split the checkpoint was trained with, rebuilt from its description (as the service does)."""
    from studio.data.splits import ZeroShotSplit
    from studio.training.checkpoint import read_checkpoint_meta

    split = read_checkpoint_meta(checkpoint).get("split") or {}
    if not isinstance(split, dict):
        raise StudioError(f"{checkpoint}: its description's split is not a table; the checkpoint is damaged")
    return ZeroShotSplit.make(dataset.codes, float(split.get("test_fraction", 0.25)), int(split.get("seed", 0))).train


def synthesise_new(service, train: np.ndarray, count: int, rng: np.random.Generator,
                   combinations: str = "held-out") -> Synthesised:
    """Unseen combinations, each composed from a cover query over the training split."""
    model, dataset = service.model, service.dataset
    schema = dataset.schema
    covered = {s.attribute for s in model.slots if s.attribute}
    missing = [a for a in schema.names if a not in covered]
    if missing:
        raise StudioError(f"mode new needs a slot for every attribute, but the {model.method} model has none for "
                          f"{', '.join(missing)}; use --mode interpolate")
    if combinations == "held-out":
        held = np.setdiff1d(np.arange(len(dataset)), train)
        if len(held) == 0:
            raise StudioError("the model's split holds out no combinations; use --combinations unseen")
        rows = dataset.codes[rng.choice(held, size=count, replace=len(held) < count)].astype(np.int64)
    else:
        rows = _combinations_absent_from_training(dataset.codes, train, schema.cardinalities, count, rng)
    images, labels, recipes = [], [], []
    for row in rows:
        values = schema.decode_row(row)
        result = service.query(values)
        images.append(service.compose(result.composition).image)
        labels.append(values)
        recipes.append("cover " + " ".join(f"{a}<-{i}" for a, i in result.cover.items()))
    return Synthesised(np.stack(images), labels, recipes)


def synthesise_interpolated(service, train: np.ndarray, count: int, rng: np.random.Generator,
                            attributes: list[str] | None = None,
                            t_range: tuple[float, float] = (0.25, 0.75)) -> Synthesised:
    """One attribute slot moved to ``t`` between two training items that differ in that attribute."""
    from studio.service.composition import Composition, ItemSource, SlotValue

    model, dataset = service.model, service.dataset
    schema = dataset.schema
    slots = [s for s in model.slots if s.attribute and (not attributes or s.attribute in attributes)]
    if attributes:
        unknown = [a for a in attributes if a not in {s.attribute for s in model.slots}]
        if unknown:
            raise StudioError(f"--attributes: the {model.method} model has no slot for {', '.join(unknown)}; slots "
                              f"stand for {', '.join(s.attribute for s in model.slots if s.attribute)}")
    if not slots:
        raise StudioError(f"the {model.method} model has no attribute slots to interpolate")
    low, high = t_range
    if not 0.0 <= low <= high <= 1.0:
        raise StudioError(f"--t-range {low},{high}: give 0 <= LOW <= HIGH <= 1")
    images, labels, recipes = [], [], []
    for _ in range(count):
        slot = slots[int(rng.integers(len(slots)))]
        j = schema.position(slot.attribute)
        a = int(rng.choice(train))
        others = train[dataset.codes[train, j] != dataset.codes[a, j]]
        if len(others) == 0:
            raise StudioError(f"every training item has the same {slot.attribute}; nothing to interpolate")
        b = int(rng.choice(others))
        t = float(rng.uniform(low, high))
        comp = Composition({slot.name: SlotValue(a=ItemSource(a), b=ItemSource(b), t=t)}, base=ItemSource(a))
        images.append(service.compose(comp).image)
        values = dataset.values(a)
        near, far = (values[slot.attribute], dataset.values(b)[slot.attribute])
        if t > 0.5:
            near, far = far, near
        values[slot.attribute] = f"{near}~{far}"
        labels.append(values)
        recipes.append(f"{slot.name} {a}->{b} t={t:.3f}")
    return Synthesised(np.stack(images), labels, recipes)


def check_out_dir(out: Path, force: bool) -> Path:
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise StudioError(f"{out} exists and is not a folder; choose a new folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise StudioError(f"{out} is not empty; choose a new folder, or pass --force to write into it")
    return out


def write_folder(out: Path, synth: Synthesised, attribute_names: list[str], *, force: bool = False) -> Path:
    """PNG files plus ``attributes.csv`` (``file`` + one column per attribute), each written atomically."""
    from studio.data.folder import CSV_NAME, FILE_COLUMN
    from studio.training.checkpoint import atomic_write_bytes

    out = check_out_dir(out, force)
    out.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(synth.images))))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([FILE_COLUMN, *attribute_names])
    for k, (image, labels) in enumerate(zip(synth.images, synth.labels)):
        name = f"synth-{k:0{width}d}.png"
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        atomic_write_bytes(out / name, buffer.getvalue())
        writer.writerow([name, *(labels[a] for a in attribute_names)])
    atomic_write_bytes(out / CSV_NAME, text.getvalue().encode("utf-8"))
    return out


def _t_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise StudioError(f"--t-range {text!r}: give two numbers, LOW,HIGH (e.g. 0.25,0.75)") from None
    return low, high


def run(args: argparse.Namespace) -> int:
    from studio.service.model_service import ModelService

    if args.count < 1:
        raise StudioError(f"--count must be at least 1, got {args.count}")
    check_out_dir(args.out_dir, args.force)
    service = ModelService(device=args.device, cache_dir=args.cache_dir)
    try:
        if args.dataset:
            service.open_dataset(args.dataset)
        model = service.load_checkpoint(args.checkpoint)
        if service.dataset is None:
            raise StudioError(f"{args.checkpoint}: its dataset cannot be opened; pass --dataset SPEC")
        if not model.can_encode:
            raise StudioError(f"{args.checkpoint}: this {model.method} model cannot encode images yet")
        rng = np.random.default_rng(args.seed)
        train = training_items(args.checkpoint, service.dataset)
        if args.mode == "new":
            synth = synthesise_new(service, train, args.count, rng, args.combinations)
        else:
            attributes = [a.strip() for a in args.attributes.split(",") if a.strip()]
            synth = synthesise_interpolated(service, train, args.count, rng, attributes, _t_range(args.t_range))
        out = write_folder(args.out_dir, synth, service.dataset.schema.names, force=args.force)
    finally:
        service.shutdown()
    print(f"wrote {len(synth.images)} images and attributes.csv to {out}", file=sys.stderr)
    return 0
