"""Typed text: a word or line drawn glyph by glyph with a Fonts-like model, every glyph sharing the style slots.

Each character takes the model's letter slot, either from a dataset item showing that letter (the item most alike
the composition's own in its other attributes) or from the mean letter code of such items; every other slot keeps
the composition's sources. The decoded glyphs are set side by side by their ink width (each glyph's ink is told
from its own background), so the line reads as type rather than as a row of tiles.

Plain Python and torch-free (the GUI imports it): all model work goes through the service's compose and encode
calls, and live requests are coalesced (latest wins) on a small orchestration thread of this module's own, so the
torch work itself stays on the service's inference worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.errors import StudioError
from studio.service.composition import Composition, ItemSource, LatentSource, MixtureSource, SlotValue, Source
from studio.service.inference import Coalescer, InferenceWorker

LETTER_SOURCES = ("item", "mean")
#: Items encoded per letter for its mean code (evenly spread over the letter's items).
MEAN_ITEMS = 32
#: Width of a space, of a missing character's gap and of a blank glyph, as a fraction of the glyph height.
SPACE_WIDTH = 0.35
#: Ink is a pixel this far (RGB distance, 0..441) from its glyph's background, or a quarter of the glyph's range.
MIN_INK_DISTANCE = 40.0


def letter_attribute(service: Any) -> str:
    """The attribute a typed character picks: 'letter' (the Fonts datasets), else the only one named like it."""
    model = _model(service)
    names = model.schema.names
    for name in ("letter", "character", "char", "glyph"):
        if name in names and service.slot_for_attribute(name) is not None:
            return name
    raise StudioError(f"this {model.method} model has no letter slot (its attributes: {', '.join(names) or 'none'}); "
                      "typing text needs a model trained on letters, e.g. the shipped fonts-gzs")


def letter_slot(service: Any) -> str:
    slot = service.slot_for_attribute(letter_attribute(service))
    assert slot is not None
    return slot


def alphabet(service: Any) -> tuple[str, ...]:
    """The characters the model can draw (the letter attribute's values that are single characters)."""
    values = _model(service).schema[letter_attribute(service)].values
    return tuple(v for v in values if len(v) == 1)


@dataclass(frozen=True)
class Glyph:
    """One character of a line: the letter value drawn (None for a space or a character the model lacks)."""

    char: str
    value: str | None
    composition: Composition | None


@dataclass(frozen=True)
class LinePlan:
    """What a line will be made of; ``missing`` lists characters the model's alphabet lacks (left as gaps)."""

    text: str
    glyphs: tuple[Glyph, ...]
    missing: tuple[str, ...]
    notes: tuple[str, ...]
    alphabet: tuple[str, ...]

    @property
    def drawn(self) -> list[Glyph]:
        return [g for g in self.glyphs if g.composition is not None]

    def message(self) -> str:
        """One line for a status bar or the CLI: what could not be drawn, and what can."""
        parts = list(self.notes)
        if self.missing:
            shown = " ".join(repr(c) for c in self.missing)
            parts.append(f"the model cannot draw {shown}: its alphabet is {''.join(self.alphabet)}; "
                         "they are left as gaps")
        return "; ".join(parts)


@dataclass(frozen=True)
class TextLineResult:
    """The set line (uint8 ``(H, W, 3)``), every drawn glyph as decoded, and where each character sits."""

    image: np.ndarray
    plan: LinePlan
    glyph_images: tuple[np.ndarray, ...]
    spans: tuple[tuple[int, int], ...]  # per character of ``plan.glyphs``: columns [x0, x1) in ``image``
    seconds: float = 0.0
    request_id: int = 0


@dataclass
class _MeanCodes:
    key: tuple[Any, ...] = ()
    codes: dict[str, np.ndarray] = field(default_factory=dict)


class TextLineComposer:
    """Plans, composes and sets lines of text with the service's loaded model; ``request`` coalesces live edits."""

    def __init__(self, service: Any, letter_source: str = "item", tracking: float = 0.06) -> None:
        self.service = service
        self.letter_source = letter_source
        self.tracking = tracking
        self._means = _MeanCodes()
        self._lock = threading.Lock()
        self._worker: InferenceWorker | None = None
        self._coalescer: Coalescer | None = None

    # --- planning ---------------------------------------------------------------------------------
    def plan(self, text: str, style: Composition, letter_source: str | None = None) -> LinePlan:
        """Per character: the composition that draws it (``style`` with the letter slot replaced). Spaces and
        characters outside the model's alphabet get no composition; a letter known only in the other case is
        drawn in that case, with a note."""
        source_kind = letter_source or self.letter_source
        if source_kind not in LETTER_SOURCES:
            raise StudioError(f"letter source {source_kind!r} is not one of {', '.join(LETTER_SOURCES)}")
        text = text.replace("\t", " ")
        if "\n" in text or "\r" in text:
            raise StudioError("the text must be one line; type each line separately")
        if not text.strip():
            raise StudioError("type some text first (the line is empty)")
        letters = alphabet(self.service)
        known = set(letters)
        slot = letter_slot(self.service)
        glyphs: list[Glyph] = []
        missing: list[str] = []
        swapped: list[str] = []
        sources: dict[str, Source] = {}
        for ch in text:
            if ch == " ":
                glyphs.append(Glyph(ch, None, None))
                continue
            value = ch if ch in known else (ch.swapcase() if ch.swapcase() in known else None)
            if value is None:
                if ch not in missing:
                    missing.append(ch)
                glyphs.append(Glyph(ch, None, None))
                continue
            if value != ch and ch not in swapped:
                swapped.append(ch)
            if value not in sources:
                sources[value] = self.letter_source_for(value, style, source_kind)
            glyphs.append(Glyph(ch, value, style.with_slot(slot, SlotValue(a=sources[value]))))
        notes = []
        if swapped:
            case = "capitals" if all(c.islower() for c in swapped) else "small letters"
            notes.append(f"{', '.join(swapped)} drawn as {', '.join(c.swapcase() for c in swapped)} (the model "
                         f"knows only the {case})")
        return LinePlan(text, tuple(glyphs), tuple(missing), tuple(notes), letters)

    def letter_source_for(self, value: str, style: Composition, kind: str = "item") -> Source:
        """Where the letter slot of ``value`` comes from: a dataset item (``item``) or the mean code (``mean``)."""
        if kind == "mean":
            code = self.mean_codes([value])[value]
            spec = _model(self.service).slot(letter_slot(self.service))
            return LatentSource(tuple(float(v) for v in code), tuple(spec.shape))
        return ItemSource(letter_item(self.service, value, _reference_item(style, letter_slot(self.service))))

    def mean_codes(self, values: Sequence[str]) -> dict[str, np.ndarray]:
        """The mean letter-slot code of up to ``MEAN_ITEMS`` items of each letter (encoded through the cached
        service path; remembered per model and dataset)."""
        model, dataset = _model(self.service), _dataset(self.service)
        key = (model.fingerprint, getattr(dataset, "fingerprint", ""))
        with self._lock:
            if self._means.key != key:
                self._means = _MeanCodes(key)
            want = [v for v in values if v not in self._means.codes]
        codes: dict[str, np.ndarray] = {}
        if want:
            attribute = letter_attribute(self.service)
            position = dataset.schema.position(attribute)
            slot = letter_slot(self.service)
            for value in want:
                try:
                    code = dataset.schema[attribute].index(value)
                except KeyError as e:
                    raise StudioError(f"{dataset.spec}: {e.args[0]}") from None
                items = np.flatnonzero(dataset.codes[:, position] == code)
                if len(items) == 0:
                    raise StudioError(f"no item of {dataset.spec} shows {attribute}={value}, so it has no mean code")
                chosen = items[np.linspace(0, len(items) - 1, min(MEAN_ITEMS, len(items))).round().astype(int)]
                codes[value] = self.service.encode_items(chosen)[slot].mean(axis=0).astype(np.float32)
        with self._lock:
            if self._means.key == key:
                self._means.codes.update(codes)
            known = {**self._means.codes, **codes}
        return {v: known[v] for v in values}

    # --- composing --------------------------------------------------------------------------------
    def render(self, text: str, style: Composition, letter_source: str | None = None,
               tracking: float | None = None) -> TextLineResult:
        """Blocking: plan, compose every distinct glyph through the service (one batch on its worker), set the
        line. Safe from any thread but the service's worker."""
        start = time.perf_counter()
        plan = self.plan(text, style, letter_source)
        images = self.compose_glyphs(plan)
        image, spans = set_line(images, self.tracking if tracking is None else tracking,
                                space=round(SPACE_WIDTH * _model(self.service).resolution))
        drawn = tuple(i for i in images if i is not None)
        return TextLineResult(image, plan, drawn, spans, time.perf_counter() - start)

    def compose_glyphs(self, plan: LinePlan) -> list[np.ndarray | None]:
        """One image per character (None for gaps): every distinct letter composed once, all of them in one
        batched decoder call (``ModelService.compose_batch``), not one worker job per glyph."""
        distinct: dict[str, Composition] = {}
        for g in plan.drawn:
            if g.value is not None and g.composition is not None:
                distinct.setdefault(g.value, g.composition)
        results = self.service.compose_batch(list(distinct.values()))
        images = {v: r.image for v, r in zip(distinct, results, strict=True)}
        return [images[g.value] if g.composition is not None and g.value is not None else None for g in plan.glyphs]

    def request(self, text: str, style: Composition, callback: Callable[[TextLineResult], None],
                on_error: Callable[[BaseException], None], letter_source: str | None = None,
                tracking: float | None = None, channel: str = "text-line") -> int:
        """Latest wins: while one line is being composed, a newer request replaces any queued one. ``callback``
        and ``on_error`` run on this composer's thread (the GUI hops to its own)."""

        def work(request_id: int) -> TextLineResult:
            result = self.render(text, style, letter_source, tracking)
            return TextLineResult(result.image, result.plan, result.glyph_images, result.spans, result.seconds,
                                  request_id)

        return self.latest(channel, work, callback, on_error)

    def latest(self, channel: str, work: Callable[[int], Any], callback: Callable[[Any], None],
               on_error: Callable[[BaseException], None]) -> int:
        """Any work that composes through the service (an alphabet sheet, encoding glyphs), latest wins per
        channel on this composer's thread; ``work`` gets the request id."""
        with self._lock:
            if self._coalescer is None:
                self._worker = InferenceWorker("studio-text-line")
                self._coalescer = Coalescer(self._worker)
            coalescer = self._coalescer
        return coalescer.request(channel, work, callback, on_error)

    def shutdown(self) -> None:
        with self._lock:
            worker, self._worker, self._coalescer = self._worker, None, None
        if worker is not None:
            worker.shutdown(wait=True)


# --- choosing letter items --------------------------------------------------------------------------
def letter_item(service: Any, value: str, like: int | None = None) -> int:
    """A dataset item showing ``value``: the one sharing the most other attribute values with item ``like``
    (lowest index among equals), so that an entangled letter slot brings as little foreign style as possible."""
    dataset = _dataset(service)
    attribute = letter_attribute(service)
    position = dataset.schema.position(attribute)
    try:
        code = dataset.schema[attribute].index(value)
    except KeyError as e:
        raise StudioError(f"{dataset.spec}: {e.args[0]}") from None
    items = np.flatnonzero(dataset.codes[:, position] == code)
    if len(items) == 0:
        raise StudioError(f"no item of {dataset.spec} shows {attribute}={value}; open the model's own dataset")
    if like is None or not 0 <= like < len(dataset):
        return int(items[0])
    others = [j for j in range(dataset.codes.shape[1]) if j != position]
    same = (dataset.codes[np.ix_(items, others)] == dataset.codes[like, others]).sum(axis=1)
    return int(items[int(np.argmax(same))])


def _reference_item(style: Composition, letter: str) -> int | None:
    """The item whose other attributes a letter item should share: the base's, else the letter slot's own."""
    for src in (style.base, style.slot(letter).a):
        while isinstance(src, MixtureSource) and src.parts:
            src = max(src.parts, key=lambda p: p[1])[0]
        if isinstance(src, ItemSource):
            return int(src.index)
    return None


# --- setting the line -------------------------------------------------------------------------------
def glyph_background(image: np.ndarray) -> np.ndarray:
    """A glyph's background colour: the median of its border pixels (glyphs are centred, borders are paper)."""
    img = np.asarray(image, np.float32)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return np.median(border, axis=0)


def ink_alpha(image: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """Per pixel, how much it is ink (0..1): its RGB distance from the background, relative to the threshold."""
    img = np.asarray(image, np.float32)
    bg = glyph_background(img) if background is None else np.asarray(background, np.float32)
    dist = np.linalg.norm(img - bg, axis=-1)
    threshold = max(MIN_INK_DISTANCE, 0.25 * float(np.percentile(dist, 99.5)))
    return np.clip(dist / threshold, 0.0, 1.0)


def ink_extent(image: np.ndarray) -> tuple[int, int] | None:
    """Columns ``[x0, x1)`` holding the glyph's ink (a column counts once a pixel is fully ink), or None when
    the image is blank (no pixel stands out from the background)."""
    alpha = ink_alpha(image)
    columns = np.flatnonzero((alpha >= 1.0).any(axis=0))
    if len(columns) == 0:
        return None
    return int(columns[0]), int(columns[-1]) + 1


def set_line(glyphs: Sequence[np.ndarray | None], tracking: float = 0.06, space: int | None = None
             ) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """Set glyph images side by side by their ink extents, ``tracking`` x height apart, on the glyphs' mean
    background; None entries are spaces of ``space`` px. Each glyph is laid on with its ink as alpha, so
    neighbouring backgrounds never show seams. Returns the line and each entry's columns."""
    drawn = [np.asarray(g) for g in glyphs if g is not None]
    if not drawn:
        raise StudioError("nothing to draw: the line holds no character the model knows")
    height = drawn[0].shape[0]
    if any(g.shape != drawn[0].shape for g in drawn):
        raise StudioError("glyph images of one line must share one size")
    space = round(SPACE_WIDTH * height) if space is None else int(space)
    gap = max(0, round(float(tracking) * height))
    background = np.mean([glyph_background(g) for g in drawn], axis=0)
    pieces: list[tuple[np.ndarray | None, np.ndarray | None, int]] = []  # (crop, alpha, width)
    for g in glyphs:
        if g is None:
            pieces.append((None, None, space))
            continue
        extent = ink_extent(g)
        if extent is None:
            pieces.append((None, None, space))
            continue
        x0, x1 = extent
        img = np.asarray(g, np.float32)
        alpha = ink_alpha(img)
        pieces.append((img[:, x0:x1], alpha[:, x0:x1], x1 - x0))
    width = gap + sum(w + gap for _, _, w in pieces)
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = background
    spans = []
    x = gap
    for crop, alpha, w in pieces:
        if crop is not None and alpha is not None:
            a = alpha[..., None]
            canvas[:, x:x + w] = a * crop + (1.0 - a) * canvas[:, x:x + w]
        spans.append((x, x + w))
        x += w + gap
    return np.clip(canvas.round(), 0, 255).astype(np.uint8), tuple(spans)


def save_image(path: str | Path, frames: np.ndarray | Sequence[np.ndarray], scale: int = 1,
               frame_ms: int = 120) -> Path:
    """One image (PNG, or any type Pillow knows by the suffix) or, for several, an animation, enlarged ``scale``
    times with crisp pixels, written atomically by ``studio.service.exports``."""
    from studio.service.exports import enlarged, save_image_atomically

    pictures = [frames] if isinstance(frames, np.ndarray) else list(frames)
    if not pictures:
        raise StudioError("nothing to save: no image")
    images = [enlarged(np.asarray(p), scale) for p in pictures]
    if len(images) == 1:
        return save_image_atomically(path, images[0])
    return save_image_atomically(path, images[0], save_all=True, append_images=images[1:], duration=int(frame_ms),
                                 loop=0)


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


__all__ = ["Glyph", "LinePlan", "TextLineComposer", "TextLineResult", "alphabet", "glyph_background", "ink_alpha",
           "ink_extent", "letter_attribute", "letter_item", "letter_slot", "save_image", "set_line"]
