"""The bad-input table, generated from the real parser (issue 18, "Tests"): it grows with the CLI.

For every leaf command of ``console.cli.main.build_parser()`` a *baseline* command line is built from
the world's valid values (``BASE``); each case then breaks exactly one argument of it in one way:

    missing       a required argument left out                                 -> 2
    bad-choice    a value outside the argument's choices                       -> 2
    garbage       a typed argument given text that is no value of its type     -> 2
    wrong-type    a number of the wrong kind (1.5 for a count, [1] for seconds) -> 2
    negative      -5 for a count, a size, a duration                           -> 2
    huge          a 5000-digit number                                           -> 2
    non-utf8      text that is not UTF-8 (bytes the shell passed undecoded)     -> 2
    nul           a NUL byte in text or a path                                  -> 2
    empty-path    ""  (it would mean the current directory)                     -> 2
    long-path     a path component of 300 bytes                                 -> 2
    bad-url       not an http(s) URL                                            -> 2
    config-*      --config naming a missing file or a directory                 -> 2
    not-there     a data dir or repository that does not exist                  -> 3
    a-file        a regular file where a directory belongs                      -> 3
    unwritable    a path below a regular file (no one, root included, can make it) -> 3
    wrong-backend --engine naming another backend than the data dir holds       -> 3
    read-only     a change-making command on a read-only mount (as root)        -> 3
    deep-json     an import line nested 100k deep                                -> 2
    reserved      a key under __drconsole__/ (the node's own)                    -> 2
    seats         serve ssh --responder-seats above --max-sessions               -> 2
    damaged-*     backup restore from an archive with a flipped byte, or unreadable metadata -> 1

Where the message is certain, the case also names words the error line must hold (``MESSAGES``).

Commands that serve or run until stopped (``node serve``, ``serve``, ``tui``, ``drill run`` ...)
get only the cases their parser refuses: a case that passed would start a server.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

from console.cli.main import build_parser

__all__ = ["Case", "cases", "leaves", "LONG_RUNNING", "BASE", "EXPECTED"]

# Where a case that got past parsing would run a long time or start a server.
LONG_RUNNING = frozenset(
    {"tui", "dashboard", "demo", "node serve", "serve ssh", "serve web", "status", "drill run", "drill all"}
)

EXPECTED = {
    "missing": 2,
    "bad-choice": 2,
    "garbage": 2,
    "wrong-type": 2,
    "negative": 2,
    "huge": 2,
    "non-utf8": 2,
    "nul": 2,
    "empty-path": 2,
    "long-path": 2,
    "bad-url": 2,
    "config-missing": 2,
    "config-directory": 2,
    "not-there": 3,
    "a-file": 3,
    "unwritable": 3,
    "wrong-backend": 3,
    "read-only": 3,
    "deep-json": 2,
    "reserved": 2,
    "seats": 2,
    "damaged-archive": 1,
    "damaged-metadata": 1,
}
MESSAGES = {
    "missing": "required",
    "bad-choice": "invalid choice",
    "non-utf8": "UTF-8",
    "nul": "NUL",
    "empty-path": "empty path",
    "long-path": "longer than a path can be",
    "config-missing": "does not exist",
    "config-directory": "is a directory",
    "not-there": "does not exist",
    "read-only": "read-only file system",
    "wrong-backend": "not cow",
    "deep-json": "line 2",
    "reserved": "reserved",
    "seats": "--responder-seats",
    "damaged-archive": "damaged",
    "damaged-metadata": "metadata.json",
}

# Valid values by argument (dest), with the world's places in braces (test_cli_bad_input_table.World).
BASE: dict[str, str] = {
    "data_dir": "{data}",
    "repo": "{repo}",
    "key": "k",
    "value": "v",
    "input": "{rows}",
    "output": "{out}",
    "url": "{dead}",
    "follow": "{dead}",
    "primary": "{dead}",
    "run_id": "20990101-000000-000-dead",
    "backup_id": "latest",
    "kind": "wal-corrupt-tail",
    "scenario": "process-kill",
    "shell": "bash",
    "engine": "lsm",
    "id": "INC-20990101-001",
    "node": "orders",
}
BASE_BY_COMMAND: dict[str, dict[str, str]] = {
    "node serve": {"port": "65000"},
    "serve web": {"port": "0"},
    "playbook show": {"id": "cache-corruption"},
    "playbook run": {"id": "cache-corruption"},
    "engine init": {"data_dir": "{fresh}"},
    "backup restore": {"data_dir": "{fresh}"},
    "incident report": {"output": "{out}"},
}
# One of a required group (playbook run, triage: --node or --data-dir).
GROUP_CHOICE: dict[str, list[str]] = {"playbook run": ["--data-dir", "{data}"], "triage": ["--data-dir", "{data}"]}

# What a path argument must be: an existing data dir, repository or file (the semantic cases apply).
EXISTING = {"data_dir": "data", "repo": "repo", "input": "rows"}
# Commands whose data dir or repository need not exist yet (they make it).
MAKES = {
    ("engine init", "data_dir"),
    ("backup restore", "data_dir"),
    ("backup create", "repo"),
    ("backup schedule", "repo"),
    ("node serve", "data_dir"),
}
# Paths a command only names (a unit file to generate, the evidence of triage: a missing data dir is
# an answer there), or needs only for some kinds (fault inject --repo: the backup faults).
NOT_CHECKED = {("backup schedule", "data_dir"), ("triage", "data_dir"), ("triage", "repo"), ("fault inject", "repo")}
INPUT_FILES = {"input"}  # a file to read that is not there or not a file: bad input (2), not a target (3)
# What a command writes: on a read-only mount it must fail cleanly (3). (wal truncate is not here: the
# world's WAL is clean, so it has nothing to cut and writes nothing.)
WRITES = {
    (command, "data_dir")
    for command in (
        "engine put",
        "engine delete",
        "engine import",
        "engine flush",
        "engine compact",
        "engine repair",
        "fault inject",
    )
}
WRITES |= {("backup create", "repo"), ("backup prune", "repo")}
# Confirmed in the baseline, so that a case reaches the check it is about, not the confirmation.
CONFIRM = {"engine repair", "wal truncate", "backup prune"}

_NUMBER_TYPES = {
    "int",
    "float",
    "whole_number",
    "positive_int",
    "port_number",
    "listen_port",
    "_positive_int",
    "_seconds",
    "_interval",
    "_rate",
    "_size",
    "_megabytes",
    "positive_seconds",
    "_epoch",
}
_NO_NEGATIVE = _NUMBER_TYPES - {"int", "float"}


@dataclass(frozen=True)
class Case:
    command: str
    argument: str  # the option string or positional name that is broken
    kind: str
    argv: tuple[str, ...]  # with {places} still to fill
    expected: int

    @property
    def contains(self) -> tuple[str, ...]:
        """Words one of which the error line must hold (none: any clean line will do)."""
        if self.kind == "non-utf8":
            return ("UTF-8", "invalid choice")
        found = MESSAGES.get(self.kind)
        return (found,) if found else ()

    @property
    def id(self) -> str:
        return f"{self.command.replace(' ', '-')}:{self.argument}:{self.kind}"


def leaves(
    parser: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every runnable command: (\"engine put\", its parser)."""
    parser = parser or build_parser()
    subs = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for sub in subs:
        for name, child in sub.choices.items():
            yield from leaves(child, (*path, name))


