"""Reconstruction quality on training and held-out items: how much the autoencoder loses before any swapping.

A gap between the two shows how far the model fails to generalise to combinations it never saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from studio.evaluation.metrics import ImageScores
from studio.evaluation.suite import EvalContext, evaluation, text_table


@torch.no_grad()
def _scores(ctx: EvalContext, items: np.ndarray) -> ImageScores:
    scores = ImageScores()
    for start in range(0, len(items), ctx.batch_size):
        truth = ctx.images(items[start:start + ctx.batch_size])
        scores.add(ctx.method.decode(ctx.method.encode(truth)).float().clamp(-1, 1), truth)
    return scores


def _format(result: dict[str, Any]) -> str:
    rows = [[f"{part} ({result[f'n_{part}']} items)", result[f"{part}_mse"], result[f"{part}_psnr"],
             result[f"{part}_ssim"]] for part in ("train", "test")]
    return text_table(["", "MSE", "PSNR dB", "SSIM"], rows, digits=4)


@evaluation("reconstruction", applies=lambda m: m.can_encode(), order=30, title="Reconstruction",
            formatter=_format)
def reconstruction(ctx: EvalContext) -> dict[str, Any]:
    """Encode and decode up to ``max_items`` training and test items each; MSE, PSNR and SSIM against the inputs."""
    result: dict[str, Any] = {}
    for part, items in (("train", ctx.split.train), ("test", ctx.split.test)):
        scores = _scores(ctx, ctx.subsample(items))
        for key, value in scores.means().items():
            result[f"{part}_{key}"] = value
        result[f"n_{part}"] = scores.count
    return result
