"""The composer's Qt-free model: fields with psygnal events named after them, fired only on a real change."""

from __future__ import annotations

import numpy as np
import pytest

from studio.service.composer_model import ComposerModel
from studio.service.composition import Composition, ItemSource, SlotValue
from studio.service.descriptions import ComposeResult


def test_events_are_named_after_the_fields_and_fire_on_change_only():
    model = ComposerModel()
    seen: list[tuple[str, object]] = []
    for name in ("composition", "active_slot", "result"):
        getattr(model.events, name).connect(lambda value, n=name: seen.append((n, value)))
    first = Composition({"letter": SlotValue(a=ItemSource(3))}, ItemSource(1))
    model.composition = first
    model.composition = Composition({"letter": SlotValue(a=ItemSource(3))}, ItemSource(1))  # equal: no event
    model.active_slot = "letter"
    model.active_slot = "letter"
    result = ComposeResult(np.zeros((4, 4, 3), np.uint8), {"letter": np.zeros(2, np.float32)}, 7, 0.01)
    model.result = result
    model.result = result
    model.result = None
    assert seen == [("composition", first), ("active_slot", "letter"), ("result", result), ("result", None)]
    assert model.composition == first and model.active_slot == "letter" and model.result is None
    assert "letter" in repr(model)


def test_a_composition_field_refuses_other_values():
    with pytest.raises(TypeError, match="Composition"):
        ComposerModel().composition = {"letter": 3}  # type: ignore[assignment]
