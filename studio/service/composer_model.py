"""What the composer shows, without Qt: the composition, the slot the user is working on, the last result.

The composer panel keeps one and sets its fields; the latent plot (and anything else: a script, a test) observes
it through psygnal events named after the fields, as napari's models do (``model.events.composition``). An event
fires only when its field really changes, on the thread that set it (the GUI's, in the app).
"""

from __future__ import annotations

from typing import Any

from psygnal import Signal, SignalGroup

from studio.service.composition import Composition
from studio.service.descriptions import ComposeResult


class ComposerEvents(SignalGroup):
    composition = Signal(object)  # Composition
    active_slot = Signal(object)  # str | None
    result = Signal(object)  # ComposeResult | None: the composed image on show with its latents


class ComposerModel:
    """The composer's state; see the module docstring."""

    def __init__(self, composition: Composition | None = None) -> None:
        self.events = ComposerEvents()
        self._composition = composition if composition is not None else Composition()
        self._active_slot: str | None = None
        self._result: ComposeResult | None = None

    @property
    def composition(self) -> Composition:
        return self._composition

    @composition.setter
    def composition(self, value: Composition) -> None:
        if not isinstance(value, Composition):
            raise TypeError(f"a composition is a Composition, not {type(value).__name__}")
        if value != self._composition:
            self._composition = value
            self.events.composition.emit(value)

    @property
    def active_slot(self) -> str | None:
        return self._active_slot

    @active_slot.setter
    def active_slot(self, value: str | None) -> None:
        if value != self._active_slot:
            self._active_slot = value
            self.events.active_slot.emit(value)

    @property
    def result(self) -> ComposeResult | None:
        return self._result

    @result.setter
    def result(self, value: ComposeResult | None) -> None:
        if value is not self._result:
            self._result = value
            self.events.result.emit(value)

    def __repr__(self) -> str:
        shown: Any = None if self._result is None else self._result.request_id
        return (f"ComposerModel(slots={sorted(self._composition.slots)}, active_slot={self._active_slot!r}, "
                f"result={shown})")
