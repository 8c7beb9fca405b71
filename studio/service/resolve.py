"""A composition resolved into one latent per slot: sources looked up (items, files, stored latents, mixtures),
the lerp toward a second source kept on the data, then steps along attribute directions.

Apart from ``model_service`` so that what a composition means is in one place; the service hands in how to
encode items and files and where its manifolds and directions come from, all on its inference worker.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from studio.errors import StudioError
from studio.service.composition import Composition, FileSource, ItemSource, LatentSource, MixtureSource, Source
from studio.service.data_manifold import SlotManifold
from studio.service.directions import SlotDirections
from studio.service.state import ServiceState
from studio.slots import SlotSpec

Latents = dict[str, np.ndarray]


def latents_for(state: ServiceState, composition: Composition, *, encode_dataset: Callable[[np.ndarray], Latents],
                file_latents: Callable[[str], Latents], manifold: Callable[[str], SlotManifold],
                directions: Callable[[str, str], SlotDirections], follow_data: bool) -> Latents:
    """Resolve every slot: source a (else the base, else item 0), the lerp toward b, then direction steps.

    ``encode_dataset`` encodes the dataset items the cache misses, ``file_latents`` an image file; ``manifold``
    and ``directions`` give a slot's data sample and an attribute's directions in it; ``follow_data``: the lerp
    is pulled onto the data (else the straight line)."""
    _, info = state.need_model()
    default = _default_source(state, composition)
    items = composition_items(state, composition)
    encoded: Latents = {}
    row: dict[int, int] = {}
    if items:
        if state.dataset is None:
            raise StudioError("the composition uses dataset items, but no dataset is open")
        order = np.array(sorted(items), dtype=np.int64)
        check_items(order, len(state.dataset))
        encoded = state.need_cache().fetch(order, encode_dataset)
        row = {int(i): k for k, i in enumerate(order)}
    out: Latents = {}
    for s in info.slots:
        v = composition.slot(s.name)
        a = v.a or default
        if a is None:
            raise StudioError(f"slot {s.name} has no source and there is no dataset to take item 0 from")
        z = _resolve(a, s, encoded, row, file_latents)
        if v.b is not None:
            t = float(v.t)
            zb = _resolve(v.b, s, encoded, row, file_latents)
            line = (1.0 - t) * z + t * zb
            if follow_data and 0.0 < t < 1.0 and state.dataset is not None:
                near = manifold(s.name)
                ends = near.distance(np.stack([z, zb]))
                line = near.follow(line, float((1.0 - t) * ends[0] + t * ends[1]))
            z = line
        for step in v.steps:
            z = directions(s.name, step.attribute).step(z, step.value, step.amount, step.combine)
        out[s.name] = np.asarray(z, np.float32)
    return out


def _resolve(src: Source, spec: SlotSpec, encoded: Latents, row: dict[int, int],
             file_latents: Callable[[str], Latents]) -> np.ndarray:
    if isinstance(src, ItemSource):
        return encoded[spec.name][row[int(src.index)]]
    if isinstance(src, FileSource):
        return file_latents(src.path)[spec.name]
    if isinstance(src, LatentSource):
        z = np.asarray(src.values, np.float32).reshape(-1)
        if z.size != spec.size:
            raise StudioError(f"slot {spec.name}: the stored latent has {z.size} values, but this model's slot "
                              f"holds {spec.size}; it was made with another model")
        return z
    if isinstance(src, MixtureSource):
        if not src.parts:
            raise StudioError(f"slot {spec.name}: a mixture with no parts")
        weights = np.array([w for _, w in src.parts], np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise StudioError(f"slot {spec.name}: mixture weights must be non-negative with a positive sum, "
                              f"got {weights.tolist()}")
        weights /= weights.sum()
        parts = [_resolve(part, spec, encoded, row, file_latents) for part, _ in src.parts]
        return np.tensordot(weights, np.stack(parts), axes=1).astype(np.float32)
    raise StudioError(f"slot {spec.name}: unknown source {src!r}")


def _default_source(state: ServiceState, composition: Composition) -> Source | None:
    """What a slot without a source takes: the base, else item 0 of the open dataset."""
    if composition.base is None and state.dataset is not None:
        return ItemSource(0)
    return composition.base


def composition_items(state: ServiceState, composition: Composition) -> set[int]:
    """The dataset items a composition reads (every slot's sources, the default included)."""
    _, info = state.need_model()
    default = _default_source(state, composition)
    items: set[int] = set()
    for s in info.slots:
        v = composition.slot(s.name)
        for src in (v.a or default, v.b):
            items.update(item_indices(src))
    return items


def item_indices(src: Source | None) -> list[int]:
    if isinstance(src, ItemSource):
        return [int(src.index)]
    if isinstance(src, MixtureSource):
        return [i for part, _ in src.parts for i in item_indices(part)]
    return []


def check_items(indices: np.ndarray, size: int) -> None:
    bad = indices[(indices < 0) | (indices >= size)]
    if len(bad):
        raise StudioError(f"item {int(bad[0])} is not in the open dataset (items 0..{size - 1})")
