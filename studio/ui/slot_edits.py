"""What a slot card's gestures do to a ``SlotValue``, as pure functions, so they are testable without a window:
drops (what a drop carries, where its sources go), swap, clear, mixture weights and the direction step.

The card (``studio.ui.slot_widget``) calls these and reports the result; it never edits a composition itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from PySide6.QtCore import QMimeData

from studio.service.composition import (
    DirectionStep,
    MixtureSource,
    SlotValue,
    Source,
)
from studio.ui.mime import decode_items, image_files


def drop_payload(mime: QMimeData, fingerprint: str) -> tuple[list[int], list[str]] | None:
    """Dataset items and image files a drop carries, or None if it carries nothing a slot can take.

    Items of another dataset (a different fingerprint) are refused: their indices would mean other images here.
    """
    items = decode_items(mime)
    if items is not None:
        indices, source_fp = items
        if source_fp and fingerprint and source_fp != fingerprint:
            return None
        return (indices, []) if indices else None
    files = image_files(mime)
    return ([], files) if files else None


def mixture_parts(value: SlotValue) -> list[tuple[Source, float]]:
    """Source A as a list of weighted parts (a plain source is one part of weight 1)."""
    if isinstance(value.a, MixtureSource):
        return list(value.a.parts)
    return [] if value.a is None else [(value.a, 1.0)]


def with_parts(value: SlotValue, parts: Sequence[tuple[Source, float]]) -> SlotValue:
    """Source A from weighted parts: none -> empty, one -> the plain source, several -> a mixture."""
    if not parts:
        return replace(value, a=None)
    if len(parts) == 1:
        return replace(value, a=parts[0][0])
    return replace(value, a=MixtureSource(tuple((s, float(w)) for s, w in parts)))


def put_sources(value: SlotValue, target: str, sources: Sequence[Source], base: Source | None = None) -> SlotValue:
    """What a drop does: onto A several sources fill A and B (a pair to interpolate); onto B the first becomes B;
    onto "mix" they join A as mixture parts with weight 1 (an empty A joins as the ``base`` it shows)."""
    if not sources:
        return value
    if target == "mix":
        parts = mixture_parts(value) or ([(base, 1.0)] if base is not None else [])
        return with_parts(value, [*parts, *((s, 1.0) for s in sources)])
    if target == "b":
        return replace(value, b=sources[0])
    if len(sources) >= 2:
        return replace(value, a=sources[0], b=sources[1])
    return replace(value, a=sources[0])


def swap_sources(value: SlotValue) -> SlotValue:
    return replace(value, a=value.b, b=value.a)


def clear_slot(value: SlotValue) -> SlotValue:
    """Forget the sources, the position and the steps; the lock stays (it is about the slot, not its content)."""
    return SlotValue(locked=value.locked)


def set_weight(value: SlotValue, part: int, weight: float) -> SlotValue:
    parts = mixture_parts(value)
    parts[part] = (parts[part][0], max(0.0, float(weight)))
    return with_parts(value, parts)


def remove_part(value: SlotValue, part: int) -> SlotValue:
    parts = mixture_parts(value)
    del parts[part]
    return with_parts(value, parts)


def set_step(value: SlotValue, step: DirectionStep | None) -> SlotValue:
    """The composer offers one direction step per slot; a zero amount removes it."""
    if step is None or step.amount == 0:
        return replace(value, steps=())
    return replace(value, steps=(step,))
