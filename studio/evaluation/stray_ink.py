"""Stray ink: marks a synthesis draws where the true image is plain ground.

PSNR averages a faint speckle away and the judge reads the glyph, not the ground around it, yet a speckle of the
glyph's colour above a letter is what a person notices first in the composer. This counts, for the zero-shot
syntheses (strict queries where they ran) and for reconstructions of the same held-out targets, the pixels that
differ from the true image's ground (the median colour of its border) by more than a threshold where the true
image is ground for ``MARGIN`` pixels all round: marks that no anti-aliasing or slightly misplaced edge explains.
Targets whose border is not one plain colour (photographs) are left out; with none left the evaluation is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, text_table
from studio.evaluation.zero_shot import _queries, _synthesize, attribute_slots_cover_schema, zero_shot_targets
from studio.training.data import image_border

#: Largest channel difference from the ground (pixels in [0, 1]) that counts as a mark, per reported column.
THRESHOLDS = (0.1, 0.2)
#: A mark must be this many pixels away from any of the true image's ink.
MARGIN = 2
#: What counts as ink in the true image: a channel this far from the ground.
INK = 0.05
#: A target's border is plain when this share of its pixels lies within ``INK`` of the border's median colour.
PLAIN_BORDER = 0.95
#: An image "has stray ink" with at least this many stray pixels (one pixel is rarely visible; a few are).
VISIBLE_PIXELS = 3
MANY_PIXELS = 10


def stray_pixels(images: Tensor, truth: Tensor, thresholds: Sequence[float]) -> tuple[Tensor, Tensor]:
    """(T, N) stray pixels of each image against its true image per threshold, both (N, 3, H, W) in [0, 1], and
    (N,) whether the true image has a plain ground (the counts mean nothing where it has not)."""
    border = image_border(truth)
    ground = border.median(dim=-1).values
    plain = ((border - ground[..., None]).abs().amax(dim=1) <= INK).float().mean(dim=-1) >= PLAIN_BORDER
    ground = ground[..., None, None]
    ink = ((truth - ground).abs().amax(dim=1, keepdim=True) > INK).float()
    away = F.max_pool2d(ink, 2 * MARGIN + 1, stride=1, padding=MARGIN) == 0
    off = (images - ground).abs().amax(dim=1, keepdim=True)
    counts = torch.stack([((off > t) & away).sum(dim=(1, 2, 3)) for t in thresholds])
    return counts, plain


def _summary(counts: list[Tensor]) -> dict[str, float]:
    every = torch.cat(counts).float()
    return {"mean_pixels": float(every.mean()), "visible": float((every >= VISIBLE_PIXELS).float().mean()),
            "many": float((every >= MANY_PIXELS).float().mean())}


def _format(result: dict[str, Any]) -> str:
    headers = [""]
    for t in result["thresholds"]:
        headers += [f"> {t}: mean px", f">= {VISIBLE_PIXELS} px", f">= {MANY_PIXELS} px"]
    rows = []
    for key, label in (("synthesis", f"zero-shot synthesis, {result['protocol']} query"),
                       ("reconstruction", "reconstruction of the same targets")):
        row: list[Any] = [label]
        for t in result["thresholds"]:
            part = result[key][str(t)]
            row += [part["mean_pixels"], part["visible"], part["many"]]
        rows.append(row)
    return (f"{text_table(headers, rows, digits=3)}\n"
            f"stray pixels per image: off the true ground by more than the threshold (pixels in [0, 1]) where the "
            f"true image is plain ground {MARGIN} px all round; '>= {VISIBLE_PIXELS} px' and '>= {MANY_PIXELS} px': "
            f"the share of images with at least that many; "
            f"{result['n']} held-out targets with a plain ground ({result['n_skipped']} without one left out)")


@evaluation("stray_ink", applies=attribute_slots_cover_schema, order=16,
            title="Stray ink: marks on plain ground (zero-shot syntheses and reconstructions)", formatter=_format)
@torch.no_grad()
def stray_ink(ctx: EvalContext) -> dict[str, Any]:
    """Per threshold: mean stray pixels per image, and the share of images with a few or many of them."""
    targets = zero_shot_targets(ctx)
    if len(targets) == 0:
        raise EvaluationSkipped("the split holds out no test items")
    protocol = "strict" if "strict" in ctx.protocols else ctx.protocols[0]
    queries = _queries(ctx, targets, protocol)
    counts: dict[str, dict[float, list[Tensor]]] = {k: {t: [] for t in THRESHOLDS}
                                                    for k in ("synthesis", "reconstruction")}
    kept = 0
    for start in range(0, len(targets), ctx.batch_size):
        part = np.asarray(targets[start:start + ctx.batch_size])
        truth = (ctx.images(part).float() + 1) / 2
        made = {"synthesis": _synthesize(ctx, queries[start:start + ctx.batch_size]),
                "reconstruction": ctx.decode(ctx.encode(part))}
        for key, images in made.items():
            n, plain = stray_pixels((images.float().clamp(-1, 1) + 1) / 2, truth, THRESHOLDS)
            for t, per_image in zip(THRESHOLDS, n):
                counts[key][t].append(per_image[plain].cpu())
        kept += int(plain.sum())  # the same truth, so the same plain targets, for syntheses and reconstructions
    if kept == 0:
        raise EvaluationSkipped("no held-out target has a plain ground (one border colour), so stray marks "
                                "cannot be told from the picture")
    return {"protocol": protocol, "thresholds": list(THRESHOLDS), "n": kept, "n_skipped": len(targets) - kept,
            **{key: {str(t): _summary(c) for t, c in per.items()} for key, per in counts.items()}}
