"""Figures of paper 004 (Oldfield et al.) for the adversarial method.

- code_entropy (Fig. 5): the entropy of every attribute classifier's posterior on every code. Disentangled codes
  give near-zero entropy for their own attribute and near-maximal entropy (1.0 once divided by log K) for the
  others; the residual code should leave every classifier guessing. These are the model's own classifiers, the
  ones its adversarial loss plays against (the paper's figure); ``coprediction`` fits fresh probes on the codes.
- shuffled_synthesis (Table IV): give held-out items another held-out item's code for one attribute (or, as in
  training, every attribute from a different donor), decode, and let a classifier trained on real training images
  only (the judge of ``studio.evaluation.judge``, shared by every evaluation) read the result: it should see the
  donor's value for the moved attribute and the recipient's values for the rest.

Zero-shot MSE/PSNR against ground truth comes from the generic ``zero_shot`` evaluation (every attribute has a
slot here, so it applies), and co-prediction probes from ``coprediction``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from studio.evaluation.deae_eval import AttributeClassifier
from studio.evaluation.judge import JudgeNet, context_judge, judge_items
from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, fmt, text_table
from studio.methods.base import Method
from studio.methods.losses import entropy


def is_adversarial(method: Method) -> bool:
    return method.name == "adversarial" and method.can_encode()


def _labels(ctx: EvalContext, items: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(ctx.dataset.codes[items].astype(np.int64)).to(ctx.device)


# --- Fig. 5: classifier entropy on codes -------------------------------------------------------------------
def _format_entropy(result: dict[str, Any]) -> str:
    attributes = result["attributes"]
    ent = text_table(["code \\ classifier", *attributes],
                     [[s, *row] for s, row in zip(result["slots"], result["entropy"])], digits=2)
    acc = text_table(["code \\ classifier", *attributes],
                     [[s, *row] for s, row in zip(result["slots"], result["accuracy"])], digits=2)
    return (f"entropy / log(values) (1 = uniform posterior, 0 = certain)\n{ent}\n"
            f"own attribute {fmt(result['own_entropy'], 3)}, other attributes {fmt(result['other_entropy'], 3)}, "
            f"residual code {fmt(result['residual_entropy'], 3)}  (disentangled: ~0, ~1, ~1)\n"
            f"accuracy of the classifiers on the codes (chance: {', '.join(fmt(c, 2) for c in result['chance'])})\n"
            f"{acc}\n{result['n']} held-out items")


@evaluation("code_entropy", applies=is_adversarial, order=45,
            title="Classifier entropy on codes (paper 004, Fig. 5)", formatter=_format_entropy)
@torch.no_grad()
def code_entropy(ctx: EvalContext) -> dict[str, Any]:
    """Mean normalised entropy and accuracy of every attribute classifier on every slot's code of held-out items."""
    items = ctx.subsample(ctx.split.test)
    if len(items) == 0:
        raise EvaluationSkipped("the split holds out no test items")
    method = ctx.method
    schema = ctx.dataset.schema
    latents = ctx.encode(items)
    labels = _labels(ctx, items)
    entropy_rows, nats_rows, accuracy_rows = [], [], []
    for slot in method.slots:
        logits = method.classify_code(latents[slot.name])  # type: ignore[attr-defined]
        nats = [float(entropy(lg).mean()) for lg in logits]
        nats_rows.append(nats)
        entropy_rows.append([h / math.log(a.cardinality) if a.cardinality > 1 else 0.0
                             for h, a in zip(nats, schema)])
        accuracy_rows.append([float((lg.argmax(1) == labels[:, j]).float().mean()) for j, lg in enumerate(logits)])
    names = schema.names
    own, other, residual = [], [], []
    for slot, row in zip(method.slots, entropy_rows):
        for j, a in enumerate(names):
            if slot.attribute is None:
                residual.append(row[j])
            elif slot.attribute == a:
                own.append(row[j])
            else:
                other.append(row[j])
    return {
        "attributes": names,
        "slots": [s.name for s in method.slots],
        "entropy": entropy_rows,
        "entropy_nats": nats_rows,
        "accuracy": accuracy_rows,
        "chance": [1.0 / a.cardinality for a in schema],
        "own_entropy": float(np.mean(own)) if own else None,
        "other_entropy": float(np.mean(other)) if other else None,
        "residual_entropy": float(np.mean(residual)) if residual else None,
        "n": len(items),
    }


