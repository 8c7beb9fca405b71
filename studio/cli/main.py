"""Entry point of ``studio``. Every module in ``studio.cli`` with a ``register(subparsers)`` function adds its
sub-command, so sub-commands never collide in one file."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable
from typing import Any

import studio.cli as package
from studio import __version__
from studio.errors import StudioError


class CommandParser(argparse.ArgumentParser):
    """A sub-command's parser that may add arguments depending on the command line before it parses it (``studio
    train --method NAME`` adds that method's options, so ``--help`` lists them too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._before_parse: list[Callable[[CommandParser, list[str]], None]] = []

    def before_parse(self, hook: Callable[[CommandParser, list[str]], None]) -> None:
        """Call ``hook(parser, args)`` with the command's arguments before they are parsed."""
        self._before_parse.append(hook)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        for hook in self._before_parse:
            hook(self, args)
        return super().parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description="Attribute Studio: compose images attribute by "
                                     "attribute with disentangled autoencoders.")
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name in {"main"} or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except StudioError as e:
        print(f"studio: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
