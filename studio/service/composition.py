"""Compositions: for each slot, where its value comes from. The composer, the CLI and the tests speak these;
the model service turns them into pixels. Plain data, JSON round-trip, no torch and no Qt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from studio.errors import StudioError

VERSION = 1


@dataclass(frozen=True)
class ItemSource:
    """An item of the open dataset, by index."""

    index: int


@dataclass(frozen=True)
class FileSource:
    """An image file the user brought from disk; encoded through the service."""

    path: str


@dataclass(frozen=True)
class LatentSource:
    """A stored latent value for one slot (flattened)."""

    values: tuple[float, ...]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class MixtureSource:
    """A convex combination of several sources (paper 004, eq. 11); weights are normalised when used."""

    parts: tuple[tuple[Source, float], ...]


Source = ItemSource | FileSource | LatentSource | MixtureSource


@dataclass(frozen=True)
class DirectionStep:
    """Move along the unit direction of ``value`` of ``attribute`` (paper 003 UDVs) by ``amount`` latent units.

    ``combine`` adds further signed directions, e.g. ``(("red", 1.0), ("green", -1.0))`` for v_blue+v_red-v_green.
    """

    attribute: str
    value: str
    amount: float
    combine: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class SlotValue:
    """One slot: source ``a``, optionally a second source ``b`` and the position ``t`` between them, plus steps
    along attribute directions. ``locked`` slots ignore the global slider."""

    a: Source | None = None
    b: Source | None = None
    t: float = 0.0
    steps: tuple[DirectionStep, ...] = ()
    locked: bool = False

    def with_t(self, t: float) -> SlotValue:
        return replace(self, t=min(1.0, max(0.0, float(t))))


@dataclass(frozen=True)
class Composition:
    """Slot name -> SlotValue. Slots left out, or with no source, take ``base``."""

    slots: dict[str, SlotValue] = field(default_factory=dict)
    base: Source | None = None

    def slot(self, name: str) -> SlotValue:
        return self.slots.get(name, SlotValue())

    def with_slot(self, name: str, value: SlotValue) -> Composition:
        return replace(self, slots={**self.slots, name: value})

    def with_global_t(self, t: float) -> Composition:
        """The global slider: move every unlocked slot that has a second source."""
        slots = {k: (v.with_t(t) if v.b is not None and not v.locked else v) for k, v in self.slots.items()}
        return replace(self, slots=slots)

    def resolved_source(self, name: str) -> Source | None:
        return self.slot(name).a or self.base

    # --- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "base": _source_to_json(self.base),
                "slots": {k: _slot_to_json(v) for k, v in self.slots.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Composition:
        if not isinstance(data, dict) or "slots" not in data:
            raise StudioError("not a composition: expected a JSON object with a 'slots' field")
        version = int(data.get("version", 0))
        if version > VERSION:
            raise StudioError(f"composition format {version} is newer than this Attribute Studio ({VERSION})")
        return cls({k: _slot_from_json(v, k) for k, v in data["slots"].items()},
                   _source_from_json(data.get("base"), "base"))


@dataclass(frozen=True)
class Project:
    """A saved composer session: which model and dataset it was made with, the composition, and the mined values
    (``studio.service.mined_values``, as their JSON) saved for that model, so the project carries them along."""

    composition: Composition
    checkpoint: str = ""
    dataset: str = ""
    note: str = ""
    mined_values: tuple[dict[str, Any], ...] = ()

    def save(self, path: str | Path) -> None:
        from studio.training.checkpoint import atomic_write_json

        atomic_write_json(Path(path), {"version": VERSION, "kind": "attribute-studio-project",
                                       "checkpoint": self.checkpoint, "dataset": self.dataset,
                                       "note": self.note, "composition": self.composition.to_json(),
                                       "mined_values": [dict(v) for v in self.mined_values]})

    @classmethod
    def load(cls, path: str | Path) -> Project:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise StudioError(f"{p}: no such project file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StudioError(f"{p}: not a readable project file ({e})") from None
        if not isinstance(data, dict) or data.get("kind") != "attribute-studio-project":
            raise StudioError(f"{p}: not an Attribute Studio project (no 'kind': 'attribute-studio-project')")
        try:
            comp = Composition.from_json(data["composition"])
        except StudioError as e:
            raise StudioError(f"{p}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise StudioError(f"{p}: the composition is damaged ({type(e).__name__}: {e})") from None
        texts = {k: data.get(k, "") for k in ("checkpoint", "dataset", "note")}
        wrong = [k for k, v in texts.items() if not isinstance(v, str)]
        if wrong:
            raise StudioError(f"{p}: {', '.join(wrong)} must be text, not {type(texts[wrong[0]]).__name__}")
        values = data.get("mined_values", [])
        if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
            raise StudioError(f"{p}: 'mined_values' must be a list of mined values (JSON objects); delete the field "
                              "to open the project without them")
        return cls(comp, texts["checkpoint"], texts["dataset"], texts["note"], tuple(values))


def _source_to_json(s: Source | None) -> Any:
    if s is None:
        return None
    if isinstance(s, ItemSource):
        return {"item": s.index}
    if isinstance(s, FileSource):
        return {"file": s.path}
    if isinstance(s, LatentSource):
        return {"latent": list(s.values), "shape": list(s.shape)}
    return {"mixture": [[_source_to_json(src), w] for src, w in s.parts]}


def _source_from_json(d: Any, where: str) -> Source | None:
    if d is None:
        return None
    if "item" in d:
        return ItemSource(int(d["item"]))
    if "file" in d:
        return FileSource(str(d["file"]))
    if "latent" in d:
        return LatentSource(tuple(float(v) for v in d["latent"]), tuple(int(v) for v in d["shape"]))
    if "mixture" in d:
        parts = []
        for src, w in d["mixture"]:
            inner = _source_from_json(src, where)
            if inner is None:
                raise StudioError(f"slot {where}: a mixture part has no source")
            parts.append((inner, float(w)))
        return MixtureSource(tuple(parts))
    raise StudioError(f"slot {where}: unknown source {d!r}; expected item, file, latent or mixture")


def _slot_to_json(v: SlotValue) -> dict[str, Any]:
    return {"a": _source_to_json(v.a), "b": _source_to_json(v.b), "t": v.t, "locked": v.locked,
            "steps": [{"attribute": s.attribute, "value": s.value, "amount": s.amount,
                       "combine": [list(c) for c in s.combine]} for s in v.steps]}


def _slot_from_json(d: dict[str, Any], name: str) -> SlotValue:
    steps = tuple(DirectionStep(s["attribute"], s["value"], float(s["amount"]),
                                tuple((str(c[0]), float(c[1])) for c in s.get("combine", [])))
                  for s in d.get("steps", []))
    return SlotValue(_source_from_json(d.get("a"), name), _source_from_json(d.get("b"), name),
                     float(d.get("t", 0.0)), steps, bool(d.get("locked", False)))
