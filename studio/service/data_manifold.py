"""Where a slot's training latents lie, so that slider paths stay on the data and strange inputs are noticed.

A straight line between two latents of a slot can leave the data: between a yellow and a blue background the
midpoint is a latent no training image ever had (its norm drops by half in the shipped Fonts model), and the
decoder turns it into colour noise. ``SlotManifold`` keeps a sample of the slot's training latents and their
typical nearest-neighbour spacing; ``follow`` pulls a point that strayed further from the data than its path's
ends toward the data (the mean of its nearest training latent's own neighbourhood, a latent the data really has
around it: the mean of the point's own nearest few can fall between two clusters again), and leaves points on
the data alone. ``distance``
measures how far any latent (a dropped photo's, say) is from the data, in units of that typical spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A training latent's neighbourhood that ``follow`` pulls toward: its nearest few, itself included, that lie within
#: ``NEIGHBOURHOOD_SPACINGS`` of it (a few, so the path does not hop from item to item; near, so their mean lies on
#: the data even around an isolated latent).
FOLLOW_NEIGHBOURS = 5
NEIGHBOURHOOD_SPACINGS = 2.0
#: ``follow`` starts pulling at this many typical spacings beyond the allowed distance, and pulls fully at twice
#: it: nearby points (an interpolation inside one cluster) keep their straight path.
PULL_START = 2.0
#: A latent this many typical spacings from every training latent is "far from the data" (see ``is_far``).
FAR_SPACINGS = 6.0


@dataclass(frozen=True, eq=False)
class SlotManifold:
    """A sample of one slot's flattened training latents ``(n, d)``, their median nearest-neighbour distance and,
    per latent, the mean of its neighbourhood (``centres``)."""

    slot: str
    latents: np.ndarray
    spacing: float
    centres: np.ndarray

    @classmethod
    def fit(cls, slot: str, latents: np.ndarray) -> SlotManifold:
        z = np.asarray(latents, np.float32).reshape(len(latents), -1)
        if len(z) < 2:
            return cls(slot, z, 1.0, z.copy())
        k = min(FOLLOW_NEIGHBOURS, len(z))
        dists = np.empty((len(z), max(2, k)), np.float32)
        neighbours = np.empty((len(z), max(2, k)), np.int64)
        for start in range(0, len(z), 512):  # 512 rows of distances at a time: memory stays small
            dists[start:start + 512], neighbours[start:start + 512] = _nearest(z, z[start:start + 512], k=max(2, k))
        spacing = float(np.median(dists[:, 1]))
        spacing = spacing if np.isfinite(spacing) and spacing > 1e-8 else 1.0
        near = dists[:, :k] <= NEIGHBOURHOOD_SPACINGS * spacing
        near[:, 0] = True  # the latent itself
        weights = near.astype(np.float32)
        centres = (weights[:, :, None] * z[neighbours[:, :k]]).sum(axis=1) / weights.sum(axis=1, keepdims=True)
        return cls(slot, z, spacing, centres.astype(np.float32))

    def distance(self, latents: np.ndarray) -> np.ndarray:
        """Distance of each latent ``(m, d)`` (or one ``(d,)``) to its nearest training latent, in spacings."""
        z = np.asarray(latents, np.float32).reshape(-1, self.latents.shape[1])
        d, _ = _nearest(self.latents, z, k=1)
        return (d[:, 0] / self.spacing).astype(np.float32)

    def is_far(self, latent: np.ndarray) -> bool:
        return bool(self.distance(latent)[0] > FAR_SPACINGS)

    def follow(self, latent: np.ndarray, allowed: float = 0.0) -> np.ndarray:
        """``latent`` pulled toward the data when it lies more than ``allowed`` spacings (the path's ends' own
        distance) plus ``PULL_START`` from it: fully onto its nearest training latent's neighbourhood mean at
        twice that distance, not at all below it."""
        z = np.asarray(latent, np.float32).reshape(1, -1)
        if len(self.latents) == 0:
            return z[0]
        d, idx = _nearest(self.latents, z, k=1)
        start = (max(0.0, float(allowed)) + PULL_START) * self.spacing
        pull = float(np.clip((d[0, 0] - start) / start, 0.0, 1.0))
        if pull == 0.0:
            return z[0]
        return ((1.0 - pull) * z[0] + pull * self.centres[idx[0, 0]]).astype(np.float32)


def _nearest(points: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force k nearest ``points`` of each query (distances ascending, indices): a few thousand points of a
    few hundred values each, so one matrix product beats building a tree."""
    p = np.asarray(points, np.float32)
    q = np.asarray(queries, np.float32)
    d2 = (q * q).sum(1)[:, None] - 2.0 * q @ p.T + (p * p).sum(1)[None, :]
    np.maximum(d2, 0.0, out=d2)
    k = min(k, p.shape[0])
    idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(d2, idx, axis=1)
    order = np.argsort(part, axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    return np.sqrt(np.take_along_axis(part, order, axis=1)), idx


#: An image whose reconstruction error exceeds this multiple of the training items' 95th percentile is one the
#: model cannot draw back.
FAR_ERROR_FACTOR = 2.0


@dataclass(frozen=True)
class Familiarity:
    """How well the model knows an encoded image: ``distances`` per slot in typical spacings (see
    ``SlotManifold.distance``), its reconstruction error and the training items' typical (95th percentile) one."""

    distances: dict[str, float]
    reconstruction_error: float
    typical_error: float

    @property
    def far_slots(self) -> list[str]:
        return [slot for slot, d in self.distances.items() if d > FAR_SPACINGS]

    @property
    def badly_reconstructed(self) -> bool:
        return self.reconstruction_error > FAR_ERROR_FACTOR * self.typical_error

    @property
    def far(self) -> bool:
        return self.badly_reconstructed or bool(self.far_slots)

    def summary(self, name: str = "the image") -> str:
        """One line for a status bar: empty when the image looks like the training data."""
        if not self.far:
            return ""
        reasons = []
        if self.badly_reconstructed:
            ratio = self.reconstruction_error / max(self.typical_error, 1e-9)
            reasons.append(f"the model redraws it with {ratio:.1f}× the error of a typical training image")
        if self.far_slots:
            reasons.append("its " + ", ".join(s.replace("_", " ") for s in self.far_slots) +
                           " code lies far from every training image's")
        return (f"⚠ {name} is unlike the training data ({'; '.join(reasons)}): its slots may not mean what they "
                "say. Try an image like the dataset's.")
