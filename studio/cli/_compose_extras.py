"""``studio compose`` beyond one image: typed text, a font completed from a few glyphs, and mined values.

    studio compose CKPT --text "BADGE" --take font=IDX --out word.png
    studio compose CKPT --font-from a.png b.png --sheet sheet.png [--gif morph.gif] [--text CAB --out cab.png]
    studio compose CKPT --direction font_color=blue+red-green@1.5 --save-value plum --out plum.png
    studio compose CKPT --centre font_color=blue --out centre.png
    studio compose CKPT --use-value plum --text ABBA --out abba.png
    studio compose CKPT --list-values

The options only add to the composition ``--take``/``--base`` build (the "current sources"); everything runs
through the service modules, as the GUI does.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.errors import StudioError
from studio.service.composition import Composition


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("text, fonts from glyphs, mined values")
    g.add_argument("--text", metavar="TEXT",
                   help="draw a word or line: each character takes the letter slot from a dataset item showing it, "
                        "every other slot the composition's sources; characters the model lacks are left as gaps")
    g.add_argument("--letter-source", choices=("item", "mean"), default="item",
                   help="with --text/--sheet: letter slot from a dataset item (default) or the letter's mean code")
    g.add_argument("--tracking", type=float, default=0.06,
                   help="with --text: space between glyphs' ink, as a fraction of the height (default 0.06)")
    g.add_argument("--font-from", nargs="+", type=Path, default=None, metavar="IMAGE",
                   help="1-5 images of letters in a font the model has not seen: the font (and, unless --take gives "
                        "them, the other style slots) is encoded from them")
    g.add_argument("--sheet", type=Path, default=None, metavar="FILE",
                   help="write the whole alphabet in the composition's style as one PNG")
    g.add_argument("--morph-from", metavar="FONT",
                   help="with --font-from and --gif: morph the sheet from this known font (default: the nearest)")
    g.add_argument("--frames-morph", type=int, default=12, metavar="N", help="frames of the morph GIF (default 12)")
    g.add_argument("--direction", action="append", default=[], metavar="SLOT=RECIPE[@AMOUNT]",
                   help="move a slot along combined attribute directions, e.g. font_color=blue+red-green@1.5 "
                        "(amount in latent units, default 1)")
    g.add_argument("--centre", action="append", default=[], metavar="SLOT=VALUE",
                   help="jump a slot to the centre of a value's cluster, e.g. font_color=blue")
    g.add_argument("--save-value", metavar="NAME", help="save the mined slot's value under NAME for reuse")
    g.add_argument("--use-value", action="append", default=[], metavar="NAME", help="put a saved value into its slot")
    g.add_argument("--values", type=Path, default=None, metavar="FILE",
                   help="mined-values file (default: the user's own, $STUDIO_VALUES_FILE if set)")
    g.add_argument("--list-values", action="store_true", help="list the saved mined values and exit")


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.text is not None or args.font_from or args.sheet or args.direction or args.centre
                or args.save_value or args.use_value)


def list_values(args: argparse.Namespace) -> int:
    from studio.service.mined_values import MinedValueStore

    store = MinedValueStore(args.values)
    values = store.load()
    print(f"values   {store.path} ({len(values)} saved)")
    for v in values:
        print(f"  {v.describe()}")
    return 0


def run(service: Any, composition: Composition, args: argparse.Namespace, taken: set[str]) -> int:
    """``taken``: the slots ``--take`` named (they keep their items when glyphs give the style)."""
    from studio.service.mined_values import MinedValueStore, capture

    if args.sheet is None and args.out is None:
        raise StudioError("give --out FILE (or --sheet FILE with --font-from)")
    if args.gif is not None and not args.font_from:
        raise StudioError("--gif goes with --interpolate or --font-from (a morph from a known font)")
    mined: list[str] = []
    store = MinedValueStore(args.values)
    for name in args.use_value:
        value = store.get(name)
        composition = value.apply(service, composition)
        print(f"value    {value.describe()}")
    composition, mined = _mine(service, composition, args)
    if args.font_from:
        from studio.service.font_completion import font_slot, style_from_files

        composition = style_from_files(service, args.font_from, composition, keep=sorted(taken | set(mined)))
        print(f"font     from {len(args.font_from)} glyph image(s): " + ", ".join(p.name for p in args.font_from))
        mined.append(font_slot(service))
    if args.save_value:
        slots = sorted(set(mined))
        if len(slots) != 1:
            raise StudioError("--save-value saves one slot's value: give one --direction, --centre or --font-from "
                              f"(now: {', '.join(slots) or 'none'})")
        saved = capture(service, composition, slots[0], args.save_value)
        print(f"saved    {saved.describe()} -> {store.save(saved)}")
    if args.sheet is not None:
        _sheet(service, composition, args)
    if args.out is not None:
        if args.text is not None:
            _text(service, composition, args)
        else:
            image = service.compose(composition).image
            _write_png(args.out, _enlarge(image, args.scale))
            print(f"wrote    {args.out}")
    return 0


def _mine(service: Any, composition: Composition, args: argparse.Namespace) -> tuple[Composition, list[str]]:
    from studio.service.mined_values import mine, parse_recipe

    mined = []
    for entry in args.centre:
        slot, value = _slot_and(service, entry, "--centre", "SLOT=VALUE, e.g. font_color=blue")
        composition = service.jump_to_centre(composition, slot, value)
        print(f"centre   {slot} at the centre of {value}")
        mined.append(slot)
    for entry in args.direction:
        slot, rest = _slot_and(service, entry, "--direction",
                               "SLOT=RECIPE[@AMOUNT], e.g. font_color=blue+red-green@1.5")
        text, _, amount_text = rest.rpartition("@") if "@" in rest else (rest, "", "1")
        try:
            amount = float(amount_text)
        except ValueError:
            raise StudioError(f"--direction {entry!r}: amount {amount_text!r} is not a number") from None
        attribute = service.model.slot(slot).attribute
        known = service.model.schema[attribute].values if attribute in service.model.schema.names else ()
        recipe = parse_recipe(text, known)
        composition = mine(service, composition, slot, recipe, amount)
        from studio.service.mined_values import recipe_text

        print(f"mined    {slot} {amount:+g} along {recipe_text(recipe)}")
        mined.append(slot)
    return composition, mined


def _slot_and(service: Any, entry: str, option: str, form: str) -> tuple[str, str]:
    from studio.cli.compose import _slot_name

    key, sep, rest = entry.partition("=")
    if not sep or not key.strip() or not rest.strip():
        raise StudioError(f"{option} {entry!r}: expected {form}")
    return _slot_name(service, key.strip()), rest.strip()


def _text(service: Any, composition: Composition, args: argparse.Namespace) -> None:
    from studio.service.text_line import TextLineComposer

    composer = TextLineComposer(service, args.letter_source, args.tracking)
    result = composer.render(args.text, composition)
    if result.plan.message():
        print(f"note     {result.plan.message()}")
    h, w = result.image.shape[:2]
    _write_png(args.out, _enlarge(result.image, args.scale))
    print(f"wrote    {args.out} ({w}x{h} px, {len(result.plan.drawn)} glyphs)")


def _sheet(service: Any, composition: Composition, args: argparse.Namespace) -> None:
    from studio.service.font_completion import (
        alphabet_sheet,
        font_slot,
        known_font_source,
        morph_sheets,
        nearest_known_font,
    )

    sheet = alphabet_sheet(service, composition, letter_source=args.letter_source)
    _write_png(args.sheet, _enlarge(sheet.image, args.scale))
    print(f"wrote    {args.sheet} (the alphabet {''.join(sheet.letters)})")
    if args.gif is not None:
        if args.morph_from:
            start_font = args.morph_from
        else:
            start_font, distance = nearest_known_font(service, composition)
            print(f"nearest  known font {start_font} (code distance {distance:.2f})")
        start = known_font_source(service, start_font)
        frames = morph_sheets(service, composition, start, args.frames_morph, letter_source=args.letter_source)
        pictures = [Image.fromarray(_enlarge(f, args.scale)) for f in frames + frames[-2:0:-1]]
        buf = io.BytesIO()
        pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=120, loop=0)
        _write_bytes(args.gif, buf.getvalue())
        print(f"wrote    {args.gif} (morph from {start_font} to the glyphs' {font_slot(service)}, "
              f"{len(frames)} frames)")


def _enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    return image if scale == 1 else image.repeat(scale, axis=0).repeat(scale, axis=1)


def _write_png(path: Path, image: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    _write_bytes(path, buf.getvalue())


def _write_bytes(path: Path, data: bytes) -> None:
    from studio.cli.compose import _write_bytes as write

    write(path, data)
