"""Exhaustive search (paper 000, appendix B.1): give a model with one flat latent (``ae``, ``betavae``) the best
partitioning of its latent among the attributes that a search can find, then synthesise the zero-shot targets.

The encoded training vectors are split 80:20 by item (``studio.evaluation.probes``); ``candidates`` random
partitionings of the latent dimensions, evenly among the attributes, are each scored by a 3-layer MLP per attribute
from that attribute's dimensions (fitted on the 80, scored on the 20), and the best mean accuracy wins. The
zero-shot queries are the ``zero_shot`` evaluation's (same targets, same strict and greedy sources), so the
figures sit next to a GZS-Net's on the same dataset and split; the judge reads the syntheses as it reads GZS-Net's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from studio.evaluation.coprediction import probe_accuracy
from studio.evaluation.judge import _labels, _per_attribute, context_judge
from studio.evaluation.metrics import ImageScores
from studio.evaluation.probes import probe_items
from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, fmt, text_table
from studio.evaluation.zero_shot import PROTOCOLS, _queries, query_statistics, zero_shot_targets
from studio.methods.base import Method

#: Random partitionings tried (the paper samples K of them; it does not say how many).
DEFAULT_CANDIDATES = 32


def has_one_flat_latent(method: Method) -> bool:
    """Models whose single slot is a vector that names no attribute: the paper's AE and beta-VAE baselines."""
    slots = method.slots
    return (method.can_encode() and len(slots) == 1 and slots[0].attribute is None and len(slots[0].shape) == 1
            and len(method.context.schema) >= 1)


def random_partitions(dims: int, parts: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random even partitionings of ``dims`` latent dimensions into ``parts`` groups, as (count, dims)
    group indices (group sizes differ by at most one)."""
    if dims < parts:
        raise EvaluationSkipped(f"the latent has {dims} dimensions, fewer than the {parts} attributes to share them")
    base = np.arange(dims) % parts
    return np.stack([rng.permutation(base) for _ in range(count)])


def score_partitions(fit_z: Tensor, score_z: Tensor, fit_y: Tensor, score_y: Tensor, partitions: np.ndarray,
                     classes: list[int], seed: int) -> np.ndarray:
    """(count, attributes) accuracy of a probe per attribute from its group of dimensions, per partitioning."""
    count, parts = partitions.shape[0], len(classes)
    accuracy = np.zeros((count, parts))
    for j, c in enumerate(classes):
        picks = [torch.as_tensor(np.flatnonzero(p == j), device=fit_z.device) for p in partitions]
        fit_x = torch.stack([fit_z[:, idx] for idx in picks])  # (count, N, d_j)
        score_x = torch.stack([score_z[:, idx] for idx in picks])
        accuracy[:, j] = probe_accuracy(fit_x, fit_y[:, j:j + 1], score_x, score_y[:, j:j + 1], [c],
                                        seed).cpu().numpy()[:, 0]
    return accuracy


def _format(result: dict[str, Any]) -> str:
    rows = []
    for protocol in PROTOCOLS:
        if protocol in result:
            r = result[protocol]
            rows.append([f"synthesis, {protocol} query", r["mse"], r["psnr"], r["ssim"], r.get("judge_mean")])
    table = text_table(["", "MSE", "PSNR dB", "SSIM", "judge"], rows, digits=4)
    acc = ", ".join(f"{a} {fmt(v, 2)}" for a, v in zip(result["attributes"], result["partition_accuracy"]))
    return (f"{table}\nbest of {result['candidates']} random partitionings of the {result['latent_dim']}-d latent "
            f"(probe accuracy per attribute: {acc}; the worst tried: {fmt(result['worst_partition_score'], 3)})\n"
            f"probes: {result['probe_split']}; {result['n']} held-out combinations")


@evaluation("exhaustive_search", applies=has_one_flat_latent, order=12,
            title="Zero-shot synthesis with an exhaustive search of the latent (paper 000, Table 2, +ES)",
            formatter=_format)
@torch.no_grad()
def exhaustive_search(ctx: EvalContext) -> dict[str, Any]:
    """Find the latent partitioning that best predicts the attributes, then swap by it on the zero-shot targets."""
    schema = ctx.dataset.schema
    slot = ctx.method.slots[0].name
    probes = probe_items(ctx, prefer="train")
    fit_z, score_z = ctx.encode(probes.fit)[slot], ctx.encode(probes.score)[slot]
    fit_y, score_y = _labels(ctx, probes.fit), _labels(ctx, probes.score)
    partitions = random_partitions(fit_z.shape[1], len(schema), ctx.es_candidates, ctx.rng)
    mean_z, std_z = fit_z.mean(dim=0), fit_z.std(dim=0).clamp_min(1e-6)
    accuracy = score_partitions((fit_z - mean_z) / std_z, (score_z - mean_z) / std_z, fit_y, score_y, partitions,
                                schema.cardinalities, ctx.seed)
    scores = accuracy.mean(axis=1)
    best = int(np.argmax(scores))
    partition = partitions[best]
    result: dict[str, Any] = {
        "attributes": schema.names,
        "latent_dim": int(fit_z.shape[1]),
        "candidates": len(partitions),
        "partition": [np.flatnonzero(partition == j).tolist() for j in range(len(schema))],
        "partition_accuracy": accuracy[best].tolist(),
        "partition_score": float(scores[best]),
        "worst_partition_score": float(scores.min()),
        **probes.describe(),
    }
    if len(ctx.split.test) == 0:
        raise EvaluationSkipped("the split holds out no test items")
    targets = zero_shot_targets(ctx)
    result["n"] = len(targets)
    dims = [torch.as_tensor(np.flatnonzero(partition == j), device=ctx.device) for j in range(len(schema))]
    judge = context_judge(ctx)
    truth_labels = _labels(ctx, targets)
    for protocol in (p for p in PROTOCOLS if p in ctx.protocols):
        queries = _queries(ctx, targets, protocol)
        scores_p = ImageScores()
        predicted = []
        for start in range(0, len(targets), ctx.batch_size):
            part = queries[start:start + ctx.batch_size]
            z = torch.zeros(len(part), fit_z.shape[1], device=ctx.device)
            for j in range(len(schema)):
                z[:, dims[j]] = ctx.encode([q[j] for q in part])[slot][:, dims[j]]
            images = ctx.decode({slot: z})
            scores_p.add(images, ctx.images(targets[start:start + ctx.batch_size]))
            predicted.append(judge.predict(images))
        judged = _per_attribute(torch.cat(predicted) == truth_labels)
        result[protocol] = {**scores_p.means(), **query_statistics(ctx, targets, queries), "n": scores_p.count,
                            "judge": judged, "judge_mean": float(np.mean(judged))}
    return result
