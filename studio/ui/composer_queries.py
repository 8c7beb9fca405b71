"""Query mode: the user names attribute values, the service finds a cover set of dataset items, and every slot is
filled from it as one undoable step.

The answer (whether the dataset holds that exact image, or the result is a zero-shot synthesis) belongs to the
composition the query made, so it shows again whenever that composition does, after undo and redo too.
``QueryMode`` is mixed into ``ComposerPanel``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from studio.service.composition import SlotValue
from studio.ui.names import values_phrase
from studio.ui.workers import watch

QUERY_ANSWERS_KEPT = 64


class QueryMode:
    """The query box of ``ComposerPanel`` and the exact image beside the synthesis."""

    def synthesise(self, values: dict[str, str]) -> None:
        """Fill every slot from the service's cover set for ``values`` (off the GUI thread)."""
        if self.service.model is None or self.service.items is None:
            self.query_panel.show_result("Open a model and a dataset first.")
            return
        self._query_pending = True
        self.query_panel.show_result("finding a cover set…")
        watch(self.service.query_async(dict(values)), owner=self,
              on_result=lambda result: self._on_query_answered(values, result), on_error=self._on_query_failed)

    def _on_query_answered(self, values: dict[str, str], result: Any) -> None:
        composition = result.composition
        for name in self._slot_widgets:  # slots the cover does not name take its base
            if name not in composition.slots:
                composition = composition.with_slot(name, SlotValue())
        kept = []
        for name in self._slot_widgets:  # a locked slot keeps its value, even one that showed the old base
            current = self._composition.slot(name)
            if current.locked:
                if current.a is None and self._composition.base is not None:
                    current = replace(current, a=self._composition.base)
                composition = composition.with_slot(name, current)
                kept.append(self._title(name))
        text = values_phrase(values) or "any values"
        if result.exact_index is None:
            answer = "Zero-shot: no item of the dataset has exactly these values; the image is a synthesis."
        else:
            where = "training" if getattr(result, "exact_in_training", False) else "held-out"
            answer = f"The dataset has this exact image (item {result.exact_index}, {where}), shown beside."
        if kept:
            answer += f" Locked, kept: {', '.join(kept)}."
        self._query_pending = False
        self._query_answers.append((composition, result.exact_index, f"{text}. {answer}"))
        del self._query_answers[:-QUERY_ANSWERS_KEPT]
        if composition == self._composition:
            self._show_query_match()
        self._push(composition, f"query {text}")

    def _on_query_failed(self, error: BaseException) -> None:
        self._query_pending = False
        self.query_panel.show_result(str(error))

    def query_answer(self) -> tuple[int | None, str] | None:
        """(exact item, answer text) of the query that made the composition on show, or None."""
        return next(((exact, text) for comp, exact, text in reversed(self._query_answers)
                     if comp == self._composition), None)

    def _show_query_match(self) -> None:
        """The exact image beside the synthesis and the query's answer, while (and whenever, after undo and redo)
        the composition is the one a query made."""
        match = self.query_answer()
        if not self._query_pending:
            self.query_panel.show_result(match[1] if match is not None else "")
        if match is None:
            self.exact_box.setVisible(False)
            self.output_caption.setText("composed")
            return
        exact = match[0]
        self.output_caption.setText("synthesis")
        if exact is None:
            self.exact_view.set_image(None)
            self.exact_view.set_placeholder("not in the dataset\n(zero-shot)")
            self.exact_caption.setText("in the dataset: none")
        else:
            self.exact_view.set_image(self.service.items.image(int(exact)))
            self.exact_caption.setText(f"in the dataset: item {exact}")
        self.exact_box.setVisible(True)
