"""What the composer knows about a source without composing: the files and dataset items it uses, and the
thumbnail, caption and tooltip its slot card shows.

Cards refresh on every slider step, so the descriptions are cached; the cache belongs to one model and dataset and
is cleared when either changes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.data.image_files import ImageFileError, open_image
from studio.service.composition import Composition, FileSource, ItemSource, LatentSource, MixtureSource, Source

THUMB_SIDE = 72
DESCRIPTIONS_KEPT = 512

#: (thumbnail or None, caption, tooltip)
Description = tuple[np.ndarray | None, str, str]


def _plain_sources(source: Source | None) -> list[Source]:
    """The sources a source is made of: itself, or a mixture's parts (their parts too), in order."""
    if isinstance(source, MixtureSource):
        return [plain for s, _ in source.parts for plain in _plain_sources(s)]
    return [] if source is None else [source]


def source_files(source: Source | None) -> list[str]:
    """The image files a source reads (a mixture's parts included)."""
    return [s.path for s in _plain_sources(source) if isinstance(s, FileSource)]


def source_items(source: Source | None) -> list[int]:
    """The dataset items a source uses (a mixture's parts included)."""
    return [s.index for s in _plain_sources(source) if isinstance(s, ItemSource)]


def has_any_source(composition: Composition) -> bool:
    """Whether there is anything to compose: a base, or a slot with a source A."""
    return composition.base is not None or any(v.a is not None for v in composition.slots.values())


class SourceDescriptions:
    """Thumbnail, caption and tooltip per source, cached; ``items`` returns the open dataset (or None)."""

    def __init__(self, items: Callable[[], Any]) -> None:
        self._items = items
        self._cache: OrderedDict[Source, Description] = OrderedDict()

    def clear(self) -> None:
        self._cache.clear()

    def describe(self, source: Source) -> Description:
        """Thumbnail, caption and tooltip of a source (cached: cards refresh on every slider step)."""
        hit = self._cache.get(source)
        if hit is not None:
            return hit
        described = self._describe_uncached(source)
        self._cache[source] = described
        while len(self._cache) > DESCRIPTIONS_KEPT:
            self._cache.popitem(last=False)
        return described

    def _describe_uncached(self, source: Source) -> Description:
        dataset = self._items()
        if isinstance(source, ItemSource):
            if dataset is None or not 0 <= source.index < len(dataset):
                return None, f"item {source.index}?", "this item is not in the open dataset"
            values = dataset.values(source.index)
            tip = f"item {source.index}\n" + "\n".join(f"{k}: {v}" for k, v in values.items())
            return dataset.image(source.index), f"item {source.index}", tip
        if isinstance(source, FileSource):
            name = Path(source.path).name
            caption = name if len(name) <= 14 else name[:11] + "…"
            try:
                with open_image(source.path) as im:
                    thumb = im.convert("RGB")
                    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.NEAREST)
                    return np.asarray(thumb), caption, source.path
            except ImageFileError as e:
                state = "missing" if e.reason == "no such file" else "unreadable"
                return None, f"{caption} ({state})", f"{source.path}\n{e.reason}"
        if isinstance(source, LatentSource):
            return None, "stored latent", "a latent value stored in the project"
        if isinstance(source, MixtureSource) and source.parts:
            image, _, _ = self.describe(source.parts[0][0])
            return image, f"mix of {len(source.parts)}", "a weighted mixture of several sources"
        return None, "", ""
