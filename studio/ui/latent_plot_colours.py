"""How the latent plot colours its points: by one attribute's values, with one scatter item per colour group, and
the legend line under the plot that names them.

A per-point brush array costs pyqtgraph a per-point style pass, so the points are split into at most ``GROUPS``
groups, each a scatter item with a single brush (the most frequent values get their own colour, the rest share a
grey "other"). ``PointColours`` is mixed into ``LatentPlotPanel``.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

LEGEND_ROWS = 14         # legend entries at most (then "… N more")
GROUPS = 64             # colour groups (scatter items): the full Fonts' 52 letters each get a colour; attributes
                        # with more values colour the most frequent ones
OTHER = QColor(150, 150, 150)
NO_COLOUR = "(none)"

#: A qualitative palette (distinct hues, then lighter/darker variants) for attributes without their own colours.
QUALITATIVE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
               "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
               "#dbdb8d", "#9edae5")


def value_colours(n: int, rgb: tuple[tuple[int, int, int], ...] | None = None) -> list[QColor]:
    """One colour per attribute value: the attribute's own colours when it is a colour attribute (so 'red' is
    drawn red), else the qualitative palette, then evenly spaced hues for long vocabularies."""
    if rgb is not None and len(rgb) == n:
        return [QColor(*c) for c in rgb]
    if n <= len(QUALITATIVE):
        return [QColor(c) for c in QUALITATIVE[:n]]
    # golden-ratio hues, with saturation and brightness stepped too, so values far apart in a long list that land
    # on near hues still differ
    return [QColor.fromHsvF((k * 0.618034) % 1.0, (0.55, 0.85, 0.7)[k % 3], (0.95, 0.75, 0.85)[(k // 3) % 3])
            for k in range(n)]


def colour_groups(codes: np.ndarray, values: tuple[str, ...], rgb: tuple[tuple[int, int, int], ...] | None = None,
                  groups: int = GROUPS) -> list[tuple[np.ndarray, QColor, str]]:
    """(rows, colour, legend label) per colour group, in value order. Each value present gets its own colour while
    they fit in ``groups``; otherwise the most frequent ``groups - 1`` do and the rest share one grey "other"."""
    codes = np.asarray(codes, np.int64)
    counts = np.bincount(codes, minlength=len(values))
    present = np.flatnonzero(counts)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(values) + 1))
    if len(present) <= groups:
        colours = value_colours(len(values), rgb)
        return [(order[bounds[v]:bounds[v + 1]], colours[v], values[v]) for v in present]
    top = np.sort(present[np.argsort(-counts[present], kind="stable")[: groups - 1]])
    colours = value_colours(len(top))
    out = [(order[bounds[v]:bounds[v + 1]], colours[k], values[v]) for k, v in enumerate(top)]
    rest = np.flatnonzero(~np.isin(codes, top))
    out.append((rest, OTHER, f"other ({len(present) - len(top)} values)"))
    return out


class PointColours:
    """The colour groups and the legend of ``LatentPlotPanel``."""

    def _recolour(self, *_: Any) -> None:
        """Split the points into colour groups (one scatter item each) and rebuild the legend."""
        dataset = self.service.items
        name = self.colour_attribute or ""
        entries: list[tuple[QColor, str]] = []
        n = len(self._indices)
        if dataset is None or n == 0 or name in ("", NO_COLOUR):
            groups = [(np.arange(n), OTHER, "")]
        else:
            attribute = dataset.schema[name]
            codes = np.asarray(dataset.codes[self._indices, dataset.schema.position(name)], np.int64)
            groups = colour_groups(codes, attribute.values, attribute.rgb)
        for item, (rows, colour, label) in zip(self.groups, groups):
            brush = self._brush(colour)
            item.setData(x=self._xy[rows, 0], y=self._xy[rows, 1], brush=brush)
            if label and len(entries) < LEGEND_ROWS:
                entries.append((colour, label))
        for item in self.groups[len(groups):]:
            item.setData(x=[], y=[])
        hidden = len([g for g in groups if g[2]]) - len(entries)
        self._show_legend(entries, hidden)

    def legend_entries(self) -> list[str]:
        """The labels the legend shows, in order (without the "… N more" note)."""
        return list(self._legend_entries)

    def _show_legend(self, entries: list[tuple[QColor, str]], hidden: int = 0) -> None:
        self._legend_entries = [label for _, label in entries]
        parts = [f'<span style="color:{colour.name()}; font-size:12pt;">●</span>&nbsp;{html.escape(label)}'
                 for colour, label in entries]
        if hidden > 0:
            parts.append(f"… {hidden} more")
        self.legend.setText("&nbsp;&nbsp; ".join(parts))
        self.legend.setVisible(bool(parts))

    def _on_colour_chosen(self, *_: Any) -> None:
        """Recolour; a slot without an attribute of its own draws the colour attribute's directions."""
        self._recolour()
        self._sync_directions_check()
        if self.directions_check.isChecked():
            self._update_directions()

    def _brush(self, colour: QColor) -> Any:
        """One QBrush object per colour for the plot's lifetime: pyqtgraph caches rendered symbols by brush object,
        so reusing them keeps recolouring cheap."""
        key = colour.rgb()
        brush = self._brushes.get(key)
        if brush is None:
            brush = self._brushes[key] = pg.mkBrush(colour.red(), colour.green(), colour.blue(), 210)
        return brush
