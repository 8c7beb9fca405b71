"""A whole font from a few glyphs: encode 1-5 images of letters in a font the model never saw, take their font
codes (their mean: a mixture with equal weights), and draw every letter of the model's alphabet in that style.

The style's other slots (size, colours) come from the same glyphs unless the caller gives them, so the sheet
looks like the lettering that was dropped. ``measure_completion`` scores it on fonts held out from training:
the completed letters against true renders of that font, next to the nearest font the model knows.

Plain Python and torch-free, like ``text_line``: model work goes through the service's encode and compose calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.errors import StudioError
from studio.service.composition import (
    Composition,
    FileSource,
    ItemSource,
    LatentSource,
    MixtureSource,
    SlotValue,
    Source,
)
from studio.service.text_line import MEAN_ITEMS, TextLineComposer, letter_item, letter_slot

#: Glyphs a person is asked for; more are accepted (their codes are averaged all the same).
SUGGESTED_GLYPHS = 5


def font_attribute(service: Any) -> str:
    model = _model(service)
    if "font" in model.schema.names and service.slot_for_attribute("font") is not None:
        return "font"
    raise StudioError(f"this {model.method} model has no font slot (its attributes: {', '.join(model.schema.names)}); "
                      "completing a font needs a model trained on Fonts, e.g. the shipped fonts-gzs")


def font_slot(service: Any) -> str:
    slot = service.slot_for_attribute(font_attribute(service))
    assert slot is not None
    return slot


def glyph_source(paths: Sequence[str | Path]) -> Source:
    """The glyph files as one source: a mixture with equal weights (the mean of their codes), or the one file."""
    if not paths:
        raise StudioError("give at least one image of a letter in the font to complete")
    files = [FileSource(str(Path(p).expanduser().resolve())) for p in paths]
    for f in files:
        if not Path(f.path).is_file():
            raise StudioError(f"{f.path}: no such image file")
    return files[0] if len(files) == 1 else MixtureSource(tuple((f, 1.0) for f in files))


def style_from_files(service: Any, paths: Sequence[str | Path], base: Composition | None = None,
                     keep: Sequence[str] = ()) -> Composition:
    """The style of the dropped glyph files: the font slot from their codes, and every other slot except the
    letter and the slots named in ``keep`` (whose sources stay as in ``base``) from them too. Each file is
    encoded once here, so an unreadable one is reported now, naming it."""
    source = glyph_source(paths)
    for part in (source.parts if isinstance(source, MixtureSource) else ((source, 1.0),)):
        service.encode_image(part[0].path)
    return _with_style(service, source, base, keep)


def style_with_glyphs(service: Any, paths: Sequence[str | Path], base: Composition | None = None,
                      keep: Sequence[str] = ()) -> Composition:
    """``style_from_files`` without encoding now (for files already encoded once): pure, GUI-thread safe."""
    return _with_style(service, glyph_source(paths), base, keep)


def style_from_pixels(service: Any, images: np.ndarray, base: Composition | None = None,
                      keep: Sequence[str] = ()) -> Composition:
    """As ``style_from_files`` for uint8 ``(n, H, W, 3)`` renders: each slot the mean of their codes."""
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise StudioError(f"give at least one glyph image as (n, H, W, 3) uint8, got shape {images.shape}")
    codes = service.encode_pixels(images)
    model = _model(service)
    letter = letter_slot(service)
    comp = base or Composition()
    for spec in model.slots:
        if spec.name == letter or spec.name in keep:
            continue
        mean = codes[spec.name].mean(axis=0)
        comp = comp.with_slot(spec.name, SlotValue(a=LatentSource(tuple(float(v) for v in mean), tuple(spec.shape))))
    return comp


def _with_style(service: Any, source: Source, base: Composition | None, keep: Sequence[str]) -> Composition:
    model = _model(service)
    letter = letter_slot(service)
    comp = base or Composition()
    for spec in model.slots:
        if spec.name != letter and spec.name not in keep:
            comp = comp.with_slot(spec.name, SlotValue(a=source))
    return comp


# --- sheets ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlphabetSheet:
    """Every letter drawn in one style: the grid image and each letter's tile."""

    image: np.ndarray
    letters: tuple[str, ...]
    tiles: tuple[np.ndarray, ...]
    columns: int


