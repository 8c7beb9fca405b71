"""Dropping items and image files onto a slot card.

Dataset items go in at once. Image files are first encoded once through the service, off the GUI thread, so that a
bad file is reported at the drop instead of breaking every later compose; the service also says how far each file
lies from the training data, so that an image the model cannot represent (a letter outside its alphabet, a photo)
is never used silently. ``SlotDrops`` is mixed into ``ComposerPanel``.
"""

from __future__ import annotations

from pathlib import Path

from studio.errors import StudioError
from studio.service.composition import FileSource, ItemSource
from studio.ui.composer_sources import source_files
from studio.ui.encoding_readiness import can_encode, cannot_encode_message
from studio.ui.slot_edits import put_sources
from studio.ui.workers import watch


class SlotDrops:
    """Drops onto the cards of ``ComposerPanel``, and the warnings about far-off image files."""

    def _on_slot_dropped(self, slot: str, target: str, items: list[int], files: list[str]) -> None:
        model = self.service.model
        if model is not None and not can_encode(model):  # say why at once, instead of failing on every compose
            self._show_status(cannot_encode_message(model), error=True)
            return
        if items:
            sources = [ItemSource(int(i)) for i in items]
            what = f"item {items[0]}" + (f" and {len(items) - 1} more" if len(items) > 1 else "")
            self._edit_slot(slot, put_sources(self._composition.slot(slot), target, sources, self._composition.base),
                            f"{self._title(slot)}: {what}")
        elif files:
            self._show_status(f"encoding {Path(files[0]).name}…")
            watch(self.service.submit(self._encode_files, files), owner=self,
                  on_result=lambda encoded: self._on_files_encoded(slot, target, encoded),
                  on_error=self._on_background_error)

    def _encode_files(self, files: list[str]) -> tuple[list[str], list[str]]:
        """Worker thread: encode each file once through the service (it caches), so a bad file is reported at
        the drop instead of breaking every later compose; and ask how far each lies from the training data, so
        that an image the model cannot represent (a letter outside its alphabet, a photo) is not used silently."""
        warnings = []
        familiarity = getattr(self.service, "image_familiarity", None)
        for path in files:
            self.service.encode_image(path)
            text = ""
            if familiarity is not None and self.service.items is not None:
                try:
                    text = familiarity(path).summary(Path(path).name)
                except StudioError:
                    text = ""
            warnings.append(text)
        return files, warnings

    def _on_files_encoded(self, slot: str, target: str, encoded: tuple[list[str], list[str]]) -> None:
        files, warnings = encoded
        if slot not in self._slot_widgets:
            return
        sources = [FileSource(str(Path(p).resolve())) for p in files]
        for source, text in zip(sources, warnings):
            self._file_warnings[source.path] = text
        self._edit_slot(slot, put_sources(self._composition.slot(slot), target, sources, self._composition.base),
                        f"{self._title(slot)}: {Path(files[0]).name}")
        self._announce_file_warnings()

    def file_warnings(self) -> list[str]:
        """Warnings about the image files the composition on show uses (far from the training data)."""
        used = {p for v in self._composition.slots.values() for src in (v.a, v.b) for p in source_files(src)}
        return [text for path, text in self._file_warnings.items() if text and path in used]

    def _announce_file_warnings(self) -> None:
        warnings = self.file_warnings()
        if warnings:
            self._show_status(" ".join(warnings), error=True)
