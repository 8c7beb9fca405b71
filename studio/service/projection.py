"""2-D projections of one slot's latents for the latent plot: PCA fitted once and reused, so points never jump
when more items are encoded or the composition moves. ``PcaStore`` keeps the fits in memory and on disk beside
the latent cache, so a slot's plot keeps its axes from one start to the next."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Projection:
    """Where the plotted items sit. ``pooled``: a spatial slot was averaged over space before the PCA."""

    indices: np.ndarray
    xy: np.ndarray
    method: str = "pca"
    pooled: bool = False
    note: str = ""
    slot: str = ""
    explained: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class PcaFit:
    """The two leading principal axes of a slot's (pooled) latents."""

    mean: np.ndarray
    components: np.ndarray  # (2, d)
    explained: tuple[float, float]

    @classmethod
    def fit(cls, features: np.ndarray) -> PcaFit:
        """Eigen-decomposition of the d x d covariance: memory stays O(d^2) however many points there are.

        Each axis's sign is fixed (largest loading positive) so that refits on the same data agree.
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError("PCA needs a non-empty (n, d) array")
        mean = x.mean(axis=0)
        centred = x - mean
        cov = centred.T @ centred / max(1, len(x) - 1)
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        d = x.shape[1]
        comps = np.zeros((2, d))
        comps[: min(2, d)] = vectors[:, :2].T
        for k in range(min(2, d)):
            if comps[k, np.argmax(np.abs(comps[k]))] < 0:
                comps[k] = -comps[k]
        total = float(values.clip(min=0).sum())
        ratio = [float(v) / total if total > 0 else 0.0 for v in values[:2].clip(min=0)]
        ratio += [0.0] * (2 - len(ratio))
        return cls(mean.astype(np.float32), comps.astype(np.float32), (ratio[0], ratio[1]))

    def transform(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        return ((x - self.mean) @ self.components.T).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components,
                "explained": np.asarray(self.explained, dtype=np.float32)}

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray]) -> PcaFit:
        e = data["explained"]
        return cls(np.asarray(data["mean"], np.float32), np.asarray(data["components"], np.float32),
                   (float(e[0]), float(e[1])))


def pool_features(latents: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """Flattened latents ``(n, size)`` -> plot features: spatial ``(c, h, w)`` slots are averaged over space."""
    x = np.asarray(latents, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if len(shape) == 3:
        c = shape[0]
        return x.reshape(len(x), c, -1).mean(axis=2), True
    return x, False


def sample_indices(n: int, max_points: int, seed: int = 0, labels: np.ndarray | None = None) -> np.ndarray:
    """Up to ``max_points`` item indices, sorted; with ``labels``, every label gets an equal share (the rare values
    of an attribute stay visible in the plot), the rest is filled at random. Seeded: the same call gives the same
    points."""
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n, size=max_points, replace=False)).astype(np.int64)
    labels = np.asarray(labels).reshape(-1)
    values = np.unique(labels)
    share = max(1, max_points // len(values))
    picked = []
    for v in values:
        members = np.flatnonzero(labels == v)
        picked.append(rng.choice(members, size=min(share, len(members)), replace=False))
    chosen = np.unique(np.concatenate(picked))
    if len(chosen) > max_points:  # more values than points: one item each for a random subset of values
        chosen = rng.choice(chosen, size=max_points, replace=False)
    if len(chosen) < max_points:
        rest = np.setdiff1d(np.arange(n), chosen, assume_unique=True)
        chosen = np.concatenate([chosen, rng.choice(rest, size=max_points - len(chosen), replace=False)])
    return np.sort(chosen).astype(np.int64)


def described_projection(indices: np.ndarray, xy: np.ndarray, fit: PcaFit, pooled: bool, total: int,
                         slot: str) -> Projection:
    """A projection of ``indices`` (of ``total`` items) with the note the plot shows under it."""
    note = (f"PCA of {len(indices):,} of {total:,} items; the two axes explain {sum(fit.explained):.0%} of the "
            "variance" + ("; the spatial code is averaged over space first" if pooled else ""))
    return Projection(indices, xy, "pca", pooled, note, slot, fit.explained)


class PcaStore:
    """Fitted PCAs per (model, dataset, slot) fingerprints, in memory and under ``cache_dir``."""

    def __init__(self) -> None:
        self._fits: dict[tuple[str, str, str], PcaFit] = {}

    def get(self, cache_dir: Path, model_fp: str, dataset_fp: str, slot: str) -> PcaFit | None:
        """The fit in memory, else the one on disk, else None."""
        key = (model_fp, dataset_fp, slot)
        return self._fits.get(key) or read_pca(pca_path(cache_dir, *key))

    def fit(self, cache_dir: Path, model_fp: str, dataset_fp: str, slot: str, features: np.ndarray) -> PcaFit:
        """The stored fit; with none, one fitted to ``features`` and written to disk. Kept in memory either way."""
        key = (model_fp, dataset_fp, slot)
        fit = self.get(cache_dir, *key)
        if fit is None:
            fit = PcaFit.fit(features)
            write_pca(pca_path(cache_dir, *key), fit)
        self._fits[key] = fit
        return fit


def pca_path(cache_dir: Path, model_fp: str, dataset_fp: str, slot: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", slot)
    return cache_dir / "latents" / model_fp / dataset_fp / f"pca-{safe}.safetensors"


def read_pca(path: Path) -> PcaFit | None:
    from safetensors.numpy import load_file

    if not path.exists():
        return None
    try:
        return PcaFit.from_arrays(load_file(str(path)))
    except Exception:  # damaged: refit
        return None


def write_pca(path: Path, fit: PcaFit) -> None:
    from safetensors.numpy import save as save_bytes

    from studio.training.checkpoint import atomic_write_bytes

    with contextlib.suppress(OSError):  # the cache only saves time
        atomic_write_bytes(path, save_bytes(fit.to_arrays()))
