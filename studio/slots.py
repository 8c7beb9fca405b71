"""What a slot is, in plain Python: the methods declare their slots with it and the UI draws one card per slot.

It lives outside ``studio.methods`` so that the GUI can name a slot without importing torch (the methods'
modules import it at once); ``studio.methods.base`` re-exports it for the methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SlotSpec:
    """One named part of the latent; ``shape`` excludes the batch axis ((d,) for vectors, (c, h, w) spatial)."""

    name: str
    shape: tuple[int, ...]
    attribute: str | None = None
    label: str = ""

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def spatial(self) -> bool:
        return len(self.shape) == 3

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "attribute": self.attribute, "label": self.label}
