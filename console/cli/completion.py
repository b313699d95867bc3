"""``drconsole completion bash|zsh|fish``: a shell completion script generated from the parser itself.

shtab turns the argparse tree into a static script, so a tab press never starts Python and the
completions can never drift from the real commands. Paths complete as files or directories
(``--data-dir``, ``--repo``: directories; ``--config``, ``--input``, ``--output``: files), chosen
here by option name so that the parser, built on every command, never imports shtab.

    drconsole completion bash > ~/.local/share/bash-completion/completions/drconsole
    drconsole completion zsh  > "${fpath[1]}/_drconsole"
    drconsole completion fish > ~/.config/fish/completions/drconsole.fish
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from console.cli.common import add_command
from console.output import EXIT_OK, Output

__all__ = ["register", "run_completion", "script", "SHELLS"]

SHELLS = ("bash", "zsh", "fish")
_DIRECTORIES = {"--data-dir", "--repo", "--workspace", "--quarantine"}
_FILES = {
    "--config",
    "--input",
    "--output",
    "--token-file",
    "--host-key",
    "--users",
    "--report",
    "--ssh-key",
    "--encrypt-key",
    "--sign-key",
}


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    parser = add_command(
        subparsers,
        "completion",
        "print a shell completion script (bash, zsh or fish)",
        run_completion,
        common,
        description="print a shell completion script generated from drconsole's parser; "
        "e.g. `drconsole completion bash > ~/.local/share/bash-completion/completions/drconsole`",
    )
    parser.add_argument("shell", choices=SHELLS)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


def script(shell: str) -> str:
    """The completion script for ``shell``, from the same parser ``drconsole`` runs."""
    import shtab

    from console.cli.main import build_parser

    parser = build_parser()
    for each in _parsers(parser):
        for action in each._actions:
            names = set(action.option_strings)
            if names & _DIRECTORIES:
                action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
            elif names & _FILES:
                action.complete = shtab.FILE  # type: ignore[attr-defined]
    text: str = shtab.complete(parser, shell=shell)
    return text


def run_completion(args: argparse.Namespace, output: Output | None = None) -> int:
    import sys

    sys.stdout.write(script(args.shell))
    sys.stdout.flush()
    return EXIT_OK
