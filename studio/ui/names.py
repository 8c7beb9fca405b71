"""Human titles for internal names: the UI says "Font colour: red", never "font_color = red"."""

from __future__ import annotations

from typing import Any

#: Words spelled the way the rest of the UI spells them.
_WORDS = {"color": "colour", "colors": "colours"}


def attribute_title(name: str) -> str:
    """``font_color`` -> ``Font colour``; ``top_left`` -> ``Top left``."""
    words = [_WORDS.get(w.lower(), w) for w in str(name).replace("-", " ").replace("_", " ").split()]
    if not words:
        return str(name)
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def value_phrase(attribute: str, value: str) -> str:
    """``("font_color", "red")`` -> ``Font colour: red``."""
    return f"{attribute_title(attribute)}: {value}"


def values_phrase(values: dict[str, str]) -> str:
    """Several attribute values, comma-separated, in human titles."""
    return ", ".join(value_phrase(k, v) for k, v in values.items())


def slot_title(spec: Any) -> str:
    """A slot's label (its method's, else its name) as a title."""
    return attribute_title(getattr(spec, "label", "") or getattr(spec, "name", str(spec)))
