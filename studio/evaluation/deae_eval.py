"""Interpolation quality (paper 003, section 3.2): move one attribute's slot between two held-out items, decode,
encode again, and see whether the other slots stayed where they were and the picture kept its other attributes.

Two figures per attribute slot:
- deviation: how far the re-encoded *other* slots moved from the first item's, relative to how far apart two
  items' slots typically are (0 is perfect, 1 means the slot lost its value). Relative, so models whose latents
  have different scales compare fairly; the raw mean squared deviation is reported as well.
- agreement: the judge (``studio.evaluation.judge``: a classifier trained on the real training images, never on
  the model) reads the decoded in-between images; the attributes that were not interpolated should keep the first
  item's values. DEAE's own training objective plays no part in it.

``studio eval`` reports it for DEAE; ``interpolation_quality`` works for every method whose slots name attributes,
and ``benchmarks/compare_deae_gzs.py`` prints DEAE's figures next to GZS-Net's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from studio.errors import StudioError
from studio.evaluation.judge import context_judge
from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, fmt, text_table
from studio.methods.base import Method
from studio.methods.deae import DEAE
from studio.training.data import to_tensor

INTERPOLATION_POINTS = (0.25, 0.5, 0.75)
CLASSIFIER_STEPS = 400
CLASSIFIER_BATCH = 128


# --- a small image classifier: the judge of decoded images ------------------------------------------------
class AttributeClassifier(nn.Module):
    """Four small convolutions, global pooling, one linear head per attribute. Tiny on purpose: it only has to
    tell Fonts-like attributes apart, and it trains in well under a minute on a CPU."""

    def __init__(self, classes: list[int], width: int = 32) -> None:
        super().__init__()
        self.classes = list(classes)
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.GroupNorm(4, width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.GroupNorm(4, 2 * width), nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.GroupNorm(4, 4 * width), nn.ReLU(),
            nn.Conv2d(4 * width, 4 * width, 4, 2, 1), nn.GroupNorm(4, 4 * width), nn.ReLU(),
        )
        self.heads = nn.Linear(4 * width * 4, sum(classes))

    def forward(self, images: Tensor) -> list[Tensor]:
        """Images in [-1, 1] -> logits per attribute."""
        h = F.adaptive_avg_pool2d(self.features(images), 2).flatten(1)
        return list(torch.split(self.heads(h), self.classes, dim=1))

    @torch.no_grad()
    def predict(self, images: Tensor, batch: int = 256) -> Tensor:
        """(N, K) predicted value indices."""
        out = []
        for start in range(0, len(images), batch):
            logits = self(images[start:start + batch])
            out.append(torch.stack([lg.argmax(dim=1) for lg in logits], dim=1))
        return torch.cat(out) if out else torch.empty(0, len(self.classes), dtype=torch.long)


def train_classifier(images: np.ndarray, labels: np.ndarray, classes: list[int], *, steps: int = CLASSIFIER_STEPS,
                     batch: int = CLASSIFIER_BATCH, seed: int = 0, device: torch.device | str = "cpu",
                     width: int = 32, augment_shift: int = 0) -> AttributeClassifier:
    """Fit an ``AttributeClassifier`` on uint8 images (N, H, W, 3) with labels (N, K); ``augment_shift`` > 0
    shifts images by up to that many pixels (a little robustness for downstream experiments)."""
    if len(images) == 0:
        raise StudioError("no images to train the attribute classifier on")
    generator = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = AttributeClassifier(classes, width).to(device)
    torch.random.set_rng_state(torch_state)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    pixels = torch.from_numpy(np.ascontiguousarray(images))
    targets = torch.from_numpy(labels.astype(np.int64)).to(device)
    model.train()
    with torch.enable_grad():
        for _ in range(steps):
            idx = torch.randint(len(pixels), (min(batch, len(pixels)),), generator=generator)
            x = to_tensor(pixels[idx].numpy(), device)
            if augment_shift > 0:
                dx, dy = (int(v) for v in torch.randint(-augment_shift, augment_shift + 1, (2,), generator=generator))
                x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            logits = model(x)
            loss = sum(F.cross_entropy(lg, targets[idx.to(device), j]) for j, lg in enumerate(logits))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


# --- the evaluation ---------------------------------------------------------------------------------------
def has_attribute_slots(method: Method) -> bool:
    return method.can_encode() and sum(1 for s in method.slots if s.attribute) >= 2


@torch.no_grad()
def _encode_images(ctx: EvalContext, images: Tensor) -> dict[str, Tensor]:
    """Slots of image tensors (decoded pictures, not dataset items), in batches."""
    parts: dict[str, list[Tensor]] = {}
    for start in range(0, len(images), ctx.batch_size):
        for name, value in ctx.method.encode(images[start:start + ctx.batch_size]).items():
            parts.setdefault(name, []).append(value.float())
    return {name: torch.cat(values) for name, values in parts.items()}


def _distance(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared difference per row, over all of a slot's values."""
    return (a - b).flatten(1).pow(2).mean(dim=1)