def _type_name(action: argparse.Action) -> str:
    kind = action.type
    return getattr(kind, "__name__", "") if kind is not None else ""


def _own(action: argparse.Action) -> bool:
    return action.dest not in ("help", "config", "json", "version") and not isinstance(
        action, (argparse._HelpAction, argparse._VersionAction)
    )


def _value(command: str, action: argparse.Action) -> str:
    if action.dest in BASE_BY_COMMAND.get(command, {}):
        return BASE_BY_COMMAND[command][action.dest]
    if action.dest in BASE:
        return BASE[action.dest]
    if action.choices:
        return str(next(iter(action.choices)))
    raise KeyError(f"no baseline value for {command} {action.dest}: add it to BASE")


def _baseline(command: str, parser: argparse.ArgumentParser) -> list[tuple[argparse.Action, list[str]]]:
    """(action, its words) of the baseline, in order: required options, then positionals."""
    parts: list[tuple[argparse.Action, list[str]]] = []
    for action in parser._actions:
        if not _own(action):
            continue
        if action.option_strings and action.required:
            parts.append((action, [action.option_strings[0], _value(command, action)]))
        elif not action.option_strings and action.nargs not in ("?", "*"):
            parts.append((action, [_value(command, action)]))
    return parts


def _assemble(command: str, parts: list[tuple[argparse.Action, list[str]]], extra: list[str]) -> tuple[str, ...]:
    words = ["--config", "{config}", *command.split()]
    for _, argument in parts:
        words += argument
    group = GROUP_CHOICE.get(command, [])
    if {"--node", "--data-dir"} & set(extra):
        group = []
    return (*words, *group, *extra, *(["--yes"] if command in CONFIRM else []))


