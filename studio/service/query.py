"""Query mode: wanted attribute values -> a composition filled from a cover set of *training* items (paper 000,
eq. 1), plus the dataset item that shows exactly those values, if there is one (to show beside the synthesis)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from studio.data.dataset import AttributedDataset
from studio.data.multigraph import cover
from studio.errors import StudioError
from studio.service.composition import Composition, ItemSource, SlotValue


@dataclass(frozen=True)
class QueryResult:
    """``cover`` maps each wanted attribute to the training item that supplies it; ``exact_index`` is an item
    (any split) with exactly the wanted values, or None when the synthesis shows something the data never did."""

    composition: Composition
    exact_index: int | None
    cover: dict[str, int]
    values: dict[str, str]
    exact_in_training: bool = False


def parse_values(text: str) -> dict[str, str]:
    """``letter=A,font_color=red`` -> {"letter": "A", "font_color": "red"}."""
    values: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise StudioError(f"query part {part!r} is not ATTRIBUTE=VALUE (e.g. letter=A,font_color=red)")
        values[name.strip()] = value.strip()
    if not values:
        raise StudioError("empty query; give ATTRIBUTE=VALUE pairs, e.g. letter=A,font_color=red")
    return values


def encode_query(dataset: AttributedDataset, values: dict[str, str]) -> dict[int, int]:
    """Attribute names and value names -> {attribute position: code}, with errors that list the choices."""
    try:
        return dataset.schema.encode_values(values)
    except KeyError as e:
        raise StudioError(f"query on {dataset.spec}: {e.args[0]}") from None


def cover_query(dataset: AttributedDataset, train_items: np.ndarray, values: dict[str, str],
                slot_for_attribute: Callable[[str], str | None], seed: int | None = None) -> QueryResult:
    """Fill each wanted attribute's slot with a training item that has the wanted value; slots of no wanted
    attribute (a content or residual slot) take the first cover item as the composition's base."""
    wanted = encode_query(dataset, values)
    positions = sorted(wanted)
    names = [dataset.schema[j].name for j in positions]
    rng = np.random.default_rng(seed) if seed is not None else None
    try:
        chosen = cover(dataset.codes[:, positions], train_items, [wanted[j] for j in positions], rng)
    except StudioError:
        missing = [f"{names[k]}={values[names[k]]}" for k, j in enumerate(positions)
                   if not (dataset.codes[train_items, j] == wanted[j]).any()]
        raise StudioError(f"no training item of {dataset.spec} shows {', '.join(missing)}, so the query cannot be "
                          "covered; choose another value") from None
    cover_items = {names[k]: int(item) for k, item in sorted(chosen.items())}
    slots: dict[str, SlotValue] = {}
    for attribute, item in cover_items.items():
        slot = slot_for_attribute(attribute)
        if slot is not None:
            slots[slot] = SlotValue(a=ItemSource(item))
    base = ItemSource(cover_items[names[0]])
    exact = _exact_item(dataset, wanted)
    in_train = exact is not None and bool(np.isin(exact, train_items))
    return QueryResult(Composition(slots, base), exact, cover_items, dict(values), in_train)


def _exact_item(dataset: AttributedDataset, wanted: dict[int, int]) -> int | None:
    if len(wanted) == len(dataset.schema):
        return dataset.index_of([wanted[j] for j in range(len(dataset.schema))])
    mask = np.ones(len(dataset), dtype=bool)
    for j, code in wanted.items():
        mask &= dataset.codes[:, j] == code
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None
