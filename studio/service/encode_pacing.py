"""How many items one background encode job takes: as many as encode in a set time at the speed last measured.

A 64-px Fonts model renders and encodes about 2 ms an item on one core, so the fixed 512-item jobs of a long
encode (the latent plot's 20,000 points) held the worker for a second each, and a slider's compose queued behind
them. Jobs sized by time keep that wait short whatever the model, the resolution or the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

Encoder = Callable[[np.ndarray], dict[str, np.ndarray]]


class EncodePacer:
    """Measures seconds per encoded item and sizes the next job to a time budget."""

    first_job = 32  # items of the first job, before any speed is known
    least = 8  # a job of fewer items is mostly call overhead

    def __init__(self) -> None:
        self.seconds_per_item = 0.0  # 0: not measured yet

    def reset(self) -> None:
        """Another model or dataset: measure again."""
        self.seconds_per_item = 0.0

    def job_size(self, most: int, seconds: float | None) -> int:
        """Items for the next job: at most ``most``; what encodes in ``seconds`` (None: always ``most``)."""
        if seconds is None:
            return most
        if self.seconds_per_item <= 0:
            return min(most, self.first_job)
        return int(min(most, max(self.least, seconds / self.seconds_per_item)))

    def timed(self, encode: Encoder) -> Encoder:
        """``encode``, noting the seconds per item it takes (rendering the items included)."""
        def run(missing: np.ndarray) -> dict[str, np.ndarray]:
            begun = time.perf_counter()
            out = encode(missing)
            if len(missing) >= self.least:
                self.seconds_per_item = (time.perf_counter() - begun) / len(missing)
            return out
        return run