def _broken_values(command: str, action: argparse.Action) -> list[tuple[str, str]]:
    """(kind, value) that must be refused for this argument."""
    type_name = _type_name(action)
    found: list[tuple[str, str]] = []
    if action.choices:
        found.append(("bad-choice", "no-such-choice"))
        if action.dest != "shell":
            found.append(("non-utf8", "lsm\udcff"))
        return found
    if type_name in _NUMBER_TYPES:
        found += [("garbage", "ten%"), ("wrong-type", "[1]"), ("huge", "9" * 5000)]
        if type_name not in ("float", "_seconds", "_interval", "_rate", "positive_seconds", "_size", "_megabytes"):
            found.append(("wrong-type", "1.5"))
        if type_name in _NO_NEGATIVE:
            found.append(("negative", "-5"))
        return found
    if type_name == "absolute_path":
        return [("empty-path", ""), ("nul", "a\0b"), ("long-path", "/tmp/" + "x" * 300)]
    if type_name == "_url":
        return [("bad-url", "127.0.0.1:8081"), ("bad-url", "ftp://host/x"), ("non-utf8", "http://\udcff")]
    if type_name == "since_time":
        return [("garbage", "yesterday-ish"), ("huge", "9" * 50 + "d")]
    if type_name in ("", "str") and action.nargs in (None, "?") and action.dest not in ("key", "value"):
        return [("non-utf8", "x\udcffy"), ("nul", "x\0y")]
    return found


def _semantic(command: str, action: argparse.Action) -> list[tuple[str, str]]:
    """Well-formed values that name the wrong thing (only where the command would act)."""
    if command in LONG_RUNNING or action.dest not in EXISTING or (command, action.dest) in MAKES | NOT_CHECKED:
        return []
    found = [("not-there", "{missing}"), ("a-file", "{file}"), ("unwritable", "{file}/below")]
    if (command, action.dest) in WRITES:
        found.append(("read-only", "{ro_" + EXISTING[action.dest] + "}"))
    return found


def cases() -> list[Case]:
    found: list[Case] = []
    for command, parser in leaves():
        parts = _baseline(command, parser)
        for index, (action, _words) in enumerate(parts):
            name = action.option_strings[0] if action.option_strings else action.dest
            without = parts[:index] + parts[index + 1 :]
            if not (command in GROUP_CHOICE and action.dest == "data_dir"):
                found.append(Case(command, name, "missing", _assemble(command, without, []), 2))
        for action in parser._actions:
            if not _own(action):
                continue
            name = action.option_strings[0] if action.option_strings else action.dest
            broken = _broken_values(command, action) + _semantic(command, action)
            for kind, value in broken:
                replaced = [
                    (a, ([w[0], value] if a.option_strings else [value]) if a is action else w) for a, w in parts
                ]
                extra = [] if any(a is action for a, _ in parts) else ([name, value] if action.option_strings else [])
                if not action.option_strings and not any(a is action for a, _ in parts):
                    continue  # an optional positional not in the baseline
                expected = 2 if action.dest in INPUT_FILES else EXPECTED[kind]
                found.append(Case(command, name, kind, _assemble(command, replaced, extra), expected))
        if (
            any(action.dest == "engine" for action in parser._actions)
            and command.startswith("engine ")
            and command != "engine init"
        ):
            found.append(Case(command, "--engine", "wrong-backend", _assemble(command, parts, ["--engine", "cow"]), 3))
        if command == "engine import":
            found.append(
                Case(
                    command,
                    "--input",
                    "deep-json",
                    _assemble(command, [(a, [w[0], "{deep}"] if a.dest == "input" else w) for a, w in parts], []),
                    2,
                )
            )
        if command in ("engine put", "engine delete"):
            found.append(
                Case(
                    command,
                    "key",
                    "reserved",
                    _assemble(command, [(a, ["__drconsole__/ready"] if a.dest == "key" else w) for a, w in parts], []),
                    2,
                )
            )
        if command == "backup restore":
            for kind in ("damaged-archive", "damaged-metadata"):
                found.append(
                    Case(
                        command,
                        "--repo",
                        kind,
                        _assemble(
                            command,
                            [
                                (a, [w[0], "{" + kind.replace("-", "_") + "}"] if a.dest == "repo" else w)
                                for a, w in parts
                            ],
                            [],
                        ),
                        1,
                    )
                )
        if command == "serve ssh":
            found.append(
                Case(
                    command,
                    "--responder-seats",
                    "seats",
                    _assemble(
                        command,
                        parts,
                        [
                            "--port",
                            "0",
                            "--host-key",
                            "{file}",
                            "--users",
                            "{file}",
                            "--max-sessions",
                            "2",
                            "--responder-seats",
                            "3",
                        ],
                    ),
                    2,
                )
            )
        found.append(
            Case(
                command,
                "--config",
                "config-missing",
                tuple(word if word != "{config}" else "{missing}" for word in _assemble(command, parts, [])),
                2,
            )
        )
        found.append(
            Case(
                command,
                "--config",
                "config-directory",
                tuple(word if word != "{config}" else "{cwd}" for word in _assemble(command, parts, [])),
                2,
            )
        )
    return found
