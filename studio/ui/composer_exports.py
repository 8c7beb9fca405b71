"""What the composer writes and reads: the composed image, the A→B interpolation (a strip or a looping GIF) and
project files.

``ComposerExports`` is mixed into ``ComposerPanel``. Everything is checked before any work starts (nothing to
export, too few frames, a project that does not fit the loaded model or dataset), so the user hears why at once,
in words that say what to open or drop first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.service.composition import Project
from studio.service.exports import enlarged, save_image_atomically
from studio.ui.composer_sources import source_items


class ComposerExports:
    """Exports and projects of ``ComposerPanel``; see the module docstring."""

    def export_image(self, path: str | Path, scale: int = 1) -> Path:
        """Save the composed image (``scale`` enlarges it with crisp pixels)."""
        if self._image is None:
            raise StudioError("nothing to export yet: compose an image first (drop items into the slots)")
        return save_image_atomically(path, enlarged(self._image, scale))

    def export_interpolation(self, path: str | Path, kind: str, frames: int, scale: int = 1, frame_ms: int = 80,
                             progress: Callable[[float], None] | None = None) -> Future:
        """The interpolation of every unlocked slot with a second source, from A to B, as a ``strip`` (one row
        of images) or a ``gif`` (A → B and back, so it loops without a jump), made and written off the GUI thread:
        the future holds the written path, cancelling it stops between frames. StudioError at once when there is
        nothing to interpolate."""
        self._check_interpolation(frames)
        return self.service.export_interpolation_async(self._composition, path, kind, int(frames), scale,
                                                       frame_ms, progress)

    def export_strip(self, path: str | Path, frames: int = 9, scale: int = 1) -> Path:
        """``export_interpolation`` as a strip, waited for (scripts and tests; the window does not wait)."""
        return self.export_interpolation(path, "strip", frames, scale).result()

    def export_gif(self, path: str | Path, frames: int = 24, scale: int = 1, frame_ms: int = 80) -> Path:
        """``export_interpolation`` as a looping GIF, waited for."""
        return self.export_interpolation(path, "gif", frames, scale, frame_ms).result()

    def save_project(self, path: str | Path, mined_values: Sequence[dict[str, Any]] = ()) -> Path:
        """Write the composition, its model and dataset, and ``mined_values`` (JSON of the values mined with
        the model) to a project file, atomically."""
        model = self.service.model
        dataset = self.service.items
        Project(self._composition, checkpoint=str(getattr(model, "path", "") or ""),
                dataset=str(getattr(dataset, "spec", "") or ""), mined_values=tuple(mined_values)).save(path)
        return Path(path)

    def open_project(self, path: str | Path) -> Project:
        """Load a project's composition into the composer (undoable). The project must fit the loaded model."""
        project = Project.load(path)
        self._check_fits(project, Path(path))
        self._push(project.composition, f"open {Path(path).name}")
        return project

    def _check_fits(self, project: Project, path: Path) -> None:
        model = self.service.model
        if model is None:
            raise StudioError(f"{path}: open a model first (the project was made with {project.checkpoint or '?'})")
        unknown = sorted(set(project.composition.slots) - set(self._slot_widgets))
        if unknown:
            raise StudioError(f"{path}: slots {', '.join(unknown)} are not in the loaded model ({model.method}: "
                              f"{', '.join(self._slot_widgets)}); open the project's model "
                              f"{project.checkpoint or ''} first")
        comp = project.composition
        items = [i for v in comp.slots.values() for s in (v.a, v.b) for i in source_items(s)]
        items += source_items(comp.base)
        dataset = self.service.items
        if items and dataset is None:
            raise StudioError(f"{path}: the project uses dataset items; open its dataset {project.dataset} first")
        bad = [i for i in items if not 0 <= i < len(dataset)] if items else []
        if bad:
            raise StudioError(f"{path}: items {bad[:5]} are outside the open dataset {dataset.spec} "
                              f"({len(dataset)} items); open the project's dataset {project.dataset} first")

    def _check_interpolation(self, frames: int) -> None:
        if self.service.model is None:
            raise StudioError("no model loaded: open a model before exporting")
        if frames < 2:
            raise StudioError(f"an interpolation needs at least 2 frames, not {frames}")
        if not any(v.b is not None and not v.locked for v in self._composition.slots.values()):
            raise StudioError("nothing to interpolate: no unlocked slot has a second source. Drop an item onto a "
                              "slot's B tile first.")
