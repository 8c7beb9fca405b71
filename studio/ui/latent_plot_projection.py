"""The latent plot's projection: which slot is plotted, and the 2-D points the service's PCA makes of the dataset's
latents of that slot.

A projection runs off the GUI thread with a progress bar and a Cancel button; a first sample is shown while the
rest encode, and stays (title and status say so) if the rest is cancelled or fails. A projection that lands after
the service swapped its model or dataset is dropped, since its item numbers belong to the old dataset.
``SlotProjection`` is mixed into ``LatentPlotPanel``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.ui.encoding_readiness import can_encode, cannot_encode_message
from studio.ui.latent_plot_colours import NO_COLOUR
from studio.ui.names import attribute_title, slot_title
from studio.ui.workers import gui_callback, watch


class SlotProjection:
    """The plotted slot and its projection in ``LatentPlotPanel``."""

    def _service_key(self) -> tuple:
        model = self.service.model
        return (id(model), getattr(model, "path", None), id(self.service.items))

    def _on_model_or_dataset_changed(self, *_: Any) -> None:
        key = self._service_key()
        if key == self._model_key:
            return
        self._model_key = key
        self._projecting.cancel()  # a projection of the old latents must not land on the new dataset
        model, dataset = self.service.model, self.service.items
        for combo in (self.slot_combo, self.target_combo, self.colour_combo):
            combo.blockSignals(True)
            combo.clear()
        if model is not None:
            for spec in model.slots:
                self.slot_combo.addItem(slot_title(spec), spec.name)
                self.target_combo.addItem(slot_title(spec), spec.name)
        self.colour_combo.addItem(NO_COLOUR)
        if dataset is not None:
            for attribute in dataset.schema:
                self.colour_combo.addItem(attribute_title(attribute.name), attribute.name)
        for combo in (self.slot_combo, self.target_combo, self.colour_combo):
            combo.blockSignals(False)
        self._clear_plot()
        if model is None or dataset is None:
            what = "a model" if model is None else "a dataset"
            self.plot_item.setTitle(f"open {what} to see its latent space", size="10pt")
            return
        self._on_slot_chosen()

    def _on_slot_activated(self, slot: str) -> None:
        if self.follow_check.isChecked() and slot != self.slot:
            self.set_slot(slot)

    def _on_slot_chosen(self, *_: Any) -> None:
        slot = self.slot
        if slot is None or self.service.model is None or self.service.items is None:
            return
        attribute = next((s.attribute for s in self.service.model.slots if s.name == slot), None)
        if attribute and self.colour_combo.findData(attribute) >= 0:
            self.colour_combo.blockSignals(True)
            self.colour_combo.setCurrentIndex(self.colour_combo.findData(attribute))
            self.colour_combo.blockSignals(False)
        if self.follow_check.isChecked():  # clicks fill the slot on show, unless the user unhooked them
            k = self.target_combo.findData(slot)
            if k >= 0:
                self.target_combo.setCurrentIndex(k)
        self._clear_plot()
        self._sync_directions_check()
        if not can_encode(self.service.model):  # nothing to project: say why instead of a failed projection
            self._end_busy(cannot_encode_message(self.service.model))
            self.plot_item.setTitle("no latents to plot yet", size="10pt")
            return
        self._start_projection(slot)

    def _start_projection(self, slot: str) -> None:
        self._projecting.cancel()
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.plot_item.setTitle(f"projecting {attribute_title(slot)}…", size="10pt")
        self.status.setText("encoding and projecting the dataset's latents…")
        asked: list[Any] = []  # the future, once there is one: progress of a replaced projection is not shown
        progress = gui_callback(lambda *args: asked and self._projecting.is_newest(asked[0]) and
                                self._on_progress(*args), owner=self)
        preview = gui_callback(lambda p: asked and self._projecting.is_newest(asked[0]) and
                               self._on_projected(slot, p, preliminary=True), owner=self)
        future = self.service.project_async(slot, self.max_points, progress, preview=preview)
        asked.append(future)
        watch(future, lambda p: self._on_projected(slot, p), self._on_projection_failed, owner=self,
              newest=self._projecting)

    def _on_progress(self, *args: Any) -> None:
        if len(args) >= 2 and args[1]:
            fraction = float(args[0]) / float(args[1])
        elif args:
            fraction = float(args[0])
        else:
            return
        self.progress.setValue(round(100 * min(1.0, max(0.0, fraction))))

    def _on_projection_failed(self, error: BaseException) -> None:
        cancelled = type(error).__name__ == "Cancelled"
        if self._preliminary and self._projection is not None:
            self._keep_first_sample("cancelled" if cancelled else f"failed ({error})")
            return
        self._end_busy("projection cancelled" if cancelled else f"projection failed: {error}")
        self.plot_item.setTitle("cancelled" if cancelled else "projection failed", size="10pt")

    def _keep_first_sample(self, why: str) -> None:
        """A projection stopped after its first sample: those points stay, and title and status say so."""
        shown = len(self._projection.indices)
        self._end_busy(f"projection {why}: only the first {shown:,} items are shown; choose the slot again for all")
        self.plot_item.setTitle(f"{attribute_title(self._projection.slot)}: first {shown:,} items only", size="10pt")

    def _end_busy(self, text: str) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.status.setText(text)

    def _on_projected(self, slot: str, projection: Any, preliminary: bool = False) -> None:
        """Show a projection; a ``preliminary`` one (the first items, while the rest encode) keeps the progress
        bar and says more are coming. Both share one PCA, so the points stay where they are. One that arrives
        after the service swapped its model or dataset, but before the panel heard of it, is dropped: its indices
        belong to the old dataset."""
        if slot != self.slot or self._service_key() != self._model_key:
            return
        self._projection = projection
        self._preliminary = preliminary
        self._indices = np.asarray(projection.indices, np.int64)
        self._xy = np.asarray(projection.xy, np.float32).reshape(-1, 2)
        total = len(self.service.items) if self.service.items is not None else len(self._indices)
        shown = f"{len(self._indices):,} of {total:,} items" if len(self._indices) < total else f"{total:,} items"
        explained = getattr(projection, "explained", (0.0, 0.0))
        title = (f"{attribute_title(slot)}: {shown}, {projection.method.upper()}"
                 + (" (pooled)" if projection.pooled else ""))
        self.plot_item.setTitle(title + (", more coming…" if preliminary else ""), size="10pt")
        self.projection_label.setText(self._describe_projection(slot, projection))
        if preliminary:
            self.status.setText("a first sample is shown; encoding the rest…")
        else:
            self._end_busy("")  # the title, the axes and the projection label say what the service's note would
        # each axis names its share of the variance: a short title still fits a narrow panel
        shares = [f" ({share:.0%} of variance)" if sum(explained) > 0 else "" for share in explained[:2]]
        self.plot_item.setLabel("bottom", "PC 1" + shares[0])
        self.plot_item.setLabel("left", "PC 2" + shares[1])
        self._recolour()
        self.view_box.autoRange(items=self.groups)
        self._path_key = None
        self._on_composition(self.composer.composition)
        self._on_result(self.composer.result)
        self._update_directions()

    def _describe_projection(self, slot: str, projection: Any) -> str:
        """How one point comes from a latent: a spatial code is pooled (averaged over its positions) before the
        projection, a vector goes in whole; the text says which."""
        spec = next((s for s in self.service.model.slots if s.name == slot), None) if self.service.model else None
        method = projection.method.upper()
        if spec is None:
            return f"Each point: one item's {slot} code, projected to 2-D by {method}."
        if projection.pooled and len(spec.shape) == 3:
            c, h, w = spec.shape
            return (f"Each point: one item's {slot_title(spec).lower()} code, a spatial {c}×{h}×{w} tensor pooled "
                    "(averaged over "
                    f"its {h}×{w} positions) to {c} values, then projected to 2-D by {method}.")
        what = "spatial " + "×".join(map(str, spec.shape)) + " tensor flattened to" if spec.spatial else "vector of"
        return (f"Each point: one item's {slot_title(spec).lower()} code ({what} {spec.size} values), projected "
                f"to 2-D by {method}.")

    def _clear_plot(self) -> None:
        self.projection_label.setText("")
        self._projection = None
        self._preliminary = False
        self._xy = np.zeros((0, 2), np.float32)
        self._indices = np.zeros(0, np.int64)
        self._current_xy = None
        self._path_key = None
        for group in self.groups:
            group.setData(x=[], y=[])
        self.current.setData(x=[], y=[])
        self.edge_marker.setVisible(False)
        self.path.setData(x=[], y=[])
        self.hover_ring.setData(x=[], y=[])
        self._clear_arrows()
        self._show_legend([])
