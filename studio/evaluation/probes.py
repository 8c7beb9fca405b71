"""The items probes are fitted and scored on (co-prediction, LORD's leakage, the mixing probe), kept apart from the
zero-shot split: a pool of items split 80:20 by item (``ProbeSplit``), with a plain message when it is too small."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.data.splits import ProbeSplit, values_missing
from studio.evaluation.suite import EvalContext, EvaluationSkipped

FIT_FRACTION = 0.8
MIN_FIT = 8
MIN_SCORE = 4


@dataclass(frozen=True)
class ProbeItems:
    fit: np.ndarray
    score: np.ndarray
    pool: str
    note: str

    def describe(self) -> dict[str, Any]:
        return {"probe_pool": self.pool, "probe_split": self.note}


def probe_items(ctx: EvalContext, prefer: str = "train") -> ProbeItems:
    """Fit and score items for probes: the zero-shot split's ``prefer`` part ("train" or "test") when it shows
    every value of every attribute, else all items (a single label column's test part holds whole classes out);
    stratified 80:20 by the attribute with the most values, each side capped at ``max_items``."""
    part = ctx.split.train if prefer == "train" else ctx.split.test
    codes = ctx.dataset.codes
    pool_name = f"{prefer} items"
    missing = values_missing(codes, part) if len(part) else []
    if len(part) == 0 or missing:
        schema = ctx.dataset.schema
        lacking = "; ".join(f"{schema[j].name}: {', '.join(str(schema[j].values[v]) for v in vs[:5])}"
                            + (" ..." if len(vs) > 5 else "") for j, vs in missing[:3])
        part = np.arange(len(codes), dtype=np.int64)
        pool_name = f"all items (the {prefer} items lack {lacking or 'every item'})"
    split = ProbeSplit.make(codes, part, FIT_FRACTION, ctx.seed)
    fit, score = ctx.subsample(split.fit), ctx.subsample(split.score)
    if len(fit) < MIN_FIT or len(score) < MIN_SCORE:
        raise EvaluationSkipped(
            f"cannot fit probes: the probe pool ({pool_name}, {len(part)} items) gives {len(fit)} items to fit and "
            f"{len(score)} to score, and a probe needs at least {MIN_FIT} and {MIN_SCORE}; evaluate on a larger "
            "dataset or raise --max-items")
    how = (f"stratified by {ctx.dataset.schema[split.stratified_by].name}" if split.stratified_by is not None
           else "at random")
    note = (f"{int(FIT_FRACTION * 100)}:{100 - int(FIT_FRACTION * 100)} of {pool_name} by item, {how}; "
            f"{len(fit)} fitted, {len(score)} scored")
    return ProbeItems(fit, score, pool_name, note)
