"""LORBMS' replacement candidates and mixing rule, as pure functions used by training and evaluation alike: the four
quadrants of an image, each quadrant's nearest neighbours in a feature space available without labels (pixel PCA,
or the model's own quadrant codes), and the thesis' rule for drawing one mix (Algorithm 1).

``CandidateStore`` keeps the table with the model's weights, so that a resumed run mixes as the uninterrupted one
would have. The method itself is ``studio.methods.mixing``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from studio.errors import StudioError

QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")


def quadrant_crops(images: Tensor) -> list[Tensor]:
    """(B, C, H, W) -> the four quadrants, in QUADRANTS order."""
    h, w = images.shape[-2] // 2, images.shape[-1] // 2
    return [images[..., :h, :w], images[..., :h, w:], images[..., h:, :w], images[..., h:, w:]]


def pca_project(features: Tensor, components: int) -> Tensor:
    """Centre (N, d) features and keep their top principal components (deterministic: eigenvectors of the
    covariance, signs fixed)."""
    x = features.double() - features.double().mean(dim=0, keepdim=True)
    cov = x.T @ x / max(1, x.shape[0] - 1)
    values, vectors = torch.linalg.eigh(cov)
    k = min(components, vectors.shape[1])
    top = vectors[:, torch.argsort(values, descending=True)[:k]]
    top = top * torch.sign(top[top.abs().argmax(dim=0), torch.arange(k)])
    return (x @ top).float()


def pixel_quadrant_features(images: Tensor, components: int, side: int = 8) -> Tensor:
    """Per quadrant, pixels pooled to side x side and reduced by PCA: (4, N, components)."""
    out = []
    for crop in quadrant_crops(images.float()):
        pooled = F.adaptive_avg_pool2d(crop, min(side, crop.shape[-1])).flatten(1)
        out.append(pca_project(pooled, components))
    return torch.stack(out)


def nearest_neighbours(features: Tensor, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other rows of (N, d) ``features`` by L2 distance: indices and distances (N, k), nearest first."""
    n = features.shape[0]
    if n < 2:
        raise StudioError("mixing needs at least two training images to find replacement candidates")
    k = min(k, n - 1)
    feats = features.float()
    idx, dist = [], []
    for start in range(0, n, chunk):
        d = torch.cdist(feats[start:start + chunk], feats)
        rows = torch.arange(start, min(n, start + chunk))
        d[rows - start, rows] = math.inf
        values, order = torch.topk(d, k, dim=1, largest=False)
        idx.append(order)
        dist.append(values)
    return torch.cat(idx).cpu().numpy().astype(np.int64), torch.cat(dist).cpu().numpy().astype(np.float32)


@dataclass
class CandidateTable:
    """Replacement candidates for a pool of images: ``index[q, i]`` are the pool positions of the nearest
    neighbours of image i's quadrant q, ``distance[q, i]`` their distances; ``threshold`` is the farthest a used
    replacement may be."""

    index: np.ndarray
    distance: np.ndarray
    threshold: float
    source: str

    @property
    def eligible(self) -> np.ndarray:
        """Pool positions that have at least one candidate within the threshold (only these can be mixed)."""
        return np.flatnonzero((self.distance <= self.threshold).any(axis=(0, 2)))


def build_candidates(features: Tensor, k: int, threshold: float, quantile: float, source: str) -> CandidateTable:
    """Candidates from per-quadrant features (4, N, d); a zero ``threshold`` takes the ``quantile`` of all distances."""
    tables = [nearest_neighbours(features[q], k) for q in range(len(QUADRANTS))]
    index = np.stack([t[0] for t in tables])
    distance = np.stack([t[1] for t in tables])
    tau = float(threshold) if threshold > 0 else float(np.quantile(distance, quantile))
    return CandidateTable(index, distance, tau, source)