def sheet_grid(tiles: Sequence[np.ndarray], columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tiles in rows of ``columns`` (default: near-square for more than 13), ``gap`` px of white between."""
    if not tiles:
        raise StudioError("no letters to put on the sheet")
    n = len(tiles)
    cols = columns or (n if n <= 13 else math.ceil(n / math.ceil(n / 13)))
    rows = math.ceil(n / cols)
    h, w = tiles[0].shape[:2]
    out = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        out[y:y + h, x:x + w] = tile
    return out


def alphabet_sheet(service: Any, style: Composition, letters: Sequence[str] | None = None,
                   columns: int | None = None, letter_source: str = "item") -> AlphabetSheet:
    """Every letter of the model's alphabet (or ``letters``) in ``style``, composed through the service."""
    tiles, chosen = _letter_tiles(service, [style], letters, letter_source)
    return AlphabetSheet(sheet_grid(tiles[0], columns), chosen, tuple(tiles[0]), columns or 0)


def morph_sheets(service: Any, style: Composition, start: Source, frames: int = 12,
                 letters: Sequence[str] | None = None, columns: int | None = None,
                 letter_source: str = "item") -> list[np.ndarray]:
    """Sheets whose font slot moves from ``start`` (a known font) to ``style``'s font in ``frames`` steps."""
    if frames < 2:
        raise StudioError(f"a morph needs at least 2 frames, not {frames}")
    slot = font_slot(service)
    target = style.slot(slot).a
    if target is None:
        raise StudioError("the style has no font source to morph toward; give glyph images first")
    styles = [style.with_slot(slot, SlotValue(a=start, b=target, t=float(t))) for t in np.linspace(0, 1, frames)]
    tiles, _ = _letter_tiles(service, styles, letters, letter_source)
    return [sheet_grid(t, columns) for t in tiles]


def _letter_tiles(service: Any, styles: Sequence[Composition], letters: Sequence[str] | None,
                  letter_source: str) -> tuple[list[list[np.ndarray]], tuple[str, ...]]:
    from studio.service.text_line import alphabet

    chosen = tuple(letters) if letters else alphabet(service)
    known = set(alphabet(service))
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise StudioError(f"the model cannot draw {' '.join(repr(c) for c in unknown)}: its alphabet is "
                          f"{''.join(sorted(known))}")
    composer = TextLineComposer(service, letter_source)
    slot = letter_slot(service)
    sources = {c: composer.letter_source_for(c, styles[0], letter_source) for c in chosen}
    futures = [[service.compose_async(s.with_slot(slot, SlotValue(a=sources[c]))) for c in chosen] for s in styles]
    return [[f.result().image for f in row] for row in futures], chosen


# --- known fonts ----------------------------------------------------------------------------------------
def font_codes(service: Any) -> dict[str, np.ndarray]:
    """The mean font-slot code of each font of the open dataset (up to ``MEAN_ITEMS`` items each)."""
    dataset = _dataset(service)
    attribute = font_attribute(service)
    position = dataset.schema.position(attribute)
    slot = font_slot(service)
    out = {}
    for code, name in enumerate(dataset.schema[attribute].values):
        items = np.flatnonzero(dataset.codes[:, position] == code)
        if len(items):
            chosen = items[np.linspace(0, len(items) - 1, min(MEAN_ITEMS, len(items))).round().astype(int)]
            out[name] = service.encode_items(chosen)[slot].mean(axis=0)
    return out


def nearest_known_font(service: Any, style: Composition) -> tuple[str, float]:
    """The dataset font whose mean code is nearest the style's font code, and that distance."""
    slot = font_slot(service)
    code = service.compose(style).latents[slot]
    codes = font_codes(service)
    if not codes:
        raise StudioError("the open dataset shows no font to compare with")
    name = min(codes, key=lambda n: float(np.linalg.norm(codes[n] - code)))
    return name, float(np.linalg.norm(codes[name] - code))


def known_font_source(service: Any, font: str) -> Source:
    """A dataset item in ``font``, to start a morph from."""
    dataset = _dataset(service)
    attribute = font_attribute(service)
    try:
        code = dataset.schema[attribute].index(font)
    except KeyError as e:
        raise StudioError(f"{dataset.spec}: {e.args[0]}") from None
    items = np.flatnonzero(dataset.codes[:, dataset.schema.position(attribute)] == code)
    if len(items) == 0:
        raise StudioError(f"no item of {dataset.spec} is in font {font}")
    return ItemSource(int(items[0]))


# --- measuring ------------------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (capped at 60 dB for identical ones)."""
    mse = float(np.mean((np.asarray(a, np.float64) / 255.0 - np.asarray(b, np.float64) / 255.0) ** 2))
    return 60.0 if mse <= 1e-6 else float(10.0 * np.log10(1.0 / mse))


@dataclass(frozen=True)
class CompletionCase:
    """One held-out font in one style, completed from ``given`` letters; PSNRs over the other letters."""

    font: str
    given: tuple[str, ...]
    style: dict[str, str]
    completed_psnr: float
    nearest_font: str
    nearest_render_psnr: float
    nearest_model_psnr: float
    completed: tuple[np.ndarray, ...]
    truth: tuple[np.ndarray, ...]
    letters: tuple[str, ...]


def measure_completion(service: Any, truth: Any, held_out: Sequence[str], given: int, styles: int = 4,
                       seed: int = 0) -> list[CompletionCase]:
    """For each held-out font of ``truth`` (a Fonts dataset holding the model's fonts and the held-out ones) and
    ``styles`` random size/colour pairs: render ``given`` random letters in it, complete the alphabet from them,
    and score the letters not given against their true renders (PSNR). Baselines: the known font whose renders
    of the given letters are nearest (MSE) to the given glyphs, as true renders ('nearest_render') and as drawn
    by the model from one of its items ('nearest_model')."""
    from studio.service.text_line import alphabet

    model = _model(service)
    dataset = _dataset(service)
    letters = alphabet(service)
    if not 1 <= given < len(letters):
        raise StudioError(f"give between 1 and {len(letters) - 1} letters, not {given}")
    schema = truth.schema
    needed = {"letter", "size", "font_color", "background_color", "font"}
    if not needed <= set(schema.names) or not needed <= set(dataset.schema.names):
        raise StudioError(f"measuring font completion needs Fonts datasets (attributes {', '.join(sorted(needed))})")
    known_fonts = [f for f in dataset.schema["font"].values if f in schema["font"].values]
    slot_letter = letter_slot(service)
    slot_font = font_slot(service)
    cases = []
    for font_number, font in enumerate(held_out):
        if font not in schema["font"].values:
            raise StudioError(f"{truth.spec} has no font {font!r}; its fonts: {', '.join(schema['font'].values)}")
        for style_number in range(styles):
            # seeded per font and style, so runs with another ``given`` see the same styles and nested letters
            rng = np.random.default_rng([seed, font_number, style_number])
            size = str(rng.choice(dataset.schema["size"].values))
            fc, bg = (str(v) for v in rng.choice(dataset.schema["font_color"].values, 2, replace=False))
            style_values = {"size": size, "font_color": fc, "background_color": bg}
            chosen = tuple(str(c) for c in rng.permutation(letters)[:given])
            rest = tuple(c for c in letters if c not in chosen)

            def render(letter: str, in_font: str, style_values: dict = style_values) -> np.ndarray:
                values = {"letter": letter, **style_values, "font": in_font}
                img = truth.render_values([schema[n].index(values[n]) for n in schema.names])
                if img.shape[0] != model.resolution:
                    raise StudioError(f"{truth.spec} renders {img.shape[0]} px; the model draws {model.resolution} px")
                return img

            glyphs = np.stack([render(c, font) for c in chosen])
            style = style_from_pixels(service, glyphs)
            like = _item_with(dataset, style_values)
            letter_sources = {c: ItemSource(letter_item(service, c, like)) for c in rest}
            futures = [service.compose_async(style.with_slot(slot_letter, SlotValue(a=letter_sources[c])))
                       for c in rest]
            completed = [f.result().image for f in futures]
            truths = [render(c, font) for c in rest]
            nearest = min(known_fonts, key=lambda g: float(np.mean(
                [(render(c, g).astype(np.float64) - glyphs[k]) ** 2 for k, c in enumerate(chosen)])))
            nearest_renders = [render(c, nearest) for c in rest]
            near_item = _item_with(dataset, {**style_values, "font": nearest})
            near_style = style.with_slot(slot_font, SlotValue(a=ItemSource(near_item)))
            near_futures = [service.compose_async(near_style.with_slot(slot_letter, SlotValue(a=letter_sources[c])))
                            for c in rest]
            near_model = [f.result().image for f in near_futures]
            cases.append(CompletionCase(
                font, chosen, style_values,
                float(np.mean([psnr(a, b) for a, b in zip(completed, truths)])), nearest,
                float(np.mean([psnr(a, b) for a, b in zip(nearest_renders, truths)])),
                float(np.mean([psnr(a, b) for a, b in zip(near_model, truths)])),
                tuple(completed), tuple(truths), rest))
    return cases


def _item_with(dataset: Any, values: dict[str, str]) -> int:
    """The first item showing every one of ``values`` (the closest match when none shows all)."""
    schema = dataset.schema
    match = np.zeros(len(dataset), np.int64)
    for name, value in values.items():
        match += dataset.codes[:, schema.position(name)] == schema[name].index(value)
    return int(np.argmax(match))


def _model(service: Any) -> Any:
    model = service.model
    if model is None:
        raise StudioError("no model is loaded; open a checkpoint first")
    return model


def _dataset(service: Any) -> Any:
    dataset = service.dataset
    if dataset is None:
        raise StudioError("no dataset is open; open the model's dataset (e.g. fonts:small) first")
    return dataset


__all__ = ["AlphabetSheet", "CompletionCase", "alphabet_sheet", "font_codes", "font_slot", "glyph_source",
           "known_font_source", "measure_completion", "morph_sheets", "nearest_known_font", "psnr", "sheet_grid",
           "style_from_files", "style_from_pixels", "style_with_glyphs"]
