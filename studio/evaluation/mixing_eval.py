"""Figures of paper 002 (LORBMS) for the mixing method, on images the model did not train on.

- quadrant_mixing: mixes of held-out images made with the training rule (candidates from the model's own quadrant
  codes). How often the quadrant classifier recovers which quadrants were replaced (against the best constant
  guess), and how faithfully the decoded mix shows the quadrants it was given: PSNR against the pixel mosaic, for
  kept and for replaced quadrants separately. The mosaic figures also apply to the plain-autoencoder baseline.
- linear_probe: the thesis' transfer experiment: a linear classifier of each labelled attribute on the encoder's
  quadrant codes, fitted on 80% of the held-out items and scored on the rest (by item; all items where the
  held-out ones lack some values), next to the same probe on downsampled pixels. Labels are only used here, never
  in training; an unlabelled folder skips it.

Reconstruction PSNR comes from the generic ``reconstruction`` evaluation.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from studio.evaluation.metrics import capped_psnr
from studio.evaluation.probes import probe_items
from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, fmt, text_table
from studio.methods.base import Method
from studio.methods.mixing import QUADRANTS, build_candidates, draw_mixes, pair_targets, pixel_mosaic, quadrant_crops

PIXEL_SIDE = 8


def is_mixing(method: Method) -> bool:
    return method.name == "mixing" and hasattr(method, "mix_grids")


# --- mixes of held-out images ----------------------------------------------------------------------------
def _format_mixing(result: dict[str, Any]) -> str:
    lines = []
    if result.get("classifier_note"):
        lines.append(result["classifier_note"])
    else:
        rows = [["quadrant classifier", result["mask_exact"], result["mask_bits"], result["pair_bits"]],
                ["best constant guess", result["chance_exact"], result["chance_bits"], result["chance_pairs"]]]
        lines.append(text_table(["", "whole mask", "per quadrant", "all pairs"], rows, digits=3))
    rows = [["decoded mix vs pixel mosaic", result["psnr_kept"], result["psnr_replaced"], result["psnr_all"]]]
    lines.append(text_table(["PSNR dB", "kept quadrants", "replaced quadrants", "whole image"], rows, digits=2))
    counts = ", ".join(f"{k} replaced: {v}" for k, v in sorted(result["replaced_counts"].items()))
    lines.append(f"{result['n']} mixes of held-out images ({counts}); threshold {fmt(result['threshold'], 4)} in "
                 "the model's own quadrant codes")
    return "\n".join(lines)


def _quadrant_psnr(a: Tensor, b: Tensor) -> Tensor:
    """(B, 4) PSNR per quadrant."""
    return torch.stack([capped_psnr(x, y) for x, y in zip(quadrant_crops(a), quadrant_crops(b))], dim=1)


@evaluation("quadrant_mixing", applies=is_mixing, order=45, title="Quadrant mixing on held-out images (paper 002)",
            formatter=_format_mixing)
@torch.no_grad()
def quadrant_mixing(ctx: EvalContext) -> dict[str, Any]:
    """Mask recovery of the quadrant classifier and mix fidelity on mixes of held-out images."""
    items = ctx.subsample(ctx.split.test)
    if len(items) < 3:
        raise EvaluationSkipped(f"mixing needs at least three held-out images, the split has {len(items)}")
    method = ctx.method
    config = method.config
    images = ctx.images(items)
    features = method.quadrant_features(images, ctx.batch_size)  # type: ignore[attr-defined]
    table = build_candidates(features, config.neighbours, config.threshold, config.threshold_quantile, "encoder")
    refs = table.eligible
    if len(refs) == 0:
        raise EvaluationSkipped(f"no held-out image has a candidate within the threshold {table.threshold:.4g}")
    cands, mask = draw_mixes(table, refs, ctx.rng)
    targets = torch.from_numpy(pair_targets(refs, cands, mask)).to(ctx.device)
    mask_t = torch.from_numpy(mask).to(ctx.device)
    psnr_parts, logits_parts = [], []
    for start in range(0, len(refs), ctx.batch_size):
        part = slice(start, start + ctx.batch_size)
        ref = images[torch.as_tensor(refs[part], device=ctx.device)]
        cand = images[torch.as_tensor(cands[part].reshape(-1), device=ctx.device)].view(-1, len(QUADRANTS),
                                                                                       *images.shape[1:])
        z_ref = method.encoder(ref)  # type: ignore[attr-defined]
        z_cand = method.encoder(cand.flatten(0, 1)).view(len(ref), len(QUADRANTS), *z_ref.shape[1:])  # type: ignore[attr-defined]
        mix = method.decoder(method.mix_grids(z_ref, z_cand, mask_t[part])).float().clamp(-1, 1)  # type: ignore[attr-defined]
        psnr_parts.append(_quadrant_psnr(mix, pixel_mosaic(ref, cand, mask_t[part])))
        logits_parts.append(method.classify_quadrants(mix, cand).float())  # type: ignore[attr-defined]
    quad_psnr = torch.cat(psnr_parts)
    whole = quad_psnr.mean(dim=1)
    result: dict[str, Any] = {
        "n": len(refs),
        "threshold": table.threshold,
        "replaced_counts": {str(k): v for k, v in sorted(Counter(mask.sum(axis=1).tolist()).items())},
        "psnr_kept": float(quad_psnr[~mask_t].mean()),
        "psnr_replaced": float(quad_psnr[mask_t].mean()),
        "psnr_all": float(whole.mean()),
    }
    if not config.mixing:
        result["classifier_note"] = ("trained without mixing (the autoencoder baseline): its quadrant classifier "
                                     "never learnt, so only the mosaic figures apply")
        return result
    logits = torch.cat(logits_parts)
    predicted_mask = logits.diagonal(dim1=1, dim2=2) > 0
    replaced_rate = mask.mean(axis=0)
    pair_rate = targets.float().mean(dim=0)
    common = Counter(map(tuple, mask.tolist())).most_common(1)[0][1]
    result.update({
        "mask_exact": float((predicted_mask == mask_t).all(dim=1).float().mean()),
        "mask_bits": float((predicted_mask == mask_t).float().mean()),
        "pair_bits": float(((logits > 0) == (targets > 0.5)).float().mean()),
        "chance_exact": common / len(refs),
        "chance_bits": float(np.maximum(replaced_rate, 1 - replaced_rate).mean()),
        "chance_pairs": float(torch.maximum(pair_rate, 1 - pair_rate).mean()),
    })
    return result


# --- linear probe on the encoder's features ---------------------------------------------------------------
def _format_probe(result: dict[str, Any]) -> str:
    rows = [["encoder codes", *result["encoder"]], ["pixels (8x8)", *result["pixels"]],
            ["chance", *result["chance"]], ["majority", *result["majority"]]]
    table = text_table(["features \\ attribute", *result["attributes"]], rows, digits=3)
    return (f"{table}\nmean: encoder {fmt(result['encoder_mean'], 3)}, pixels {fmt(result['pixels_mean'], 3)}; "
            f"logistic regression; {result.get('probe_split', '')}")


def _probe(fit_x: np.ndarray, fit_y: np.ndarray, score_x: np.ndarray, score_y: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(fit_y)) < 2:
        return float(np.mean(score_y == fit_y[0]))
    scaler = StandardScaler().fit(fit_x)
    model = LogisticRegression(max_iter=2000, random_state=seed)
    model.fit(scaler.transform(fit_x), fit_y)
    return float(np.mean(model.predict(scaler.transform(score_x)) == score_y))


@evaluation("linear_probe", applies=is_mixing, order=47,
            title="Linear probe on the encoder's quadrant codes (paper 002 transfer)", formatter=_format_probe)
@torch.no_grad()
def linear_probe(ctx: EvalContext) -> dict[str, Any]:
    """Accuracy of a linear classifier per attribute on the concatenated quadrant codes, and on pixels."""
    schema = ctx.dataset.schema
    if len(schema) == 0:
        raise EvaluationSkipped("the dataset has no attribute labels (an unlabelled folder), so there is nothing "
                                "to probe; train on a labelled dataset such as fonts:small (its labels are ignored "
                                "in training) to see the probe")
    probes = probe_items(ctx, prefer="test")
    fit_items, score_items = probes.fit, probes.score

    def features(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        latents = ctx.encode(items)
        codes = torch.cat([latents[q].flatten(1) for q in QUADRANTS], dim=1)
        pixels = torch.cat([F.adaptive_avg_pool2d(ctx.images(items[s:s + ctx.batch_size]), PIXEL_SIDE).flatten(1)
                            for s in range(0, len(items), ctx.batch_size)])
        return codes.cpu().numpy(), pixels.cpu().numpy()

    fit_codes, fit_pixels = features(fit_items)
    score_codes, score_pixels = features(score_items)
    encoder_acc, pixel_acc, majority = [], [], []
    for j, attribute in enumerate(schema):
        fy, sy = ctx.dataset.codes[fit_items, j].astype(np.int64), ctx.dataset.codes[score_items, j].astype(np.int64)
        encoder_acc.append(_probe(fit_codes, fy, score_codes, sy, ctx.seed))
        pixel_acc.append(_probe(fit_pixels, fy, score_pixels, sy, ctx.seed))
        majority.append(float(np.bincount(sy, minlength=attribute.cardinality).max() / len(sy)))
    return {
        "attributes": schema.names,
        "encoder": encoder_acc,
        "pixels": pixel_acc,
        "chance": [1.0 / a.cardinality for a in schema],
        "majority": majority,
        "encoder_mean": float(np.mean(encoder_acc)),
        "pixels_mean": float(np.mean(pixel_acc)),
        "n_fit": len(fit_items),
        "n_score": len(score_items),
        **probes.describe(),
    }
