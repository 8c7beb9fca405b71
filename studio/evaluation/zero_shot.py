"""Zero-shot synthesis (paper 000, Table 2): make held-out attribute combinations from training images only.

For each test item, a query finds training items that together show every wanted value; each attribute slot
takes its latent from the item that covers its attribute, the decoder renders the combination, and the result is
compared with the true rendering. Two query protocols:

- ``strict`` (paper 000, Fig. 4): every attribute from a different training image, each sharing with the target
  only its own attribute where the data allow (``exact_fraction`` says how often they did).
- ``greedy``: the greedy set cover, which takes the item matching the most attributes (about two sources per
  query on Fonts), so it is closer to a one-slot swap. The report's top-level figures are greedy's when it ran,
  for readers of older reports; ``protocol`` names the one they come from.

Two reference points put the figures in context: the nearest training image to the target (an oracle that peeks
at the target; beating it means synthesis beats any real image we have) and the per-pixel mean training image.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch
from torch import Tensor

from studio.data.multigraph import StrictCover, cover
from studio.errors import StudioError
from studio.evaluation.metrics import ImageScores
from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, text_table
from studio.methods.base import Method

#: Largest number of training images the nearest-image and mean-image baselines look at.
MAX_POOL = 20000
POOL_CHUNK = 1024
#: Targets handled together; the training pool is read once per block (once in all at the default item cap).
TARGET_BLOCK = 2048
#: Query protocols, in report order.
PROTOCOLS = ("strict", "greedy")


def attribute_slots_cover_schema(method: Method) -> bool:
    """True when every attribute of the schema has a slot, so a query can be assembled slot by slot (never for an
    unlabelled dataset: there are no combinations to hold out)."""
    named = {s.attribute for s in method.slots if s.attribute}
    names = set(method.context.schema.names)
    return method.can_encode() and bool(names) and names <= named


def protocol_rng(ctx: EvalContext, what: str) -> np.random.Generator:
    """A generator for one part of the zero-shot plan, seeded by the run's seed and the part's name alone, so the
    judge (and ``--protocol`` choices) draw the same targets and queries as the ``zero_shot`` evaluation."""
    return np.random.default_rng([ctx.seed, zlib.crc32(f"zero_shot/{what}".encode())])


def zero_shot_targets(ctx: EvalContext) -> np.ndarray:
    """The held-out items the zero-shot evaluation synthesises (at most ``max_items``, drawn at random)."""
    test = ctx.split.test
    if len(test) <= ctx.max_items:
        return np.asarray(test, dtype=np.int64)
    return np.sort(protocol_rng(ctx, "targets").choice(test, size=ctx.max_items, replace=False))


def _queries(ctx: EvalContext, targets: np.ndarray, protocol: str = "greedy",
             rng: np.random.Generator | None = None) -> list[dict[int, int]]:
    """One ``{attribute position: training item}`` query per target under ``protocol`` (``strict`` or
    ``greedy``)."""
    if protocol not in PROTOCOLS:
        raise StudioError(f"unknown zero-shot protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    codes, train = ctx.dataset.codes, ctx.split.train
    rng = rng if rng is not None else protocol_rng(ctx, protocol)
    strict = StrictCover(codes, train, schema=ctx.dataset.schema) if protocol == "strict" else None
    queries = []
    for t in targets:
        try:
            if strict is not None:
                queries.append(strict.query(codes[t], rng))
            else:
                queries.append(cover(codes, train, codes[t], rng, schema=ctx.dataset.schema))
        except StudioError as e:  # a value that no training item shows
            raise EvaluationSkipped(f"cannot build a query for test item {int(t)}: {e}") from None
    return queries


def query_statistics(ctx: EvalContext, targets: np.ndarray, queries: list[dict[int, int]]) -> dict[str, float]:
    """How a protocol's queries look: distinct sources per query, and the fraction of (query, attribute) sources
    that share exactly one attribute (their own) with the target."""
    codes = ctx.dataset.codes
    exact, distinct = [], []
    for t, q in zip(targets, queries):
        sources = np.array([q[j] for j in range(codes.shape[1])], dtype=np.int64)
        exact.append((codes[sources] == codes[t]).sum(axis=1) == 1)
        distinct.append(len(set(sources.tolist())))
    return {"sources_per_query": float(np.mean(distinct)) if distinct else float("nan"),
            "exact_fraction": float(np.concatenate(exact).mean()) if exact else float("nan")}


@torch.no_grad()
def _synthesize(ctx: EvalContext, queries: list[dict[int, int]]) -> Tensor:
    """Decode one image per query, each attribute slot taken from its covering item.

    Slots without an attribute (a residual code) come from the query's first item: the greedy cover's first pick
    (the item covering the most attributes), or the strict query's source of the first attribute.
    """
    schema = ctx.dataset.schema
    sources = np.unique(np.fromiter((i for q in queries for i in q.values()), dtype=np.int64))
    latents = ctx.encode(sources)
    row_of = {int(item): row for row, item in enumerate(sources)}
    slot_rows: dict[str, list[int]] = {s.name: [] for s in ctx.method.slots}
    for q in queries:
        main = next(iter(q.values()))
        for s in ctx.method.slots:
            item = q[schema.position(s.attribute)] if s.attribute else main
            slot_rows[s.name].append(row_of[item])
    composed = {name: latents[name][torch.as_tensor(rows, device=ctx.device)] for name, rows in slot_rows.items()}
    return ctx.decode(composed)


@torch.no_grad()
def _baselines(ctx: EvalContext, targets: Tensor, pool: np.ndarray) -> tuple[Tensor, Tensor]:
    """Nearest training image (in pixel space) to each target, and the mean training image, in one pass over the
    pool of training items."""
    flat_targets = targets.flatten(1)
    best_dist = torch.full((len(targets),), float("inf"), device=targets.device)
    best_img = torch.zeros_like(targets)
    total = torch.zeros_like(targets[0], dtype=torch.float64)
    for start in range(0, len(pool), POOL_CHUNK):
        chunk = ctx.images(pool[start:start + POOL_CHUNK])
        total += chunk.double().sum(dim=0)
        d, j = torch.cdist(flat_targets, chunk.flatten(1)).min(dim=1)
        better = d < best_dist
        best_dist = torch.where(better, d, best_dist)
        best_img[better] = chunk[j[better]]
    mean_img = (total / len(pool)).float().expand_as(targets)
    return best_img, mean_img


def _format(result: dict[str, Any]) -> str:
    rows = []
    for protocol in PROTOCOLS:
        if protocol in result:
            r = result[protocol]
            rows.append([f"synthesis, {protocol} query", r["mse"], r["psnr"], r["ssim"]])
    labels = {"nearest": "nearest train image (oracle)", "mean": "mean train image"}
    for key, label in labels.items():
        b = result["baselines"][key]
        rows.append([label, b["mse"], b["psnr"], b["ssim"]])
    table = text_table(["", "MSE", "PSNR dB", "SSIM"], rows, digits=4)
    lines = [table]
    for protocol in PROTOCOLS:
        if protocol in result:
            r = result[protocol]
            lines.append(f"{protocol}: {r['sources_per_query']:.2f} training sources per query, "
                         f"{r['exact_fraction']:.2f} of them share only their own attribute with the target")
    lines.append(f"{result['n']} held-out combinations; baselines over {result['pool']} training images"
                 + (" (subsampled)" if result["pool_subsampled"] else ""))
    return "\n".join(lines)


@evaluation("zero_shot", applies=attribute_slots_cover_schema, order=10,
            title="Zero-shot synthesis (paper 000, Table 2)", formatter=_format)
def zero_shot(ctx: EvalContext) -> dict[str, Any]:
    """MSE, PSNR and SSIM of synthesised held-out combinations against their true renderings, per protocol."""
    if len(ctx.split.test) == 0:
        raise EvaluationSkipped("the split holds out no test items")
    targets_idx = zero_shot_targets(ctx)
    protocols = [p for p in PROTOCOLS if p in ctx.protocols]
    queries = {p: _queries(ctx, targets_idx, p) for p in protocols}
    pool = ctx.subsample(ctx.split.train, MAX_POOL)
    scores = {p: ImageScores() for p in protocols}
    nearest_scores, mean_scores = ImageScores(), ImageScores()
    for start in range(0, len(targets_idx), TARGET_BLOCK):
        part = slice(start, start + TARGET_BLOCK)
        truth = ctx.images(targets_idx[part])
        for p in protocols:
            scores[p].add(_synthesize(ctx, queries[p][part]), truth)
        nearest, mean = _baselines(ctx, truth, pool)
        nearest_scores.add(nearest, truth)
        mean_scores.add(mean, truth)
    baselines = {"nearest": nearest_scores.means(), "mean": mean_scores.means()}
    per_protocol = {p: {**scores[p].means(), **query_statistics(ctx, targets_idx, queries[p]), "n": scores[p].count}
                    for p in protocols}
    headline = "greedy" if "greedy" in per_protocol else protocols[0]
    return {
        **per_protocol[headline],
        "protocol": headline,
        **per_protocol,
        "n": len(targets_idx),
        "baselines": baselines,
        "pool": len(pool),
        "pool_subsampled": len(pool) < len(ctx.split.train),
        "range": "MSE and PSNR in the [0, 1] pixel range; PSNR averaged per image (capped at 100 dB)",
    }
