"""A slot card's mixture rows: when source A is a mixture, every part beyond the thumbnail on tile A gets a row with
its thumbnail, a weight slider (the share it takes shown beside it) and a remove button.

``SlotMixture`` is mixed into ``SlotWidget``: it works on the card's value, its describer and its ``_edit``; a weight
drag is one gesture, so it merges into one undo step.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolButton, QVBoxLayout, QWidget

from studio.service.composition import Source
from studio.ui.image_view import ImageView
from studio.ui.slot_edits import remove_part, set_weight

WEIGHT_STEPS = 100      # slider resolution of a mixture weight in [0, 1]


class MixturePartRow(QWidget):
    """One extra mixture part: its thumbnail, a weight slider and a remove button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView("", 28)
        self.view.setFixedSize(28, 28)
        self.caption = QLabel("")
        self.caption.setMinimumWidth(70)
        self.weight = QSlider(Qt.Orientation.Horizontal)
        self.weight.setRange(0, WEIGHT_STEPS)
        self.weight.setToolTip("weight of this source in the mixture (weights are normalised)")
        self.weight_label = QLabel("")
        self.weight_label.setMinimumWidth(34)
        self.remove = QToolButton()
        self.remove.setText("×")
        self.remove.setToolTip("remove this source from the mixture")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.view, self.caption, self.weight, self.weight_label, self.remove):
            lay.addWidget(w)
        lay.setStretch(2, 1)


class SlotMixture:
    """The mixture rows of ``SlotWidget``; see the module docstring."""

    def _build_parts_box(self) -> QWidget:
        """The (hidden until needed) box the rows go into."""
        self.parts_box = QWidget()
        self.parts_layout = QVBoxLayout(self.parts_box)
        self.parts_layout.setContentsMargins(0, 0, 0, 0)
        self.parts_layout.setSpacing(2)
        self._part_rows: list[MixturePartRow] = []
        return self.parts_box

    def _show_parts(self, parts: list[tuple[Source, float]]) -> None:
        rows = parts if len(parts) > 1 else []
        while len(self._part_rows) < len(rows):
            row = MixturePartRow()
            k = len(self._part_rows)
            row.weight.sliderPressed.connect(self._new_gesture)
            row.weight.valueChanged.connect(lambda pos, k=k: self._on_weight(k, pos))
            row.remove.clicked.connect(lambda _=False, k=k: self._edit(remove_part(self._value, k), "unmix"))
            self.parts_layout.addWidget(row)
            self._part_rows.append(row)
        while len(self._part_rows) > len(rows):
            row = self._part_rows.pop()
            row.setParent(None)
            row.deleteLater()
        for k, row in enumerate(self._part_rows):
            source, weight = rows[k]
            image, caption, tip = self._describe(source)
            row.view.set_image(image)
            row.caption.setText(caption)
            row.setToolTip(tip)
            row.weight.blockSignals(True)
            row.weight.setValue(round(min(1.0, weight) * WEIGHT_STEPS))
            row.weight.blockSignals(False)
            row.weight_label.setText(self._weight_share(rows, k))
        self.parts_box.setVisible(bool(rows))

    def _on_weight(self, part: int, position: int) -> None:
        self._edit(set_weight(self._value, part, position / WEIGHT_STEPS), "mixture weight",
                   f"w:{self.spec.name}:{part}:{self._gesture}")

    @staticmethod
    def _weight_share(parts: list[tuple[Source, float]], k: int) -> str:
        total = sum(w for _, w in parts)
        return f"{(parts[k][1] / total if total > 0 else 0):.0%}"
