"""Zero-shot synthesis (paper 000, Table 2): make held-out attribute combinations from training images only.

For each test item, the cover query finds training items that together show every wanted value; each attribute
slot takes its latent from the item that covers its attribute, the decoder renders the combination, and the result
is compared with the true rendering. Two reference points put the figures in context: the nearest training image
to the target (an oracle that peeks at the target; beating it means synthesis beats any real image we have) and
the per-pixel mean training image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from studio.data.multigraph import cover
from studio.errors import StudioError
from studio.evaluation.metrics import ImageScores
from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, text_table
from studio.methods.base import Method

#: Largest number of training images the nearest-image and mean-image baselines look at.
MAX_POOL = 20000
POOL_CHUNK = 1024
#: Targets handled together; the training pool is read once per block (once in all at the default item cap).
TARGET_BLOCK = 2048


def attribute_slots_cover_schema(method: Method) -> bool:
    """True when every attribute of the schema has a slot, so a query can be assembled slot by slot (never for an
    unlabelled dataset: there are no combinations to hold out)."""
    named = {s.attribute for s in method.slots if s.attribute}
    names = set(method.context.schema.names)
    return method.can_encode() and bool(names) and names <= named


def _queries(ctx: EvalContext, targets: np.ndarray) -> list[dict[int, int]]:
    codes, train = ctx.dataset.codes, ctx.split.train
    queries = []
    for t in targets:
        try:
            queries.append(cover(codes, train, codes[t], ctx.rng))
        except StudioError as e:  # a value that no training item shows
            raise EvaluationSkipped(f"cannot build a query for test item {int(t)}: {e}") from None
    return queries


@torch.no_grad()
def _synthesize(ctx: EvalContext, queries: list[dict[int, int]]) -> Tensor:
    """Decode one image per query, each attribute slot taken from its covering item.

    Slots without an attribute (a residual code) come from the item that covers the most attributes, the cover's
    first pick.
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
    rows = [["synthesis", result["mse"], result["psnr"], result["ssim"]]]
    labels = {"nearest": "nearest train image (oracle)", "mean": "mean train image"}
    for key, label in labels.items():
        b = result["baselines"][key]
        rows.append([label, b["mse"], b["psnr"], b["ssim"]])
    table = text_table(["", "MSE", "PSNR dB", "SSIM"], rows, digits=4)
    note = (f"{result['n']} held-out combinations, {result['sources_per_query']:.2f} training sources per query; "
            f"baselines over {result['pool']} training images" + (" (subsampled)" if result["pool_subsampled"]
                                                                  else ""))
    return f"{table}\n{note}"


@evaluation("zero_shot", applies=attribute_slots_cover_schema, order=10,
            title="Zero-shot synthesis (paper 000, Table 2)", formatter=_format)
def zero_shot(ctx: EvalContext) -> dict[str, Any]:
    """MSE, PSNR and SSIM of synthesised held-out combinations against their true renderings."""
    if len(ctx.split.test) == 0:
        raise EvaluationSkipped("the split holds out no test items")
    targets_idx = ctx.subsample(ctx.split.test)
    queries = _queries(ctx, targets_idx)
    pool = ctx.subsample(ctx.split.train, MAX_POOL)
    synth_scores, nearest_scores, mean_scores = ImageScores(), ImageScores(), ImageScores()
    for start in range(0, len(targets_idx), TARGET_BLOCK):
        part = slice(start, start + TARGET_BLOCK)
        truth = ctx.images(targets_idx[part])
        synth_scores.add(_synthesize(ctx, queries[part]), truth)
        nearest, mean = _baselines(ctx, truth, pool)
        nearest_scores.add(nearest, truth)
        mean_scores.add(mean, truth)
    sources = float(np.mean([len(set(q.values())) for q in queries]))
    return {
        **synth_scores.means(),
        "n": synth_scores.count,
        "baselines": {"nearest": nearest_scores.means(), "mean": mean_scores.means()},
        "sources_per_query": sources,
        "pool": len(pool),
        "pool_subsampled": len(pool) < len(ctx.split.train),
        "range": "MSE and PSNR in the [0, 1] pixel range; PSNR averaged per image (capped at 100 dB)",
    }