# --- Table IV: shuffled syntheses judged by a classifier of real images ---------------------------------
def _format_synthesis(result: dict[str, Any]) -> str:
    rows = []
    for a, r in result["per_attribute"].items():
        rows.append([a, r["donor"], r["donor_changed"], r["kept"], r["own_classifier"], r["all_shuffled"],
                     r["real_images"]])
    table = text_table(["moved attribute", "donor", "donor (changed)", "others kept", "model's classifier",
                        "all shuffled", "judge on real"], rows, digits=3)
    return (f"{table}\n"
            f"mean donor accuracy {fmt(result['donor_accuracy'], 3)} (only where the value changes: "
            f"{fmt(result['donor_accuracy_changed'], 3)}); others kept {fmt(result['kept_accuracy'], 3)}; "
            f"all attributes shuffled {fmt(result['all_shuffled_accuracy'], 3)}\n"
            f"{result['n']} held-out recipients and donors; judge: a CNN trained on {result['judge_items']} real "
            "training images")


@evaluation("shuffled_synthesis", applies=is_adversarial, order=46,
            title="Shuffled-code synthesis judged on real images (paper 004, Table IV)", formatter=_format_synthesis)
def shuffled_synthesis(ctx: EvalContext) -> dict[str, Any]:
    """How often a classifier of real images sees the donor's value in syntheses with swapped attribute codes."""
    if len(ctx.split.test) < 2:
        raise EvaluationSkipped("the test split has fewer than two items")
    return judged_synthesis(ctx, context_judge(ctx))


@torch.no_grad()
def judged_synthesis(ctx: EvalContext, judge: JudgeNet | AttributeClassifier) -> dict[str, Any]:
    """The figures of ``shuffled_synthesis`` with a given judge (any classifier of real images)."""
    items = ctx.subsample(ctx.split.test)
    method = ctx.method
    names = ctx.dataset.schema.names
    labels = _labels(ctx, items)
    real_pred = judge.predict(ctx.images(items))
    real_acc = (real_pred == labels).float().mean(dim=0).tolist()
    latents = ctx.encode(items)
    n = len(items)
    per_attribute: dict[str, dict[str, float | None]] = {}
    for m, name in enumerate(names):
        donors = torch.as_tensor(ctx.rng.permutation(n), device=ctx.device)
        images = ctx.decode({**latents, name: latents[name][donors]})
        pred = judge.predict(images)
        wanted = labels[donors, m]
        hit = pred[:, m] == wanted
        changed = wanted != labels[:, m]
        others = [j for j in range(len(names)) if j != m]
        kept = (pred[:, others] == labels[:, others]).float().mean() if others else torch.tensor(math.nan)
        own = torch.cat([method.classify_images(images[s:s + ctx.batch_size])[m].argmax(1)  # type: ignore[attr-defined]
                         for s in range(0, n, ctx.batch_size)])
        per_attribute[name] = {
            "donor": float(hit.float().mean()),
            "donor_changed": float(hit[changed].float().mean()) if bool(changed.any()) else None,
            "kept": float(kept),
            "own_classifier": float((own == wanted).float().mean()),
            "real_images": real_acc[m],
        }
    # every attribute from its own donor, the residual kept: the synthesis the generator is trained on
    perms = [torch.as_tensor(ctx.rng.permutation(n), device=ctx.device) for _ in names]
    shuffled = dict(latents)
    for name, perm in zip(names, perms):
        shuffled[name] = latents[name][perm]
    pred = judge.predict(ctx.decode(shuffled))
    for m, (name, perm) in enumerate(zip(names, perms)):
        per_attribute[name]["all_shuffled"] = float((pred[:, m] == labels[perm, m]).float().mean())
    changed_values = [r["donor_changed"] for r in per_attribute.values() if r["donor_changed"] is not None]
    return {
        "per_attribute": per_attribute,
        "donor_accuracy": float(np.mean([r["donor"] for r in per_attribute.values()])),
        "donor_accuracy_changed": float(np.mean(changed_values)) if changed_values else None,
        "kept_accuracy": float(np.nanmean([r["kept"] for r in per_attribute.values()])),
        "all_shuffled_accuracy": float(np.mean([r["all_shuffled"] for r in per_attribute.values()])),
        "judge_real_accuracy": float(np.mean(real_acc)),
        "n": n,
        "judge_items": len(judge_items(ctx.split.train, ctx.seed)),
    }
