"""The ``drconsole`` command line: argument parsing, dispatch, and the one place errors are rendered.

``main`` never lets a traceback out. Every failure becomes one line on stderr,
``drconsole: error: <what, where> (<what to do next>)``, and the exit code of the CLI contract:

    0  ok
    1  a check ran and found a problem
    2  bad usage or bad input (nothing changed)
    3  target unreachable or cannot be opened
    4  refused for safety (read-only, fenced, not confirmed, would lose data)

Headless commands stay fast: this module imports only the standard library, the handler modules
are imported for the command being run, and nothing here imports Textual.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from console.cli.common import version
from console.cli.quiet import quiet_dependency_warnings
from console.output import EXIT_PROBLEM, EXIT_USAGE, Output

__all__ = ["main", "entry", "build_parser", "UsageError"]


class UsageError(Exception):
    """Bad usage found by the parser; rendered like every other error, exit code 2."""

    def __init__(self, message: str, prog: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.prog = prog
        self.hint = hint or f"see `{prog} --help`"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


def _common_options() -> argparse.ArgumentParser:
    """Options accepted before the command and after it (SUPPRESS: a later parser keeps an earlier value)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        default=argparse.SUPPRESS,
        help="configuration file (default: $DRCONSOLE_CONFIG, then ./drconsole.toml, then "
        "$XDG_CONFIG_HOME/drconsole/drconsole.toml (~/.config by default), "
        "then the demo workspace)",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print exactly one JSON object on stdout"
    )
    return common


