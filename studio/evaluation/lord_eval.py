"""LORD's own figures (paper 001, Tables 1-2): is the class out of the content code, is the rest out of the class
code, and does putting one image's content under another image's class give the right picture?

Class-from-content accuracy should sit at chance: that is what latent optimisation with noisy content codes is
for. ``class_leakage`` works for any method whose slots name the class attribute (GZS-Net's other chunks play
the content's part), so a report can put LORD's figure next to GZS-Net's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from studio.evaluation.coprediction import probe_accuracy, slot_features, stack_features
from studio.evaluation.metrics import ImageScores
from studio.evaluation.probes import probe_items
from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, fmt, text_table
from studio.methods.base import Method
from studio.methods.lord import CLASS_SLOT, CONTENT_SLOT, Lord
from studio.training.data import to_tensor


def is_lord(method: Method) -> bool:
    return isinstance(method, Lord)


def class_attribute_of(method: Method) -> str:
    if isinstance(method, Lord):
        return method.config.class_attribute
    named = [s.attribute for s in method.slots if s.attribute]
    if not named:
        raise EvaluationSkipped(f"the {method.name} model has no slot tied to an attribute")
    return named[0]


def _split_slots(method: Method, attribute: str) -> tuple[list[str], list[str]]:
    """Slots that carry ``attribute`` (the class side) and all others (the content side)."""
    own = [s.name for s in method.slots if s.attribute == attribute]
    rest = [s.name for s in method.slots if s.attribute != attribute]
    if not own or not rest:
        raise EvaluationSkipped(f"the {method.name} model has no separate class and content slots for {attribute}")
    return own, rest


def _features(latents: dict[str, Tensor], names: list[str]) -> Tensor:
    return torch.cat([slot_features(latents[n])[0] for n in names], dim=1)


def _probe_table(fit: dict[str, Tensor], score: dict[str, Tensor], fit_codes: np.ndarray, score_codes: np.ndarray,
                 ctx: EvalContext, class_slots: list[str], content_slots: list[str]) -> dict[str, Any]:
    """Accuracy of every attribute from the class side and from the content side, with chance and majority."""
    schema = ctx.dataset.schema
    classes = schema.cardinalities
    fit_y = torch.from_numpy(fit_codes.astype(np.int64)).to(ctx.device)
    score_y = torch.from_numpy(score_codes.astype(np.int64)).to(ctx.device)
    fit_x = stack_features([_features(fit, class_slots), _features(fit, content_slots)])
    score_x = stack_features([_features(score, class_slots), _features(score, content_slots)])
    from_class, from_content = probe_accuracy(fit_x, fit_y, score_x, score_y, classes, seed=ctx.seed).tolist()
    majority = [float(np.bincount(score_codes[:, j], minlength=c).max() / len(score_codes))
                for j, c in enumerate(classes)]
    return {"attributes": schema.names, "from_class": from_class, "from_content": from_content,
            "chance": [1.0 / c for c in classes], "majority": majority,
            "n_fit": len(fit_codes), "n_score": len(score_codes)}


def class_leakage(ctx: EvalContext, attribute: str | None = None) -> dict[str, Any]:
    """Probes on held-out (test) items, encoded: the class attribute from the content side (should be chance)
    and the other attributes from the class side (should be chance too). The probes split the held-out items
    80:20 by item; where the held-out items lack some values (one label column: whole classes are held out),
    all items are used instead (``probe_pool`` says which)."""
    method = ctx.method
    attribute = attribute or class_attribute_of(method)
    class_slots, content_slots = _split_slots(method, attribute)
    probes = probe_items(ctx, prefer="test")
    fit_items, score_items = probes.fit, probes.score
    table = _probe_table(ctx.encode(fit_items), ctx.encode(score_items), ctx.dataset.codes[fit_items],
                         ctx.dataset.codes[score_items], ctx, class_slots, content_slots)
    return {**_summarise(table, ctx.dataset.schema.position(attribute), attribute, class_slots, content_slots),
            **probes.describe()}


def _summarise(table: dict[str, Any], position: int, attribute: str, class_slots: list[str],
               content_slots: list[str]) -> dict[str, Any]:
    others = [j for j in range(len(table["attributes"])) if j != position]
    excess = [table["from_class"][j] - table["chance"][j] for j in others]
    return {
        **table,
        "class_attribute": attribute,
        "class_slots": class_slots,
        "content_slots": content_slots,
        "class_from_content": table["from_content"][position],
        "class_from_content_chance": table["chance"][position],
        "class_from_class": table["from_class"][position],
        "others_from_class_excess": float(np.mean(excess)) if excess else None,
    }


def _stage1_leakage(ctx: EvalContext, lord: Lord) -> dict[str, Any] | None:
    """The same probes on the latent-optimised codes of training items (what stage 1 learned), or None when
    the split does not match the one the model was trained with."""
    train = ctx.split.train
    if len(train) != lord.context.num_train_items or len(train) < 4:
        return None
    items = ctx.subsample(train)
    perm = ctx.rng.permutation(items)
    half = len(perm) // 2
    fit_items, score_items = np.sort(perm[:half]), np.sort(perm[half:])

    def codes(items: np.ndarray) -> dict[str, Tensor]:
        positions = torch.as_tensor(np.searchsorted(train, items), device=ctx.device)
        classes = torch.as_tensor(ctx.dataset.codes[items, lord.class_position].astype(np.int64), device=ctx.device)
        with torch.no_grad():
            return {k: v.float() for k, v in lord.stage1_codes(positions, classes).items()}

    table = _probe_table(codes(fit_items), codes(score_items), ctx.dataset.codes[fit_items],
                         ctx.dataset.codes[score_items], ctx, [CLASS_SLOT], [CONTENT_SLOT])
    return _summarise(table, lord.class_position, lord.config.class_attribute, [CLASS_SLOT], [CONTENT_SLOT])


def format_leakage(result: dict[str, Any]) -> str:
    rows = [["from class code", *result["from_class"]], ["from content code", *result["from_content"]],
            ["chance", *result["chance"]], ["majority", *result["majority"]]]
    table = text_table(["accuracy \\ attribute", *result["attributes"]], rows, digits=2)
    return (f"{table}\n"
            f"class ({result['class_attribute']}) from content: {fmt(result['class_from_content'], 3)} "
            f"(chance {fmt(result['class_from_content_chance'], 3)}; lower is better)\n"
            f"other attributes from class code: {fmt(result['others_from_class_excess'], 3)} above chance\n"
            f"probes fitted on {result['n_fit']} items, scored on {result['n_score']}"
            + (f" ({result['probe_split']})" if result.get("probe_split") else ""))


def _format(result: dict[str, Any]) -> str:
    parts = []
    if "test" in result:
        parts.append("held-out items, encoded (stage 2):\n" + format_leakage(result["test"]))
    else:
        parts.append(f"held-out items: {result.get('test_skipped', 'not evaluated')}")
    if result.get("stage1") is not None:
        parts.append("training items, latent-optimised codes (stage 1):\n" + format_leakage(result["stage1"]))
    return "\n\n".join(parts)


@evaluation("lord_disentanglement", applies=is_lord, order=30,
            title="Class/content disentanglement (paper 001, Table 2)", formatter=_format)
def lord_disentanglement(ctx: EvalContext) -> dict[str, Any]:
    """Class from content codes and other attributes from class codes, next to chance; on encoded test items
    (once the encoders exist) and on the stage-1 codes of training items."""
    lord = ctx.method
    assert isinstance(lord, Lord)
    result: dict[str, Any] = {"stage1": _stage1_leakage(ctx, lord)}
    try:
        result["test"] = class_leakage(ctx)
    except EvaluationSkipped as e:
        if result["stage1"] is None:
            raise
        result["test_skipped"] = str(e)
    return result


def _transfer_format(result: dict[str, Any]) -> str:
    rows = [["transfer", result["mse"], result["psnr"], result["ssim"]],
            ["content image as is", *[result["baseline_content"][k] for k in ("mse", "psnr", "ssim")]],
            ["class image as is", *[result["baseline_class"][k] for k in ("mse", "psnr", "ssim")]]]
    table = text_table(["vs true image", "MSE", "PSNR dB", "SSIM"], rows, digits=4)
    return (f"{table}\n{result['n']} held-out pairs of different classes with a true rendering (class of one, "
            "content of the other)")


@evaluation("content_transfer", applies=lambda m: is_lord(m) and m.can_encode(), order=31,
            title="Content transfer vs ground truth (paper 001, Table 1)", formatter=_transfer_format)
def content_transfer(ctx: EvalContext) -> dict[str, Any]:
    """Decode class(a) + content(b) for held-out pairs and compare with the true image of a's class and b's
    other attributes, where the dataset can render it (Fonts can; folders only when such an item exists)."""
    lord = ctx.method
    assert isinstance(lord, Lord)
    test = ctx.subsample(ctx.split.test)
    if len(test) < 2:
        raise EvaluationSkipped("the test split has fewer than two items")
    class_items = ctx.rng.permutation(test)
    content_items = test
    position = lord.class_position
    kept_a, kept_b, truths = [], [], []
    for a, b in zip(class_items, content_items):
        if ctx.dataset.codes[a, position] == ctx.dataset.codes[b, position]:
            continue  # same class: nothing to transfer
        row = ctx.dataset.codes[b].astype(np.int64).copy()
        row[position] = ctx.dataset.codes[a, position]
        image = ctx.dataset.render_values(row)
        if image is None:
            continue
        kept_a.append(a)
        kept_b.append(b)
        truths.append(image)
    if not truths:
        raise EvaluationSkipped("the dataset cannot render (or does not hold) the true image of any transfer pair")
    truth = to_tensor(np.stack(truths), ctx.device)
    a_idx, b_idx = np.array(kept_a), np.array(kept_b)
    codes_a, codes_b = ctx.encode(a_idx), ctx.encode(b_idx)
    output = ctx.decode({CLASS_SLOT: codes_a[CLASS_SLOT], CONTENT_SLOT: codes_b[CONTENT_SLOT]})
    transfer, as_content, as_class = ImageScores(), ImageScores(), ImageScores()
    transfer.add(output, truth)
    as_content.add(ctx.images(b_idx), truth)
    as_class.add(ctx.images(a_idx), truth)
    return {**transfer.means(), "n": transfer.count, "baseline_content": as_content.means(),
            "baseline_class": as_class.means()}
