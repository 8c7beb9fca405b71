"""Attribute directions in one slot's space (paper 003): per value, the unit normal of a linear SVM that separates
it from the other values (its UDV) and the centre of its k-means cluster.

Move toward a value by adding its UDV, jump to its centre, or combine UDVs (v_blue + v_red - v_green) to look
for values the data never showed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from studio.errors import StudioError


@dataclass(frozen=True)
class SlotDirections:
    """Directions and centres of every value of ``attribute`` in ``slot``'s flattened latent space.

    ``weights``/``biases`` are the SVMs' decision functions in raw latent units (one-vs-rest), so ``scores`` can
    tell how strongly a latent reads as each value. A value absent from the fit has a zero direction.
    """

    slot: str
    attribute: str
    values: tuple[str, ...]
    directions: np.ndarray  # (k, size) unit vectors
    centres: np.ndarray  # (k, size)
    weights: np.ndarray  # (k, size)
    biases: np.ndarray  # (k,)
    counts: np.ndarray  # (k,) items of each value in the fit
    centre_from_kmeans: tuple[bool, ...]
    accuracy: float  # one-vs-rest SVM accuracy on the fitted items

    def index(self, value: str) -> int:
        try:
            return self.values.index(value)
        except ValueError:
            raise StudioError(f"{self.attribute} has no value {value!r} (slot {self.slot}); "
                              f"known values: {', '.join(self.values)}") from None

    def direction(self, value: str) -> np.ndarray:
        return self.directions[self.index(value)]

    def centre(self, value: str) -> np.ndarray:
        k = self.index(value)
        if self.counts[k] == 0:
            raise StudioError(f"no encoded item has {self.attribute}={value}, so it has no centre in slot {self.slot}")
        return self.centres[k]

    def combined(self, value: str, combine: tuple[tuple[str, float], ...] = ()) -> np.ndarray:
        """u_value + sum(weight * u_other): not renormalised, so ``amount`` scales every part alike."""
        vec = self.direction(value).astype(np.float64).copy()
        for other, weight in combine:
            vec += float(weight) * self.direction(other)
        return vec.astype(np.float32)

    def step(self, latent: np.ndarray, value: str, amount: float,
             combine: tuple[tuple[str, float], ...] = ()) -> np.ndarray:
        return (np.asarray(latent, np.float32) + float(amount) * self.combined(value, combine)).astype(np.float32)

    def scores(self, latents: np.ndarray) -> np.ndarray:
        """Decision values ``(n, k)``: positive where the SVM reads the latent as that value."""
        x = np.asarray(latents, np.float32).reshape(-1, self.weights.shape[1])
        return x @ self.weights.T + self.biases


def fit_directions(latents: np.ndarray, labels: np.ndarray, values: tuple[str, ...], *, slot: str,
                   attribute: str, seed: int = 0, c: float = 1.0) -> SlotDirections:
    """One-vs-rest linear SVMs (scikit-learn's LinearSVC) on standardised latents, mapped back to raw units, and
    k-means initialised at the class means so that cluster j starts as value j's cluster."""
    x = np.asarray(latents, np.float64).reshape(len(latents), -1)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    k, d = len(values), x.shape[1]
    present = np.unique(y)
    if len(present) < 2:
        raise StudioError(f"directions for {attribute} in slot {slot} need items of at least two values; "
                          f"only {', '.join(values[v] for v in present) or 'none'} found")
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd < 1e-6] = 1.0
    xs = (x - mu) / sd
    svm = LinearSVC(C=c, max_iter=5000, random_state=seed, dual="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm.fit(xs, y)
    coef, intercept = np.asarray(svm.coef_), np.asarray(svm.intercept_)
    if len(svm.classes_) == 2:  # scikit-learn keeps one row for two classes: the second class is positive
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    weights = np.zeros((k, d))
    biases = np.full(k, -np.inf)
    for row, cls in enumerate(svm.classes_):
        weights[cls] = coef[row] / sd
        biases[cls] = intercept[row] - float(coef[row] @ (mu / sd))
    norms = np.linalg.norm(weights, axis=1, keepdims=True)
    directions = np.divide(weights, norms, out=np.zeros_like(weights), where=norms > 0)
    accuracy = float((svm.predict(xs) == y).mean())

    counts = np.bincount(y, minlength=k)
    means = np.array([x[y == v].mean(axis=0) if counts[v] else mu for v in range(k)])
    centres, from_kmeans = _kmeans_centres(x, y, means, present, seed)
    biases = np.where(np.isfinite(biases), biases, -1e9)
    return SlotDirections(slot, attribute, tuple(values), directions.astype(np.float32), centres.astype(np.float32),
                          weights.astype(np.float32), biases.astype(np.float32), counts, from_kmeans, accuracy)


def _kmeans_centres(x: np.ndarray, y: np.ndarray, means: np.ndarray, present: np.ndarray,
                    seed: int) -> tuple[np.ndarray, tuple[bool, ...]]:
    """Each value's centre is the k-means centre of the cluster most of its items fall in, when that cluster's
    own majority is the value; otherwise (an entangled slot) the value's mean."""
    km = KMeans(n_clusters=len(present), init=means[present], n_init=1, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assign = km.fit_predict(x)
    table = np.zeros((len(present), len(present)), np.int64)  # value row x cluster
    pos = {int(v): r for r, v in enumerate(present)}
    np.add.at(table, (np.array([pos[int(v)] for v in y]), assign), 1)
    centres = means.copy()
    from_kmeans = [False] * len(means)
    for r, v in enumerate(present):
        cluster = int(table[r].argmax())
        if int(table[:, cluster].argmax()) == r:
            centres[v] = km.cluster_centers_[cluster]
            from_kmeans[int(v)] = True
    return centres, tuple(from_kmeans)
