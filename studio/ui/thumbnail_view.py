"""The browser's thumbnail grid: a wrapping ``QListView`` of uniform cells with batched layout, so a million rows
never stall the window, and a repaint without relayout when only thumbnails arrive. Its model is
``studio.ui.thumbnail_model``."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QSize, Qt
from PySide6.QtWidgets import QAbstractItemView, QFrame, QListView, QWidget

from studio.ui.thumbnail_model import _DECORATION


class ThumbnailView(QListView):
    """A wrapping, uniform-size grid with batched layout (a million rows never stall the window)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2048)
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSpacing(3)
        self.setFrameShape(QFrame.Shape.StyledPanel)

    def set_thumbnail_size(self, size: int) -> None:
        self.setIconSize(QSize(size, size))
        self.verticalScrollBar().setSingleStep(max(8, size // 3))

    def dataChanged(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Sequence[int] = ()) -> None:
        """A thumbnail arrived: repaint, but skip the relayout QListView does on every change in list mode. Cells
        are uniform, so nothing moves, and relaying out a million rows (in batches) for each batch of thumbnails
        would shrink the scroll range to the rows laid out so far and keep the GUI thread busy while scrolling."""
        if roles and all(int(r) == _DECORATION for r in roles):
            self.viewport().update()
            return
        super().dataChanged(top_left, bottom_right, roles)
