"""The Training tab's live loss curves: a growing numpy history per loss and a throttled pyqtgraph plot of it.

Curves are created once per loss and fed numpy arrays with ``setData`` on a timer, downsampled and clipped by
pyqtgraph, so a long run's thousands of progress events cost one redraw per frame, not one per event.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

LOSS_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#7f7f7f", "#bcbd22")

#: Figures a method logs beside its losses that are not losses (a gradient norm, LORD's stage number): plotted
#: on the loss axis they would dwarf the curves, so the plot leaves them to metrics.jsonl and tensorboard.
DIAGNOSTIC_PREFIXES = ("grad_norm", "stage")


def is_diagnostic(name: str) -> bool:
    return name.startswith(DIAGNOSTIC_PREFIXES)


class LossHistory:
    """Growing numpy columns of (step, loss) per loss name; amortised O(1) appends, views for setData."""

    def __init__(self) -> None:
        self._steps = np.zeros(256, dtype=np.float64)
        self._values: dict[str, np.ndarray] = {}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def names(self) -> list[str]:
        return list(self._values)

    def append(self, step: int, losses: dict[str, float]) -> None:
        if self._n == len(self._steps):
            self._steps = np.resize(self._steps, 2 * len(self._steps))
            for k in self._values:
                self._values[k] = np.resize(self._values[k], len(self._steps))
        for k in losses:
            if k not in self._values:
                column = np.full(len(self._steps), np.nan, dtype=np.float64)
                self._values[k] = column
        self._steps[self._n] = step
        for k, column in self._values.items():
            column[self._n] = float(losses.get(k, np.nan))
        self._n += 1

    def steps(self) -> np.ndarray:
        return self._steps[: self._n]

    def values(self, name: str) -> np.ndarray:
        return self._values[name][: self._n]

    def clear(self) -> None:
        self.__init__()


class LossPlot(pg.PlotWidget):
    """One curve per loss, created the first time the loss appears; redrawn at most ``fps`` times a second."""

    def __init__(self, parent: QWidget | None = None, fps: float = 8.0) -> None:
        super().__init__(parent, background=None)
        self.history = LossHistory()
        self.curves: dict[str, pg.PlotDataItem] = {}
        item = self.getPlotItem()
        item.setLabel("bottom", "step")
        item.setLabel("left", "loss")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        self.legend = item.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self._dirty = False
        self.placeholder = pg.TextItem("Loss curves appear here once training starts", anchor=(0.5, 0.5),
                                       color=(128, 128, 128))
        item.getViewBox().addItem(self.placeholder, ignoreBounds=True)
        self.placeholder.setPos(0.5, 0.5)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / fps))
        self._timer.timeout.connect(self.redraw)
        self._timer.start()
        self.setMinimumHeight(180)

    def add(self, step: int, losses: dict[str, float]) -> None:
        self.history.append(step, {k: v for k, v in losses.items() if not is_diagnostic(k)})
        self._dirty = True

    def clear_history(self) -> None:
        self.history.clear()
        for curve in self.curves.values():
            self.getPlotItem().removeItem(curve)
            self.legend.removeItem(curve)
        self.curves = {}
        self._dirty = False
        self.placeholder.setVisible(True)

    def set_log_scale(self, on: bool) -> None:
        self.getPlotItem().setLogMode(y=on)

    def point_count(self, name: str | None = None) -> int:
        """Points the curve(s) hold now (tests check a finished run drew something)."""
        names = [name] if name else list(self.curves)
        total = 0
        for n in names:
            x, _y = self.curves[n].getOriginalDataset() if n in self.curves else (None, None)
            total += 0 if x is None else len(x)
        return total

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        steps = self.history.steps()
        self.placeholder.setVisible(len(steps) == 0)
        for i, name in enumerate(self.history.names):
            curve = self.curves.get(name)
            if curve is None:
                color = LOSS_COLORS[i % len(LOSS_COLORS)]
                pen = pg.mkPen(color, width=2.0 if name == "loss" else 1.2)
                curve = self.getPlotItem().plot(name=name, pen=pen, connect="finite")
                self.curves[name] = curve
            curve.setData(steps, self.history.values(name))


    def stop(self) -> None:
        """Stop the redraw timer (the tab is shutting down)."""
        self._timer.stop()
