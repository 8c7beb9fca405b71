"""What ``--init-from`` carries over onto a dataset that is not the one the source model was trained on.

Fine-tuning onto other vocabularies or image sizes is allowed (the networks only need the same slots), but the
person should know before training what the source model brings and what it has never seen: the slots whose
weights carry over, the attribute values that are new to it, and the resizing of the new images.
"""

from __future__ import annotations

from studio.data.dataset import AttributedDataset
from studio.data.schema import AttributeSchema
from studio.methods.base import Method

_MAX_VALUES = 8


def _values(values: list[str]) -> str:
    shown = ", ".join(values[:_MAX_VALUES])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _MAX_VALUES else "")


def _attribute_lines(theirs: AttributeSchema, ours: AttributeSchema) -> list[str]:
    lines = []
    for attribute in ours:
        if attribute.name not in theirs.names:
            lines.append(f"  {attribute.name}: new to the model (all {attribute.cardinality} values)")
            continue
        known = theirs[attribute.name].values
        new = [v for v in attribute.values if v not in known]
        absent = [v for v in known if v not in attribute.values]
        if not new and not absent:
            lines.append(f"  {attribute.name}: the same {attribute.cardinality} values")
            continue
        parts = [f"{len(attribute.values) - len(new)} of its {attribute.cardinality} values known"]
        if new:
            parts.append(f"{len(new)} new to the model ({_values(new)})")
        if absent:
            parts.append(f"{len(absent)} of the model's not in this dataset ({_values(absent)})")
        lines.append(f"  {attribute.name}: " + "; ".join(parts))
    return lines


def carry_over_report(origin: str, source: Method, source_spec: str, target: Method,
                      dataset: AttributedDataset) -> str:
    """Lines for the training log: the source model, the slots that carry over, each attribute's new and missing
    values, and the resolution (with the dataset's own image sizes when it knows them, e.g. a folder)."""
    theirs, ours = source.context, target.context
    slots = ", ".join(f"{s.name} ({s.size})" for s in target.slots)
    lines = [f"--init-from {origin}: a {source.name} model trained on {source_spec or 'an unrecorded dataset'} "
             f"at {theirs.resolution} px, fine-tuned on {dataset.spec}",
             f"  carries over all its weights; slots: {slots}"]
    lines += _attribute_lines(theirs.schema, ours.schema)
    if theirs.resolution != ours.resolution:
        lines.append(f"  resolution: the model was trained at {theirs.resolution} px, this dataset is "
                     f"{ours.resolution} px")
    image_sizes = getattr(dataset, "image_sizes", None)
    sizes = image_sizes() if image_sizes is not None else {}
    res = ours.resolution
    other = sorted(((w, h), n) for (w, h), n in sizes.items() if (w, h) != (res, res))
    if other:
        listed = ", ".join(f"{w}x{h} ({n})" for (w, h), n in other[:_MAX_VALUES])
        sides = " / ".join(str(side) for side in sorted({min(w, h) for (w, h), _ in other}))
        lines.append(f"  images: {listed} are centre-cropped and resized to {res} x {res} px (short side "
                     f"{sides} -> {res})")
    else:
        lines.append(f"  images: {res} px, as the dataset holds them")
    return "\n".join(lines)
