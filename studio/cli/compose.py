"""``studio compose``: compose an image slot by slot from dataset items, a cover query, or an interpolation strip.

    studio compose RUN --take letter=12 --take font_color=40 --out out.png
    studio compose RUN --query letter=A,font_color=red --out out.png
    studio compose RUN --interpolate letter=12:40 --frames 9 --out strip.png --gif strip.gif
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.cli import _compose_extras as extras
from studio.errors import StudioError
from studio.service.composition import Composition, ItemSource, SlotValue


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compose", help="compose an image from dataset items, a cover query, or an interpolation",
        description="Compose an image slot by slot with a trained model. Slots may be named by slot or by the "
                    "attribute they stand for. Items are dataset indices (see `studio data info`).")
    p.add_argument("checkpoint", help="checkpoint file (.safetensors) or run folder")
    p.add_argument("--dataset", metavar="SPEC", help="dataset the items come from (default: the model's own)")
    p.add_argument("--take", action="append", default=[], metavar="SLOT=IDX",
                   help="take this slot from dataset item IDX (repeatable)")
    p.add_argument("--base", type=int, default=None, metavar="IDX",
                   help="item for every slot not taken otherwise (default: the first --take item, else item 0)")
    p.add_argument("--query", metavar="ATTR=VALUE,...",
                   help="cover query over the training split, e.g. letter=A,font_color=red; then synthesise")
    p.add_argument("--interpolate", metavar="SLOT=IDX_A:IDX_B",
                   help="interpolate one slot from item A to item B and write a strip of frames")
    p.add_argument("--frames", type=int, default=9, help="frames of the interpolation strip (default 9)")
    p.add_argument("--straight", action="store_true",
                   help="with --interpolate: the plain straight line from A to B in the slot's latent space, not "
                        "pulled back onto the data where it strays (what the app's sliders do)")
    p.add_argument("--gif", type=Path, default=None, metavar="FILE",
                   help="with --interpolate: also write an animated GIF (forth and back)")
    p.add_argument("--out", type=Path, default=None,
                   help="PNG file to write (not needed with --sheet or --list-values)")
    p.add_argument("--scale", type=int, default=1, help="enlarge the output by this whole factor (default 1)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    p.add_argument("--cache-dir", type=Path, default=None, help="latent cache folder (default: the user cache)")
    extras.add_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from studio.service.model_service import ModelService

    if args.list_values:
        return extras.list_values(args)
    if args.query and args.interpolate:
        raise StudioError("use either --query or --interpolate, not both")
    if extras.wanted(args) and (args.query or args.interpolate):
        raise StudioError("--text, --font-from, --sheet and value mining go with --take/--base, not with --query or "
                          "--interpolate")
    if args.out is None and not extras.wanted(args):
        raise StudioError("give --out FILE, the PNG to write")
    if args.frames < 2:
        raise StudioError(f"--frames must be at least 2, got {args.frames}")
    if args.scale < 1:
        raise StudioError(f"--scale must be a whole number of at least 1, got {args.scale}")
    service = ModelService(device=args.device, cache_dir=args.cache_dir)
    try:
        if args.dataset:
            service.open_dataset(args.dataset)
        model = service.load_checkpoint(args.checkpoint)
        dataset = service.dataset
        if dataset is None:
            raise StudioError(f"the model's dataset {model.dataset_spec!r} cannot be opened; give --dataset SPEC")
        print(f"model    {model.title}  [{service.device}]")
        print(f"dataset  {dataset.spec} ({len(dataset):,} items)")
        if model.dataset_warning:
            print(f"note     {model.dataset_warning}")
        composition = _taken(service, args)
        if extras.wanted(args):
            return extras.run(service, composition, args, taken=set(composition.slots))
        if args.query:
            return _query(service, composition, args)
        if args.interpolate:
            return _interpolate(service, composition, args)
        result = service.compose(composition)
        _describe(service, composition)
        _write_png(args.out, _enlarge(result.image, args.scale))
        print(f"wrote    {args.out}")
        return 0
    finally:
        service.shutdown()


def _slot_name(service: Any, key: str) -> str:
    model = service.model
    if key in model.slot_names:
        return key
    slot = service.slot_for_attribute(key)
    if slot is None:
        raise StudioError(f"{key!r} is neither a slot nor an attribute of this model; slots: "
                          f"{', '.join(model.slot_names)}")
    return slot


def _item(service: Any, text: str, where: str) -> int:
    try:
        index = int(text)
    except ValueError:
        raise StudioError(f"{where}: {text!r} is not an item index (a whole number)") from None
    size = len(service.dataset)
    if not 0 <= index < size:
        raise StudioError(f"{where}: item {index} is not in the dataset (items 0..{size - 1})")
    return index


def _taken(service: Any, args: argparse.Namespace) -> Composition:
    slots: dict[str, SlotValue] = {}
    for entry in args.take:
        key, sep, value = entry.partition("=")
        if not sep:
            raise StudioError(f"--take {entry!r}: expected SLOT=IDX, e.g. --take letter=12")
        slot = _slot_name(service, key.strip())
        slots[slot] = SlotValue(a=ItemSource(_item(service, value.strip(), f"--take {entry}")))
    if args.base is not None:
        base = ItemSource(_item(service, str(args.base), "--base"))
    elif slots:
        base = next(iter(slots.values())).a
    else:
        base = ItemSource(0)
    return Composition(slots, base)


def _describe(service: Any, composition: Composition) -> None:
    dataset = service.dataset
    for name in service.model.slot_names:
        src = composition.resolved_source(name)
        if isinstance(src, ItemSource):
            values = ", ".join(f"{k}={v}" for k, v in dataset.values(src.index).items())
            print(f"  {name:<18} item {src.index:<7} ({values})")


def _query(service: Any, taken: Composition, args: argparse.Namespace) -> int:
    from studio.service.query import parse_values

    result = service.query(parse_values(args.query))
    composition = result.composition
    for slot, value in taken.slots.items():  # explicit --take wins over the cover
        composition = composition.with_slot(slot, value)
    print(f"query    {', '.join(f'{k}={v}' for k, v in result.values.items())}")
    print("cover (training items):")
    _describe(service, composition)
    image = service.compose(composition).image
    if result.exact_index is None:
        print("exact    no item of the dataset has exactly these values: the image is a zero-shot synthesis")
    else:
        where = "training" if result.exact_in_training else "held-out"
        print(f"exact    item {result.exact_index} ({where}) has exactly these values")
    _write_png(args.out, _enlarge(image, args.scale))
    print(f"wrote    {args.out}")
    return 0


def _interpolate(service: Any, taken: Composition, args: argparse.Namespace) -> int:
    key, sep, ends = args.interpolate.partition("=")
    a, colon, b = ends.partition(":")
    if not sep or not colon:
        raise StudioError(f"--interpolate {args.interpolate!r}: expected SLOT=IDX_A:IDX_B, e.g. letter=12:40")
    slot = _slot_name(service, key.strip())
    where = f"--interpolate {args.interpolate}"
    value = SlotValue(a=ItemSource(_item(service, a.strip(), where)), b=ItemSource(_item(service, b.strip(), where)))
    composition = taken.with_slot(slot, value)
    service.follow_data = not args.straight
    frames = service.interpolate(composition, slot, args.frames)
    _describe(service, composition)
    print(f"  {slot} moves to item {value.b.index} over {len(frames)} frames")
    frames = [_enlarge(f, args.scale) for f in frames]
    _write_png(args.out, np.concatenate(frames, axis=1))
    print(f"wrote    {args.out}")
    if args.gif is not None:
        loop = frames + frames[-2:0:-1]
        buf = io.BytesIO()
        images = [Image.fromarray(f) for f in loop]
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=120, loop=0)
        _write_bytes(args.gif, buf.getvalue())
        print(f"wrote    {args.gif}")
    return 0


def _enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    return image if scale == 1 else image.repeat(scale, axis=0).repeat(scale, axis=1)


def _write_png(path: Path, image: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    _write_bytes(path, buf.getvalue())


def _write_bytes(path: Path, data: bytes) -> None:
    from studio.training.checkpoint import atomic_write_bytes

    try:
        atomic_write_bytes(Path(path), data)
    except OSError as e:
        raise StudioError(f"{path}: cannot write ({e.strerror or e})") from None
