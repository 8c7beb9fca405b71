"""Undo/redo for the composer. Compositions are immutable, so one command kind suffices: it remembers the
composition before and after a change. Slider drags merge into a single command (``merge_key``), so one drag is
one undo step."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from studio.service.composition import Composition

#: QUndoCommand.id() for mergeable changes; only commands with equal ids are offered to mergeWith.
MERGEABLE_ID = 4242


class CompositionChange(QUndoCommand):
    """Replace the composition; ``apply`` is the composer's setter (it refreshes the widgets and recomposes).

    ``merge_key`` names a continuous gesture (for example ``"t:letter:7"``: the 7th drag of the letter slider);
    consecutive changes with the same key collapse into one command that spans from the first ``before`` to the
    last ``after``.
    """

    def __init__(self, apply: Callable[[Composition], None], before: Composition, after: Composition, text: str,
                 merge_key: str | None = None) -> None:
        super().__init__(text)
        self._apply = apply
        self.before = before
        self.after = after
        self.merge_key = merge_key

    def id(self) -> int:
        return MERGEABLE_ID if self.merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, CompositionChange) or not self.merge_key or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        if self.after == self.before:
            self.setObsolete(True)
        return True

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)
