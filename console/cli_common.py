"""What the ``register(subparsers, common)`` command modules share: argument types and the command group.

A command module (``cli_backup``, ``cli_node``, ...) adds one top-level command whose actions each
set ``func(args, output) -> int``; ``CommandGroup`` holds that wiring once, so every module builds
its parsers the same way. Only the standard library is imported: building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BACKENDS", "CommandGroup", "absolute_path", "port_number", "whole_number"]

# The engine backends by name; spelled out rather than asked of ``engines``, which the parser must not import.
BACKENDS = ("cow", "lsm", "rocksdb")


def absolute_path(text: str) -> Path:
    """An absolute path, so messages say exactly where, whatever the working directory was."""
    return Path(text).absolute()


def whole_number(text: str) -> int:
    """A count: a whole number, zero or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def port_number(text: str) -> int:
    """A TCP port to connect to or listen on, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range 1-65535")
    return value


class CommandGroup:
    """One top-level command (``backup``, ``node``, ...) and its actions, each with its handler.

    ``common`` is the main parser's shared options (``--config``, ``--json``), accepted after the
    command and after each action too. Without it (a parser built on its own, as in a test) each
    action gets its own ``--json``, so a handler can always read ``args.json``.
    """

    def __init__(self, subparsers: Any, name: str, help_text: str,
                 common: argparse.ArgumentParser | None = None) -> None:
        self.parents = [common] if common is not None else []
        self.own_json = common is None
        self.parser: argparse.ArgumentParser = subparsers.add_parser(name, parents=self.parents, help=help_text)
        self._actions: Any = self.parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                                        parser_class=type(self.parser))

    def add(self, name: str, help_text: str, func: Callable[..., int]) -> argparse.ArgumentParser:
        """The parser of action ``name``; running it calls ``func(args, output)``."""
        parser: argparse.ArgumentParser = self._actions.add_parser(name, parents=self.parents, help=help_text,
                                                                   description=help_text)
        if self.own_json:
            parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
        parser.set_defaults(func=func)
        return parser
