"""Named categorical attributes and their vocabularies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Attribute:
    """One categorical attribute; ``rgb`` is set when the values are colours (drawn as swatches in the UI)."""

    name: str
    values: tuple[str, ...]
    rgb: tuple[tuple[int, int, int], ...] | None = None

    def __post_init__(self) -> None:
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"attribute {self.name!r} has repeated values")
        if self.rgb is not None and len(self.rgb) != len(self.values):
            raise ValueError(f"attribute {self.name!r}: one RGB triple per value is needed")

    @property
    def cardinality(self) -> int:
        return len(self.values)

    def index(self, value: str) -> int:
        try:
            return self.values.index(value)
        except ValueError:
            known = ", ".join(self.values[:12]) + (" ..." if len(self.values) > 12 else "")
            raise KeyError(f"{self.name} has no value {value!r}; known values: {known}") from None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "values": list(self.values)}
        if self.rgb is not None:
            out["rgb"] = [list(c) for c in self.rgb]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attribute:
        rgb = tuple(tuple(c) for c in data["rgb"]) if data.get("rgb") else None
        return cls(data["name"], tuple(data["values"]), rgb)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AttributeSchema:
    """The ordered attributes of a dataset; column j of a code table holds indices into attribute j."""

    attributes: tuple[Attribute, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.attributes)

    def __iter__(self):
        return iter(self.attributes)

    def __getitem__(self, key: int | str) -> Attribute:
        if isinstance(key, int):
            return self.attributes[key]
        return self.attributes[self.position(key)]

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    @property
    def cardinalities(self) -> list[int]:
        return [a.cardinality for a in self.attributes]

    def position(self, name: str) -> int:
        for j, a in enumerate(self.attributes):
            if a.name == name:
                return j
        raise KeyError(f"no attribute named {name!r}; attributes are: {', '.join(self.names)}")

    def decode_row(self, row) -> dict[str, str]:
        return {a.name: a.values[int(v)] for a, v in zip(self.attributes, row)}

    def encode_values(self, values: dict[str, str]) -> dict[int, int]:
        """Map ``{"letter": "A"}`` to ``{0: 0}``; unknown names or values raise KeyError with the choices."""
        return {self.position(k): self[k].index(v) for k, v in values.items()}

    def to_json(self) -> list[dict[str, Any]]:
        return [a.to_json() for a in self.attributes]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> AttributeSchema:
        return cls(tuple(Attribute.from_json(a) for a in data))
