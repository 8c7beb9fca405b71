"""The composer's output column: Undo, Redo and Clear all, the composed image (after a query, the dataset's real
image beside it), the status line, the all-slots A→B slider and the query box.

It only lays the widgets out; the composer panel connects them, so this column holds no state of its own.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget

from studio.ui.image_view import ImageView
from studio.ui.query_panel import QueryPanel
from studio.ui.slot_widget import T_STEPS

NO_MODEL = "No model loaded.\nOpen a model (File ▸ Open model…)\nor train one in the Training tab."
EMPTY = "Drag items from the browser,\nor image files from the desktop,\ninto the slots."
GLOBAL_SLIDER_TIP = "move every unlocked slot that has a second source from A to B together"


class ComposerOutput(QWidget):
    """The column right of the slot cards; see the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # output: the synthesis and, after a query, the dataset's real image beside it
        self.output = ImageView(NO_MODEL, 256)
        self.output.setMinimumSize(160, 160)
        self.output_caption = QLabel("composed")
        self.exact_view = ImageView("", 128)
        self.exact_view.setMinimumSize(96, 96)
        self.exact_caption = QLabel("")
        self.exact_caption.setWordWrap(True)
        self.exact_box = QWidget()
        exact_lay = QVBoxLayout(self.exact_box)
        exact_lay.setContentsMargins(0, 0, 0, 0)
        exact_lay.addWidget(self.exact_caption)
        exact_lay.addWidget(self.exact_view, 1)
        self.exact_box.setVisible(False)
        synth_lay = QVBoxLayout()
        synth_lay.addWidget(self.output_caption)
        synth_lay.addWidget(self.output, 1)
        images = QHBoxLayout()
        images.addLayout(synth_lay, 3)
        images.addWidget(self.exact_box, 2)

        self.status = QLabel("")
        self.status.setStyleSheet("color: palette(placeholder-text);")
        self.status.setWordWrap(True)

        self.global_slider = QSlider(Qt.Orientation.Horizontal)
        self.global_slider.setRange(0, T_STEPS)
        self.global_slider.setToolTip(GLOBAL_SLIDER_TIP)
        self.global_label = QLabel("")
        global_row = QHBoxLayout()
        global_row.addWidget(QLabel("All slots  A"))
        global_row.addWidget(self.global_slider, 1)
        global_row.addWidget(QLabel("B"))
        global_row.addWidget(self.global_label)

        self.undo_button = QToolButton()
        self.undo_button.setText("Undo")
        self.redo_button = QToolButton()
        self.redo_button.setText("Redo")
        self.clear_all_button = QToolButton()
        self.clear_all_button.setText("Clear all")
        self.clear_all_button.setToolTip("clear every unlocked slot")
        tools = QHBoxLayout()
        tools.addWidget(self.undo_button)
        tools.addWidget(self.redo_button)
        tools.addStretch(1)
        tools.addWidget(self.clear_all_button)

        self.query_panel = QueryPanel()
        self.query_box = QGroupBox("Query: synthesise attribute values")
        qlay = QVBoxLayout(self.query_box)
        qlay.addWidget(self.query_panel)

        out_lay = QVBoxLayout(self)
        out_lay.setContentsMargins(4, 4, 4, 4)
        out_lay.addLayout(tools)
        out_lay.addLayout(images, 1)
        out_lay.addWidget(self.status)
        out_lay.addLayout(global_row)
        out_lay.addWidget(self.query_box)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
