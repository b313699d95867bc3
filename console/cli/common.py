"""What the ``register(subparsers, common)`` command modules share: argument types, the command group, the version.

A command module (``backup``, ``node``, ...) adds one top-level command whose actions each
set ``func(args, output) -> int``; ``CommandGroup`` holds that wiring once, so every module builds
its parsers the same way. Only the standard library is imported: building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "BACKENDS",
    "CommandGroup",
    "absolute_path",
    "add_command",
    "data_dir_option",
    "listen_port",
    "port_number",
    "repository",
    "whole_number",
    "positive_int",
    "positive_seconds",
    "version",
]

# The engine backends by name; spelled out rather than asked of ``engines``, which the parser must not import.
BACKENDS = ("cow", "lsm", "rocksdb")


def absolute_path(text: str) -> Path:
    """An absolute path, so messages say exactly where, whatever the working directory was.

    An empty one is refused: it would silently mean the working directory.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (it would mean the current directory)")
    if "\0" in text:
        raise argparse.ArgumentTypeError("a path cannot hold a NUL byte")
    encoded = os.fsencode(text)
    if len(encoded) >= 4096 or any(len(part) > 255 for part in encoded.split(b"/")):
        raise argparse.ArgumentTypeError(f"the path {text[:60]}... is longer than a path can be")
    return Path(text).absolute()


def repository(text: str) -> Path | str:
    """A backup repository: a local path (made absolute) or an ``sftp://USER@HOST[:PORT]/PATH`` URL."""
    if "://" not in text:
        return absolute_path(text)
    from engines.backup.location import location_text  # small, standard library only
    from engines.errors import EngineError

    try:
        return location_text(text)
    except EngineError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def whole_number(text: str) -> int:
    """A count: a whole number, zero or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def positive_int(text: str) -> int:
    """A count of at least one."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError("it must be at least 1")
    return value


def positive_seconds(text: str) -> float:
    """A duration in seconds, more than zero and finite."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _port(text: str, lowest: int, why_lowest: str = "") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range {lowest}-65535{why_lowest}")
    return value


def port_number(text: str) -> int:
    """A TCP port to connect to or listen on, 1-65535."""
    return _port(text, 1)


def listen_port(text: str) -> int:
    """A TCP port for a server to listen on, 0-65535: 0 lets the system pick a free one (tests, demos)."""
    return _port(text, 0, " (0: any free port)")


def data_dir_option(parser: argparse.ArgumentParser, *, engine_option: bool = True) -> None:
    """``--data-dir D`` (required), and ``--engine`` to fail unless D holds that backend."""
    parser.add_argument(
        "--data-dir", required=True, type=absolute_path, metavar="D", help="the engine's data directory"
    )
    if engine_option:
        parser.add_argument(
            "--engine", choices=BACKENDS, default=None, help="fail unless the data dir holds this backend"
        )


JSON_HELP = "print exactly one JSON object on stdout"


def _own_json(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # SUPPRESS where a group's --json comes first: the action's parser then leaves the group's value alone
    if suppress:
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
    else:
        parser.add_argument("--json", action="store_true", help=JSON_HELP)


def add_command(
    subparsers: Any,
    name: str,
    help_text: str,
    func: Callable[..., int],
    common: argparse.ArgumentParser | None = None,
    *,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A top-level command without actions (``triage``); running it calls ``func(args, output)``.

    Without ``common`` it gets its own ``--json``, as a ``CommandGroup``'s actions do.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        parents=[common] if common is not None else [],
        help=help_text,
        description=help_text if description is None else description,
    )
    if common is None:
        _own_json(parser, suppress=True)
    parser.set_defaults(func=func)
    return parser


class CommandGroup:
    """One top-level command (``backup``, ``node``, ...) and its actions, each with its handler.

    ``common`` is the main parser's shared options (``--config``, ``--json``), accepted after the
    command and after each action too. Without it (a parser built on its own, as in a test) each
    action gets its own ``--json``, so a handler can always read ``args.json``; with ``json_on_group``
    the command takes one too (``drill --json list``), and then ``args.json`` is set only when given:
    read it with ``getattr(args, "json", False)`` (``console.output.output_for`` does).
    ``description``: the command's ``--help`` text when it says more than ``help_text``.
    """

    def __init__(
        self,
        subparsers: Any,
        name: str,
        help_text: str,
        common: argparse.ArgumentParser | None = None,
        *,
        description: str | None = None,
        json_on_group: bool = False,
    ) -> None:
        self.parents = [common] if common is not None else []
        self.own_json = common is None
        self.json_on_group = json_on_group
        options: dict[str, Any] = {"description": description} if description is not None else {}
        self.parser: argparse.ArgumentParser = subparsers.add_parser(
            name, parents=self.parents, help=help_text, **options
        )
        if self.own_json and json_on_group:
            _own_json(self.parser, suppress=True)
        self._actions: Any = self.parser.add_subparsers(
            dest="action", metavar="ACTION", required=True, parser_class=type(self.parser)
        )

    def add(
        self, name: str, help_text: str, func: Callable[..., int], *, description: str | None = None
    ) -> argparse.ArgumentParser:
        """The parser of action ``name``; running it calls ``func(args, output)``.

        ``description``: its ``--help`` text when it says more than ``help_text`` (the default).
        """
        parser: argparse.ArgumentParser = self._actions.add_parser(
            name, parents=self.parents, help=help_text, description=help_text if description is None else description
        )
        if self.own_json:
            _own_json(parser, suppress=self.json_on_group)
        parser.set_defaults(func=func)
        return parser


def version() -> str:
    """The installed distribution's version (what `pip show drconsole` says)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("drconsole")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"
