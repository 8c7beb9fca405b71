"""Hyper-parameters as dataclasses: one source of truth for defaults and help, rendered by the CLI and the GUI."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any


def option(default: Any, help: str, *, choices: tuple[Any, ...] | None = None, low: float | None = None,
           high: float | None = None) -> Any:
    """A dataclass field that carries its help text (and bounds or choices) for forms and ``--help``."""
    meta = {"help": help, "choices": choices, "low": low, "high": high}
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ConfigField:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None
    low: float | None
    high: float | None


def config_fields(cls: type) -> list[ConfigField]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:  # a required field (TrainSettings' method, dataset and out)
            default = dataclasses.MISSING
        tp = hints[f.name]
        origin = typing.get_origin(tp)
        if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        out.append(ConfigField(f.name, typing.get_origin(tp) or tp, default, f.metadata.get("help", ""),
                               f.metadata.get("choices"), f.metadata.get("low"), f.metadata.get("high")))
    return out


def config_to_json(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_json(cls: type, data: dict[str, Any]) -> Any:
    """Build a config, ignoring keys a newer version dropped and keeping defaults for keys it added."""
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for f in config_fields(cls):
        if f.name in data and f.name in known:
            value = data[f.name]
            if f.type is tuple and isinstance(value, list):
                value = tuple(value)
            kwargs[f.name] = value
    return cls(**kwargs)


def parse_value(f: ConfigField, text: str) -> Any:
    """Parse a command-line or text-box value for a field, with a message that names the field."""
    try:
        if f.type is bool:
            low = text.strip().lower()
            if low not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError
            value: Any = low in {"1", "true", "yes", "on"}
        elif f.type is int:
            value = int(text)
        elif f.type is float:
            value = float(text)
        elif f.type is tuple:
            value = tuple(int(v) for v in text.split(",") if v.strip())
        else:
            value = text
    except ValueError:
        raise ValueError(f"--{f.name.replace('_', '-')}: {text!r} is not a valid {f.type.__name__}") from None
    if f.choices and value not in f.choices:
        raise ValueError(f"--{f.name.replace('_', '-')}: choose one of {', '.join(map(str, f.choices))}")
    if (f.low is not None and value < f.low) or (f.high is not None and value > f.high):
        raise ValueError(f"--{f.name.replace('_', '-')}: {value} is outside [{f.low}, {f.high}]")
    return value