@torch.no_grad()
def interpolation_quality(ctx: EvalContext, points: tuple[float, ...] = INTERPOLATION_POINTS,
                          use_classifier: bool = True) -> dict[str, Any]:
    """Figures per attribute slot for held-out pairs (a, b): slot k moves from a's value toward b's, the rest
    stays a's."""
    method = ctx.method
    test = ctx.subsample(ctx.split.test)
    if len(test) < 2:
        raise EvaluationSkipped("the test split has fewer than two items")
    first = test
    second = ctx.rng.permutation(test)
    za, zb = ctx.encode(first), ctx.encode(second)
    slots = method.slots
    scale = {s.name: float(_distance(za[s.name], zb[s.name]).mean().clamp_min(1e-12)) for s in slots}
    schema = ctx.dataset.schema
    codes_a = torch.from_numpy(ctx.dataset.codes[first].astype(np.int64)).to(ctx.device)
    codes_b = torch.from_numpy(ctx.dataset.codes[second].astype(np.int64)).to(ctx.device)
    judge = context_judge(ctx) if use_classifier else None  # the shared judge of real images, not DEAE's own

    def other_deviation(again: dict[str, Tensor], moved: str | None) -> tuple[float, float]:
        rel, raw = [], []
        for s in slots:
            if s.name == moved:
                continue
            d = _distance(again[s.name], za[s.name])
            rel.append(float(d.mean()) / scale[s.name])
            raw.append(float(d.mean()))
        return float(np.mean(rel)), float(np.mean(raw))

    reference_images = ctx.decode(za)
    reference_rel, reference_raw = other_deviation(_encode_images(ctx, reference_images), None)
    rows: list[dict[str, Any]] = []
    for s in slots:
        if not s.attribute:
            continue
        k = schema.position(s.attribute)
        kept = [j for j in range(len(schema)) if j != k]
        rel, raw, agree, valid = [], [], [], []
        for t in points:
            mixed = dict(za)
            mixed[s.name] = (1 - t) * za[s.name] + t * zb[s.name]
            images = ctx.decode(mixed)
            r, w = other_deviation(_encode_images(ctx, images), s.name)
            rel.append(r)
            raw.append(w)
            if judge is not None:
                predicted = judge.predict(images)
                agree.append(float((predicted[:, kept] == codes_a[:, kept]).float().mean()) if kept else 1.0)
                hit = (predicted[:, k] == codes_a[:, k]) | (predicted[:, k] == codes_b[:, k])
                valid.append(float(hit.float().mean()))
        rows.append({"slot": s.name, "attribute": s.attribute, "deviation": float(np.mean(rel)),
                     "deviation_raw": float(np.mean(raw)),
                     "kept_agreement": float(np.mean(agree)) if agree else None,
                     "moved_valid": float(np.mean(valid)) if valid else None})
    result: dict[str, Any] = {
        "points": list(points),
        "per_slot": rows,
        "deviation": float(np.mean([r["deviation"] for r in rows])),
        "deviation_raw": float(np.mean([r["deviation_raw"] for r in rows])),
        "reconstruction_deviation": reference_rel,
        "reconstruction_deviation_raw": reference_raw,
        "n_pairs": len(first),
    }
    if judge is not None:
        real = judge.predict(ctx.images(first))
        result["kept_agreement"] = float(np.mean([r["kept_agreement"] for r in rows]))
        result["moved_valid"] = float(np.mean([r["moved_valid"] for r in rows]))
        result["classifier_accuracy_real"] = (real == codes_a).float().mean(dim=0).tolist()
        recon = judge.predict(reference_images)
        result["classifier_agreement_reconstruction"] = float((recon == codes_a).float().mean())
    return result


def _format(result: dict[str, Any]) -> str:
    rows = [[r["attribute"], r["deviation"], r["deviation_raw"], r["kept_agreement"], r["moved_valid"]]
            for r in result["per_slot"]]
    rows.append(["mean", result["deviation"], result["deviation_raw"], result.get("kept_agreement"),
                 result.get("moved_valid")])
    rows.append(["(no interpolation)", result["reconstruction_deviation"], result["reconstruction_deviation_raw"],
                 result.get("classifier_agreement_reconstruction"), None])
    table = text_table(["interpolated slot", "deviation", "raw MSE", "kept agree", "moved valid"], rows, digits=3)
    lines = [table,
             f"{result['n_pairs']} held-out pairs at t = {', '.join(fmt(t, 2) for t in result['points'])}; "
             "deviation: re-encoded other slots' squared distance from the originals, relative to the distance "
             "between two items' slots (lower is better)"]
    if "classifier_accuracy_real" in result:
        acc = ", ".join(fmt(a, 2) for a in result["classifier_accuracy_real"])
        lines.append("kept agree: the judge (a classifier of real images) reads the untouched attributes as the first "
                     "item's; moved valid: it reads the moved one as either end's value. Judge accuracy on real test "
                     f"images: {acc}")
    return "\n".join(lines)


def is_deae(method: Method) -> bool:
    """``studio eval`` runs this for DEAE, whose figure it is; the function itself takes any model whose slots
    name attributes, and the comparison script runs it on GZS-Net too (the ``judge`` evaluation reports slot swaps
    and interpolation end points for every method)."""
    return isinstance(method, DEAE) and has_attribute_slots(method)


@evaluation("interpolation", applies=is_deae, order=40,
            title="Interpolation quality (paper 003, section 3.2)", formatter=_format)
def interpolation(ctx: EvalContext) -> dict[str, Any]:
    return interpolation_quality(ctx)
