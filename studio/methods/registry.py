"""Methods by name. Every module in ``studio.methods`` that defines a ``Method`` subclass with a ``name`` is found
on first use, so adding a method means adding one module and nothing else."""

from __future__ import annotations

import importlib
import pkgutil

import studio.methods as package
from studio.methods.base import Method

_SKIP = {"base", "config", "registry", "blocks", "losses"}
_METHODS: dict[str, type[Method]] = {}


def _discover() -> None:
    if _METHODS:
        return
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in _SKIP:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Method) and obj.name and obj.__module__ == module.__name__:
                _METHODS[obj.name] = obj


def method_names() -> list[str]:
    _discover()
    order = ["gzs", "deae", "lord", "adversarial", "mixing"]
    return sorted(_METHODS, key=lambda n: (order.index(n) if n in order else len(order), n))


def get_method(name: str) -> type[Method]:
    _discover()
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; choose one of {', '.join(method_names())}") from None