class _VersionAction(argparse.Action):
    """``--version``: the distribution's version, looked up only when asked (importlib.metadata is slow)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        parser._print_message(f"drconsole {version()}\n", sys.stdout)
        parser.exit()


# The commands each module registers (``register(subparsers, common)``), in the order of
# ``drconsole --help``. A run builds only its own command's parser: importing and building them
# all cost every short command (`backup verify`) ~40 ms, more on a loaded machine.
# tests/unit/console/test_cli_parser.py keeps this table equal to what the modules register.
_REGISTERED_BY: dict[str, tuple[str, ...]] = {
    "console.cli.console": ("tui", "dashboard", "demo"),
    "console.cli.engine": ("engine",),
    "console.cli.wal": ("wal",),
    "console.cli.backup": ("backup",),
    "console.cli.playbook": ("playbook",),
    "console.cli.triage": ("triage",),
    "console.cli.incident": ("incident",),
    "console.cli.audit": ("audit",),
    "console.cli.node": ("node",),
    "console.cli.drill": ("fault", "drill"),
    "console.cli.serve": ("serve",),
    "console.cli.fleet_status": ("status",),
    "console.cli.completion": ("completion",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; given a ``command`` that a module registers, only that command
    (its arguments, help and errors are the same; the top level then knows no other command)."""
    common = _common_options()
    parser = _Parser(
        prog="drconsole", parents=[common], description="Disaster-recovery console for drconsole storage engines."
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    commands: Any = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    modules = [module for module, words in _REGISTERED_BY.items() if command in words] or list(_REGISTERED_BY)
    # These modules import only the standard library at load time, so startup stays fast.
    for module in modules:
        importlib.import_module(module).register(commands, common)
    return parser


def _parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The parser ``argv`` needs: one command's, unless a top-level --help or --version comes first."""
    command = _command_of(argv)
    before = argv[: argv.index(command)] if command is not None else argv
    if any(word in ("-h", "--help", "--version") for word in before):
        command = None
    return build_parser(command)


def _handler(args: argparse.Namespace) -> Callable[[argparse.Namespace, Output], int]:
    """What runs: the ``func`` its command's ``register`` set; with no command, the console."""
    func: Callable[[argparse.Namespace, Output], int] | None = getattr(args, "func", None)
    if func is not None:
        return func
    from console.cli.console import run_console

    return run_console


def _render_failure(exc: BaseException, output: Output, command: str | None = None) -> int:
    """Turn any exception into the one-line error of the contract (no traceback, ever)."""
    if isinstance(exc, KeyboardInterrupt):
        return output.error(
            "interrupted", hint="nothing more was done after the interrupt", exit_code=130, kind="interrupted"
        )
    try:
        from engines.errors import DrconsoleError, map_os_error
    except Exception:  # noqa: BLE001 - the engines package itself failed to import
        DrconsoleError, map_os_error = None, None  # type: ignore[assignment,misc]
    if map_os_error is not None and isinstance(exc, OSError):
        exc = map_os_error(exc, "accessing the file system")
    if DrconsoleError is not None and isinstance(exc, DrconsoleError):
        return output.error(
            exc.message,
            hint=exc.hint or _default_hint(exc.exit_code, command),
            exit_code=exc.exit_code,
            kind=type(exc).__name__,
        )
    return output.error(
        f"unexpected {type(exc).__name__}: {exc}",
        hint="this is a bug in drconsole; please report it with the command you ran",
        exit_code=EXIT_PROBLEM,
        kind=type(exc).__name__,
    )


def _default_hint(exit_code: int, command: str | None = None) -> str:
    """What to do next when the error itself did not say; a backup's problem points at backup verify."""
    if command == "backup":
        return {
            1: "run `drconsole backup verify --repo R` for details",
            3: "check the --repo and --data-dir paths and that no other process holds them",
        }.get(exit_code, _default_hint(exit_code))
    return {
        1: "run `drconsole engine verify --data-dir D` for details",
        2: "check the command's arguments with --help",
        3: "check the --data-dir path and that no other process holds it",
        4: "nothing was changed",
    }.get(exit_code, "see `drconsole --help`")


# Arguments that may carry bytes that are not UTF-8 (the shell passes them as they are): a key or
# value is data, and paths are the file system's business. Every other text must be UTF-8.
_RAW_BYTES = frozenset({"key", "value"})


def _check_text(args: argparse.Namespace) -> None:
    """Text arguments that are not UTF-8 are bad input (exit 2) before anything runs or is recorded."""
    for name, value in vars(args).items():
        if name in _RAW_BYTES:
            continue
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not _is_utf8(text):
                option = name if name in ("id", "run_id", "kind", "scenario", "url") else "--" + name.replace("_", "-")
                try:
                    shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                except UnicodeEncodeError:
                    shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
                raise UsageError(f"{option}: {shown[:80]} is not valid UTF-8 text", "drconsole", hint="pass UTF-8 text")
            if isinstance(text, str) and "\0" in text:
                raise UsageError(f"--{name.replace('_', '-')}: a NUL byte is not allowed", "drconsole")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_config(args: argparse.Namespace) -> None:
    """An explicitly named config (--config, $DRCONSOLE_CONFIG) must be a file: fail before doing anything.

    A config of the demo workspace brings the workspace's state dir (``use_demo_state``), so that
    ``drconsole --config <demo>/drconsole.toml incident list`` shows what the demo console shows.
    """
    from console.config_lookup import ConfigLookupError, resolve_config, use_demo_state

    try:
        path, _source = resolve_config(getattr(args, "config", None))
    except ConfigLookupError as exc:
        raise UsageError(exc.message, "drconsole", hint=exc.hint) from None
    if path is not None:
        use_demo_state(path.parent)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``drconsole`` command; return its exit code (the console script exits with it)."""
    quiet_dependency_warnings()
    argv = list(sys.argv[1:] if argv is None else argv)
    output = Output(json_mode="--json" in argv)
    try:
        args = _parser_for(argv).parse_args(argv)
        output.json_mode = bool(getattr(args, "json", False))
        _check_text(args)
        _check_config(args)
        from console.cli.audit import run_audited

        return run_audited(args, output, _handler(args))
    except UsageError as exc:
        where = exc.prog.removeprefix("drconsole").strip()  # "engine get", or "" at the top level
        return output.error(
            f"{where}: {exc.message}" if where else exc.message, hint=exc.hint, exit_code=EXIT_USAGE, kind="UsageError"
        )
    except SystemExit as exc:  # --help prints and exits 0
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except BaseException as exc:  # noqa: BLE001 - the contract: no traceback, ever
        return _render_failure(exc, output, _command_of(argv))


def entry() -> NoReturn:
    """The ``drconsole`` console script and ``python -m console``: run ``main`` and exit with its code.

    What the command made is frozen out of the garbage collector first: at exit the interpreter
    otherwise walks every object of the ~200 modules a command has loaded, ~10 ms of each short
    command here (about 6 ms of a 90 ms ``engine get``; start-up and exit are most of what
    separates ``backup create`` from tar on a 250 MB data dir). Nothing is skipped but that walk:
    atexit handlers, the join of non-daemon threads and the flush of stdout and stderr all run.
    ``main`` stays free of it, for the tests that call it many times in one process.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


def _command_of(argv: list[str]) -> str | None:
    """The command word of ``argv`` (the first argument that is not an option or an option's value)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--config":
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def _quiet_broken_pipe() -> int:
    """stdout was closed early (`drconsole engine export --output - | head`): not an error of ours."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_PROBLEM


if __name__ == "__main__":
    sys.exit(main())
