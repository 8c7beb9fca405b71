"""Hyper-parameters as dataclasses: one source of truth for defaults and help, rendered by the CLI and the GUI."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FormHints:
    """What only a form needs to show a field, declared beside its default, help and bounds so that a form built
    from the declaration states nothing about the field a second time (the run settings' Training tab rows).

    A field whose default is None (a value a resumed run keeps) shows a new run's value: its first choice or its
    lowest value.
    """

    label: str
    #: the box the field sits in ("Run", "Saving", ...)
    group: str = "Run"
    #: after the number, e.g. " min"
    suffix: str = ""
    #: shown instead of the lowest value, e.g. "none" for a time budget of 0
    special: str = ""
    #: words for choices, as (value, words) pairs; a choice without words shows as itself
    choice_labels: tuple[tuple[Any, str], ...] = ()
    #: the values a form offers for a field the command line takes more freely (a device: cuda:1 as well)
    offers: tuple[Any, ...] = ()
    decimals: int = 2
    step: float = 1.0
    #: digits grouped in thousands (1,000,000), for counts that run into millions
    thousands: bool = False
    #: a resumed run keeps its own value: the form disables the field and sends None while resuming
    kept_on_resume: bool = False
    #: worth remembering between sessions (the device is not: the preferences choose it)
    remembered: bool = True

    def choice_label(self, value: Any) -> str:
        """The words a form shows for one choice."""
        return dict(self.choice_labels).get(value, str(value))


def option(default: Any, help: str, *, choices: tuple[Any, ...] | None = None, low: float | None = None,
           high: float | None = None, form: FormHints | None = None) -> Any:
    """A dataclass field that carries its help text (and bounds or choices) for forms and ``--help``; ``form``:
    how a form built from the declaration shows it (only the run settings' fields have one)."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "form": form}
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
    #: how a form shows the field (None: a form of its own kind decides, as the method options' does)
    form: FormHints | None = None

    @property
    def offered(self) -> tuple[Any, ...]:
        """The values a form offers: the choices, else the ones its form hints suggest (empty: any value)."""
        if self.choices:
            return tuple(self.choices)
        return self.form.offers if self.form is not None else ()

    @property
    def new_run_value(self) -> Any:
        """The value a new run takes: the default, or for a None default (a value a resumed run keeps) the first
        value offered, else the lowest allowed (a new run's schedule is "none", its time budget 0)."""
        if self.default is not None:
            return self.default
        if self.offered:
            return self.offered[0]
        if self.low is not None:
            return self.type(self.low) if self.type in (int, float) else self.low
        return self.type() if self.type in (int, float, str, bool) else None


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
                               f.metadata.get("choices"), f.metadata.get("low"), f.metadata.get("high"),
                               f.metadata.get("form")))
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
