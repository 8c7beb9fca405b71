"""The open dataset as front ends read it: pictures and labels of items, as numpy and plain data.

The GUI's browser, composer and latent plot (some from pool threads) read items through this view, never the
dataset object itself, so what they may do with it is this short list, every read is thread-safe (the dataset
renders through a locked cache) and a view stays bound to the dataset it was made for even after the user opens
another one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.data.dataset import AttributedDataset
from studio.data.schema import AttributeSchema
from studio.errors import StudioError


class DatasetItems:
    """Read-only access to one open dataset's items (``ModelService.items``)."""

    def __init__(self, dataset: AttributedDataset) -> None:
        self._dataset = dataset
        codes = dataset.codes.view()
        codes.flags.writeable = False
        self._codes = codes

    def views(self, dataset: AttributedDataset | None) -> bool:
        """Whether this view reads ``dataset`` (the service makes a new view when another one is opened)."""
        return dataset is self._dataset

    def __len__(self) -> int:
        return len(self._dataset)

    @property
    def spec(self) -> str:
        return self._dataset.spec

    @property
    def fingerprint(self) -> str:
        return self._dataset.fingerprint

    @property
    def schema(self) -> AttributeSchema:
        return self._dataset.schema

    @property
    def resolution(self) -> int:
        return self._dataset.resolution

    @property
    def codes(self) -> np.ndarray:
        """``(n, attributes)`` value codes, read-only."""
        return self._codes

    def image(self, index: int) -> np.ndarray:
        """Item ``index`` as uint8 ``(H, W, 3)``."""
        self._check(index)
        return self._dataset.image(int(index))

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Items as uint8 ``(n, H, W, 3)``."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        for i in indices[(indices < 0) | (indices >= len(self))][:1]:
            self._check(int(i))
        return self._dataset.images(indices)

    def values(self, index: int) -> dict[str, str]:
        """Item ``index``'s attribute values by attribute name."""
        self._check(index)
        return self._dataset.values(int(index))

    def _check(self, index: int) -> None:
        if not 0 <= int(index) < len(self._dataset):
            raise StudioError(f"item {int(index)} is not in the open dataset {self.spec} "
                              f"(items 0..{len(self._dataset) - 1})")