def draw_mix(table: CandidateTable, ref: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The thesis' mixing rule for one reference: one candidate per quadrant drawn uniformly from its list; a
    quadrant is replaced when its candidate is within the threshold; if all four would be, the farthest is kept; if
    none would be, the nearest admissible candidate of any quadrant replaces its quadrant.

    Returns candidate pool positions (4,) and the replacement mask (4,) bool, with 1 to 3 quadrants replaced.
    Raises ValueError for a reference that has no candidate within the threshold at all.
    """
    k = table.index.shape[2]
    pick = rng.integers(0, k, size=len(QUADRANTS))
    quads = np.arange(len(QUADRANTS))
    cands = table.index[quads, ref, pick].copy()
    dists = table.distance[quads, ref, pick]
    mask = dists <= table.threshold
    if mask.all():
        mask[int(np.argmax(dists))] = False
    if not mask.any():
        flat = table.distance[:, ref, :]
        q, j = np.unravel_index(int(np.argmin(flat)), flat.shape)
        if flat[q, j] > table.threshold:
            raise ValueError(f"pool item {ref} has no replacement candidate within the threshold")
        cands[q] = table.index[q, ref, j]
        mask[q] = True
    return cands, mask


def draw_mixes(table: CandidateTable, refs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``draw_mix`` for a batch of references: candidates (B, 4) and masks (B, 4)."""
    pairs = [draw_mix(table, int(r), rng) for r in refs]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def pair_targets(refs: np.ndarray, cands: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Ground truth of the quadrant classifier: ``[b, j, i]`` is 1 when quadrant i of mix b came from candidate j's
    image (the thesis' Cls(I_mix, I_qj), four binary outputs per pair). Shape (B, 4, 4)."""
    source = np.where(mask, cands, refs[:, None])
    return (source[:, None, :] == cands[:, :, None]).astype(np.float32)


def pixel_mosaic(ref: Tensor, cands: Tensor, mask: Tensor) -> Tensor:
    """The reference with its replaced quadrants pasted, pixel for pixel, from the candidates."""
    out = ref.clone()
    h, w = ref.shape[-2] // 2, ref.shape[-1] // 2
    for q, (r, c) in enumerate([(0, 0), (0, w), (h, 0), (h, w)]):
        rows = mask[:, q].nonzero().flatten()
        out[rows, :, r:r + h, c:c + w] = cands[rows, q, :, r:r + h, c:c + w]
    return out


SOURCES = ("", "pixel PCA", "encoder")


def pool_key(data) -> int:
    """A number that names the training pool (dataset pixels and labels, and which items train)."""
    h = hashlib.sha256(data.dataset.fingerprint.encode())
    h.update(np.ascontiguousarray(data.train_indices, dtype=np.int64).tobytes())
    return int.from_bytes(h.digest()[:8], "little", signed=True)


class CandidateStore(nn.Module):
    """The candidate table as buffers, saved with the weights, so that a resumed run mixes exactly as the
    uninterrupted run would have (the encoder-made table cannot be recomputed once the encoder has moved on).
    ``pool_key`` says which training pool the table belongs to; its buffers take whatever size a checkpoint has."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("index", torch.zeros(len(QUADRANTS), 0, 0, dtype=torch.int32))
        self.register_buffer("distance", torch.zeros(len(QUADRANTS), 0, 0))
        self.register_buffer("threshold", torch.zeros(()))
        self.register_buffer("source", torch.zeros((), dtype=torch.int64))
        self.register_buffer("pool_key", torch.zeros((), dtype=torch.int64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[override]
        for name in ("index", "distance"):
            incoming = state_dict.get(prefix + name)
            if incoming is not None and incoming.shape != self._buffers[name].shape:
                old = self._buffers[name]
                self._buffers[name] = torch.zeros(incoming.shape, dtype=old.dtype, device=old.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def put(self, table: CandidateTable, key: int) -> None:
        dev = self.threshold.device
        self.index = torch.as_tensor(table.index, dtype=torch.int32, device=dev)
        self.distance = torch.as_tensor(table.distance, dtype=torch.float32, device=dev)
        self.threshold.fill_(table.threshold)
        self.source.fill_(SOURCES.index(table.source))
        self.pool_key.fill_(key)

    def get(self, key: int) -> CandidateTable | None:
        if int(self.source) == 0 or int(self.pool_key) != key or self.index.numel() == 0:
            return None
        return CandidateTable(self.index.cpu().numpy().astype(np.int64), self.distance.cpu().numpy(),
                              float(self.threshold), SOURCES[int(self.source)])
