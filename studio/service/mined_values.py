"""Value mining (paper 003): new attribute values found by combining attribute directions (v_blue + v_red -
v_green), or a value's cluster centre, named and kept for reuse.

A mined value keeps both what it is and how it was made: the slot's latent (exact reuse with the same model) and
the recipe (the directions, weights and amount), which another model with the same attribute values can replay.
Values live in one small JSON file: by default the user's own (in the user data folder, or $STUDIO_VALUES_FILE),
or any file given; a saved project carries the values mined with its model, and opening it adds those the user's
file lacks. Plain Python, torch-free.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.atomic import atomic_write_bytes
from studio.errors import StudioError
from studio.service.composition import Composition, DirectionStep, LatentSource, SlotValue

VERSION = 1
KIND = "attribute-studio-mined-values"
_SIGNED = re.compile(r"\s*(?P<sign>[+-])?\s*(?:(?P<weight>\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?")
_NAME = re.compile(r"^[\w][\w .+-]{0,63}$")


def default_values_path() -> Path:
    env = os.environ.get("STUDIO_VALUES_FILE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    from studio.paths import APP_NAME

    return Path(user_data_dir(APP_NAME, appauthor=False)) / "mined-values.json"


def parse_recipe(text: str, known: Sequence[str] = ()) -> tuple[tuple[str, float], ...]:
    """``blue+red-green`` or ``blue + 0.5*red - green`` -> ((blue, 1), (red, 0.5), (green, -1)). With ``known``
    values, a term is the longest known value at its place, so values holding '-' (``DejaVuSans-Bold``) work."""
    source = text.strip()
    if not source:
        raise StudioError("empty direction recipe; write values joined by + and -, e.g. blue+red-green")
    names = sorted(known, key=len, reverse=True)
    terms: list[tuple[str, float]] = []
    pos = 0
    while pos < len(source):
        m = _SIGNED.match(source, pos)
        assert m is not None  # every part of the pattern is optional
        if not terms and not m["sign"] and pos == 0:
            sign = 1.0
        elif not m["sign"]:
            raise StudioError(f"direction recipe {text!r}: expected + or - before {source[pos:].strip()!r}")
        else:
            sign = -1.0 if m["sign"] == "-" else 1.0
        weight = float(m["weight"]) if m["weight"] else 1.0
        pos = m.end()
        value = next((n for n in names if source.startswith(n, pos)), None)
        if value is None:
            end = re.compile(r"\s*[+-]").search(source, pos) if not names else None
            stop = end.start() if end else len(source)
            value = source[pos:stop].strip()
            if not source[pos:].strip():
                raise StudioError(f"direction recipe {text!r}: no value after the last sign")
            if names or not value:
                choices = f"; known values: {', '.join(known)}" if names else ""
                raise StudioError(f"direction recipe {text!r}: {source[pos:].strip()!r} is not a value{choices}")
            pos = stop
        else:
            pos += len(value)
        terms.append((value, sign * weight))
        pos = len(source) - len(source[pos:].lstrip())
    return tuple(terms)


def recipe_text(recipe: Sequence[tuple[str, float]]) -> str:
    """The inverse of ``parse_recipe``: ((blue, 1), (red, 1), (green, -1)) -> 'blue + red - green'."""
    out = []
    for k, (value, weight) in enumerate(recipe):
        sign = "-" if weight < 0 else "+"
        size = abs(weight)
        term = value if abs(size - 1.0) < 1e-9 else f"{size:g}*{value}"
        out.append(term if k == 0 and sign == "+" else (f"-{term}" if k == 0 else f"{sign} {term}"))
    return " ".join(out)


def mine(service: Any, composition: Composition, slot: str, recipe: Sequence[tuple[str, float]], amount: float,
         attribute: str | None = None) -> Composition:
    """``composition`` with ``slot`` moved ``amount`` along sum(weight * u_value) (a combined direction step)."""
    if not recipe:
        raise StudioError("a mined direction needs at least one value")
    (first, w0), rest = recipe[0], recipe[1:]
    if w0 == 0:
        raise StudioError(f"the first value of the recipe ({first}) has weight 0; put a weighted value first")
    combine = tuple((v, float(w) / w0) for v, w in rest)
    return service.toward_value(composition, slot, first, float(amount) * w0, attribute, combine)


@dataclass(frozen=True)
class MinedValue:
    """A named point of one slot's space, with the recipe it came from."""

    name: str
    slot: str
    attribute: str
    latent: tuple[float, ...]
    shape: tuple[int, ...]
    recipe: tuple[tuple[str, float], ...] = ()
    amount: float = 0.0
    centre_of: str = ""
    model_fingerprint: str = ""
    created: float = 0.0

    def source(self) -> LatentSource:
        return LatentSource(self.latent, self.shape)

    def describe(self) -> str:
        if self.centre_of:
            how = f"centre of {self.attribute}={self.centre_of}"
        elif self.recipe:
            how = f"{self.amount:+.2f} along {recipe_text(self.recipe)}"
        else:
            how = "a stored latent"
        return f"{self.name}: slot {self.slot}, {how}"

    def apply(self, service: Any, composition: Composition) -> Composition:
        """Put the value into its slot: the stored latent with the model that mined it; with another model whose
        slot has the same size, the stored latent would mean something else, so the recipe is replayed from the
        slot's current source (or the centre taken again)."""
        model = service.model
        if model is None:
            raise StudioError("no model is loaded; open a checkpoint first")
        if self.slot not in model.slot_names:
            raise StudioError(f"mined value {self.name!r} is for slot {self.slot!r}; this model's slots are "
                              f"{', '.join(model.slot_names)}")
        same_model = not self.model_fingerprint or self.model_fingerprint == model.fingerprint
        if same_model:
            locked = composition.slot(self.slot).locked
            return composition.with_slot(self.slot, SlotValue(a=self.source(), locked=locked))
        if self.centre_of:
            return service.jump_to_centre(composition, self.slot, self.centre_of, self.attribute)
        if self.recipe:
            return mine(service, composition, self.slot, self.recipe, self.amount, self.attribute)
        raise StudioError(f"mined value {self.name!r} was made with another model and has no recipe to replay")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "slot": self.slot, "attribute": self.attribute, "latent": list(self.latent),
                "shape": list(self.shape), "recipe": [[v, w] for v, w in self.recipe], "amount": self.amount,
                "centre_of": self.centre_of, "model_fingerprint": self.model_fingerprint, "created": self.created}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> MinedValue:
        try:
            return cls(str(data["name"]), str(data["slot"]), str(data.get("attribute", "")),
                       tuple(float(v) for v in data["latent"]), tuple(int(v) for v in data["shape"]),
                       tuple((str(v), float(w)) for v, w in data.get("recipe", [])), float(data.get("amount", 0.0)),
                       str(data.get("centre_of", "")), str(data.get("model_fingerprint", "")),
                       float(data.get("created", 0.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise StudioError(f"{where}: a mined value is damaged ({type(e).__name__}: {e}); delete it or fix "
                              "the file") from None


def capture(service: Any, composition: Composition, slot: str, name: str, attribute: str | None = None) -> MinedValue:
    """The current value of ``slot`` in ``composition`` as a named mined value, with its recipe (a combined
    direction step) or the centre it was jumped to when that is what the slot holds."""
    check_name(name)
    model = service.model
    if model is None:
        raise StudioError("no model is loaded; open a checkpoint first")
    spec = model.slot(slot)
    attribute = attribute or spec.attribute or ""
    latent = np.asarray(service.compose(composition).latents[slot], np.float32).reshape(-1)
    value = composition.slot(slot)
    recipe: tuple[tuple[str, float], ...] = ()
    amount = 0.0
    steps: tuple[DirectionStep, ...] = value.steps
    if steps:
        step = steps[-1]
        attribute = step.attribute
        recipe = ((step.value, 1.0), *step.combine)
        amount = step.amount
    return MinedValue(name, slot, attribute, tuple(float(v) for v in latent), tuple(spec.shape), recipe, amount,
                      "", model.fingerprint, time.time())


def for_model(values: Sequence[MinedValue], fingerprint: str) -> list[MinedValue]:
    """The values mined with the model of ``fingerprint`` (and those that name no model): what a project saved
    with that model carries."""
    return [v for v in values if not v.model_fingerprint or v.model_fingerprint == fingerprint]


def project_values(project: Any, where: str) -> list[MinedValue]:
    """A project's mined values, checked (a damaged one names the project file)."""
    return [MinedValue.from_json(v, f"{where}: mined value {k + 1}") for k, v in enumerate(project.mined_values)]


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise StudioError(f"{name!r} is not a usable name for a mined value: use up to 64 letters, digits, spaces, "
                          "'.', '+', '-' or '_', starting with a letter or digit")
    return name


class MinedValueStore:
    """The named values of one JSON file; every change rewrites the file atomically."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_values_path()

    def load(self) -> list[MinedValue]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StudioError(f"{self.path}: not a readable mined-values file ({e}); move it away to start afresh") \
                from None
        if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(data.get("values"), list):
            raise StudioError(f"{self.path}: not an Attribute Studio mined-values file (no 'kind': '{KIND}')")
        if int(data.get("version", 0)) > VERSION:
            raise StudioError(f"{self.path}: written by a newer Attribute Studio (format {data['version']})")
        return [MinedValue.from_json(v, str(self.path)) for v in data["values"]]

    def get(self, name: str) -> MinedValue:
        values = self.load()
        for v in values:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in values) or "none yet"
        raise StudioError(f"no mined value named {name!r} in {self.path}; saved values: {known}")

    def save(self, value: MinedValue) -> Path:
        """Add ``value``, replacing one of the same name."""
        check_name(value.name)
        values = [v for v in self.load() if v.name != value.name] + [value]
        return self._write(values)

    def remove(self, name: str) -> Path:
        values = self.load()
        if not any(v.name == name for v in values):
            raise StudioError(f"no mined value named {name!r} in {self.path}")
        return self._write([v for v in values if v.name != name])

    def merge(self, values: Sequence[MinedValue]) -> tuple[list[str], list[str]]:
        """Add the values whose names this file lacks (a project's, say). Returns the names added and the names
        left out because this file already holds a different value of that name (the file's own stays)."""
        held = {v.name: v for v in self.load()}
        added, clashing = [], []
        for value in values:
            mine = held.get(value.name)
            if mine is None:
                held[value.name] = value
                added.append(value.name)
            elif (mine.latent, mine.slot, mine.recipe) != (value.latent, value.slot, value.recipe):
                clashing.append(value.name)
        if added:
            self._write(list(held.values()))
        return added, clashing

    def _write(self, values: list[MinedValue]) -> Path:
        text = json.dumps({"version": VERSION, "kind": KIND, "values": [v.to_json() for v in values]}, indent=1)
        try:
            atomic_write_bytes(self.path, text.encode("utf-8"))
        except OSError as e:
            raise StudioError(f"{self.path}: cannot write the mined values ({e.strerror or e})") from None
        return self.path


__all__ = ["MinedValue", "MinedValueStore", "capture", "default_values_path", "for_model", "mine", "parse_recipe",
           "project_values", "recipe_text"]
