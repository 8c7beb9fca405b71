"""Attribute co-prediction (paper 000, Table 1): how well each slot predicts every attribute.

A 3-layer MLP per (slot, attribute) pair is fitted on 80% of the encoded training vectors and scored on the other
20% (a split by item, ``studio.evaluation.probes``; paper 000 splits its encoded vectors 80:20 the same way).
Under perfect disentanglement an attribute's own slot predicts it perfectly (the diagonal) and every other slot
predicts it no better than chance, 1/|values| (the off-diagonal excess is then zero).

The raw excess over chance depends on the cardinalities (an attribute of 3 values can exceed chance by at most
0.67, one of 100 by 0.99), so figures for datasets with other cardinalities than the paper's 52/3/10/10/100 do not
compare. ``off_diagonal_normalised`` divides each entry's excess by its room above chance, (acc - chance) /
(1 - chance), before averaging: 0 is chance, 1 is perfect prediction, whatever the number of values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from studio.evaluation.probes import probe_items
from studio.evaluation.suite import EvalContext, evaluation, fmt, text_table
from studio.methods.base import Method

PROBE_HIDDEN = 64
PROBE_STEPS = 200
PROBE_LR = 1e-2
PROBE_WEIGHT_DECAY = 1e-4
#: Spatial slots larger than this are average-pooled down to about this many features before probing.
MAX_FEATURES = 4096


def has_attribute_slots(method: Method) -> bool:
    return method.can_encode() and any(s.attribute for s in method.slots)


def slot_features(latent: Tensor) -> tuple[Tensor, str]:
    """(N, *shape) -> (N, D) features and how they were made: vectors as they are, spatial slots flattened, or
    average-pooled when flattening would give more than ``MAX_FEATURES`` values."""
    n = latent.shape[0]
    if latent.dim() == 2:
        return latent, f"vector ({latent.shape[1]})"
    if latent.dim() == 4 and latent[0].numel() > MAX_FEATURES:
        c, h, w = latent.shape[1:]
        side = max(1, min(h, w, math.isqrt(max(1, MAX_FEATURES // c))))
        pooled = F.adaptive_avg_pool2d(latent, side)
        return pooled.reshape(n, -1), f"average-pooled {c}x{h}x{w} to {c}x{side}x{side}"
    shape = "x".join(str(d) for d in latent.shape[1:])
    return latent.reshape(n, -1), f"flattened {shape}"


class ProbeBank(nn.Module):
    """Independent 3-layer MLPs, one per (slot, attribute) pair, trained together as one batch.

    Slot ``s`` feeds its features ``x[s]`` to the MLPs of every attribute. Parameters are disjoint and Adam works
    element by element, so training them together gives what training each alone would, in one pass instead of
    one per pair (the pairs are small, so the per-call overhead would dominate).
    """

    def __init__(self, slots: int, in_features: int, classes: list[int], hidden: int,
                 generator: torch.Generator) -> None:
        super().__init__()
        a, widest = len(classes), max(classes)

        def layer(fan_in: int, fan_out: int) -> tuple[nn.Parameter, nn.Parameter]:
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(slots, a, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(slots, a, 1, fan_out, generator=generator) * 2 - 1) * bound
            return nn.Parameter(w), nn.Parameter(b)

        self.w1, self.b1 = layer(in_features, hidden)
        self.w2, self.b2 = layer(hidden, hidden)
        self.w3, self.b3 = layer(hidden, widest)
        # Attributes with fewer values than the widest one get -inf logits for the values they lack.
        pad = torch.zeros(1, a, 1, widest)
        for j, c in enumerate(classes):
            pad[0, j, 0, c:] = float("-inf")
        self.register_buffer("pad", pad)

    def forward(self, x: Tensor) -> Tensor:
        """(S, N, D) -> logits (S, A, N, C)."""
        h = torch.relu(torch.einsum("snd,sadh->sanh", x, self.w1) + self.b1)
        h = torch.relu(h @ self.w2 + self.b2)
        return h @ self.w3 + self.b3 + self.pad


def stack_features(features: list[Tensor]) -> Tensor:
    """Slots' (N, D_s) features -> (S, N, max D), zero-padded; a zero input adds nothing to a probe's first layer."""
    width = max(f.shape[1] for f in features)
    return torch.stack([F.pad(f, (0, width - f.shape[1])) for f in features])


def probe_accuracy(fit_x: Tensor, fit_y: Tensor, score_x: Tensor, score_y: Tensor, classes: list[int],
                   seed: int = 0) -> Tensor:
    """Fit one MLP per slot (first axis of ``fit_x``: (S, N, D)) and attribute (columns of ``fit_y``: (N, A));
    their accuracies on the scored items as (S, A)."""
    mean, std = fit_x.mean(dim=1, keepdim=True), fit_x.std(dim=1, keepdim=True).clamp_min(1e-6)
    fit_x, score_x = (fit_x - mean) / std, (score_x - mean) / std
    generator = torch.Generator().manual_seed(seed)
    bank = ProbeBank(fit_x.shape[0], fit_x.shape[2], classes, PROBE_HIDDEN, generator).to(fit_x.device)
    optimizer = torch.optim.Adam(bank.parameters(), lr=PROBE_LR, weight_decay=PROBE_WEIGHT_DECAY)
    n = fit_x.shape[1]
    targets = fit_y.T.expand(fit_x.shape[0], -1, -1).reshape(-1)  # (S * A * N)
    with torch.enable_grad():
        for _ in range(PROBE_STEPS):
            logits = bank(fit_x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, reduction="sum") / n
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = bank(score_x).argmax(dim=3)  # (S, A, M)
        return (predicted == score_y.T.unsqueeze(0)).float().mean(dim=2)


def normalise(accuracy: float, chance: float) -> float:
    """Accuracy above chance as a fraction of the room above chance: 0 at chance, 1 when always right."""
    return (accuracy - chance) / (1.0 - chance)


def _format(result: dict[str, Any]) -> str:
    attributes = result["attributes"]
    rows = [[slot, *accs] for slot, accs in zip(result["slots"], result["matrix"])]
    rows.append(["chance", *result["chance"]])
    rows.append(["majority", *result["majority"]])
    table = text_table(["slot \\ attribute", *attributes], rows, digits=2)
    diagonal = ", ".join(f"{a} {fmt(d, 2)}" for a, d in zip(attributes, result["diagonal"]))
    return (f"{table}\n"
            f"diagonal (own slot): {diagonal}\n"
            f"off-diagonal excess over chance: {fmt(result['off_diagonal_excess'], 3)} raw, "
            f"{fmt(result['off_diagonal_normalised'], 3)} normalised, (acc - chance) / (1 - chance) (0 is perfect)\n"
            f"probes: {result['probe_split']}")


@evaluation("coprediction", applies=has_attribute_slots, order=20,
            title="Attribute co-prediction (paper 000, Table 1)", formatter=_format)
def coprediction(ctx: EvalContext) -> dict[str, Any]:
    """Accuracy of a small MLP from every slot to every attribute, on encoded items the probes were not fitted on."""
    probes = probe_items(ctx, prefer="train")
    fit_items, score_items = probes.fit, probes.score
    schema = ctx.dataset.schema
    classes = schema.cardinalities
    fit_lat, score_lat = ctx.encode(fit_items), ctx.encode(score_items)
    fit_y = torch.from_numpy(ctx.dataset.codes[fit_items].astype(np.int64)).to(ctx.device)
    score_y = torch.from_numpy(ctx.dataset.codes[score_items].astype(np.int64)).to(ctx.device)
    slots = ctx.method.slots
    fit_x, score_x, features = [], [], {}
    for slot in slots:
        fx, how = slot_features(fit_lat[slot.name])
        fit_x.append(fx.float())
        score_x.append(slot_features(score_lat[slot.name])[0].float())
        features[slot.name] = how
    accuracy = probe_accuracy(stack_features(fit_x), fit_y, stack_features(score_x), score_y, classes, ctx.seed)
    matrix: list[list[float]] = accuracy.cpu().tolist()
    chance = [1.0 / c for c in classes]
    counts = [np.bincount(ctx.dataset.codes[score_items, j], minlength=c) for j, c in enumerate(classes)]
    majority = [float(c.max() / c.sum()) for c in counts]
    row_of = {s.attribute: r for r, s in enumerate(slots) if s.attribute}
    diagonal = [matrix[row_of[a]][j] if a in row_of else None for j, a in enumerate(schema.names)]
    excess = [matrix[r][j] - chance[j] for r, s in enumerate(slots) if s.attribute
              for j, a in enumerate(schema.names) if a != s.attribute]
    normalised = [normalise(matrix[r][j], chance[j]) for r, s in enumerate(slots) if s.attribute
                  for j, a in enumerate(schema.names) if a != s.attribute and chance[j] < 1]
    diagonal_normalised = [normalise(d, c) if d is not None and c < 1 else None for d, c in zip(diagonal, chance)]
    return {
        "attributes": schema.names,
        "slots": [s.name for s in slots],
        "matrix": matrix,
        "chance": chance,
        "majority": majority,
        "diagonal": diagonal,
        "off_diagonal_excess": float(np.mean(excess)) if excess else None,
        "off_diagonal_normalised": float(np.mean(normalised)) if normalised else None,
        "diagonal_normalised": diagonal_normalised,
        "features": features,
        "n_fit": len(fit_items),
        "n_score": len(score_items),
        **probes.describe(),
        "probe": f"3-layer MLP ({PROBE_HIDDEN} hidden), full-batch Adam for {PROBE_STEPS} steps on standardised "
                 "features; off-diagonal excess over slots that carry an attribute only",
    }
