"""A command's run builds only its own parser (console/cli/main.py): it must be the whole parser's, exactly."""

from __future__ import annotations

import argparse
import importlib

import pytest

from console.cli import main as cli


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _helps(parser: argparse.ArgumentParser) -> list[str]:
    """The help of a parser and of every sub-command under it, depth first."""
    found = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _helps(child)
    return found


def test_the_table_names_what_each_module_registers() -> None:
    whole = list(_commands(cli.build_parser()))
    registered: list[str] = []
    for module, words in cli._REGISTERED_BY.items():
        sub = argparse.ArgumentParser().add_subparsers(dest="command")
        importlib.import_module(module).register(sub, cli._common_options())
        assert tuple(sub.choices) == words, module
        registered += words
    assert whole[-len(registered) :] == registered  # --help lists them in this order


@pytest.mark.parametrize("command", [word for words in cli._REGISTERED_BY.values() for word in words])
def test_one_command_parser_equals_the_whole_ones(command: str) -> None:
    alone = _commands(cli.build_parser(command))
    assert tuple(alone) == next(words for words in cli._REGISTERED_BY.values() if command in words)
    assert _helps(alone[command]) == _helps(_commands(cli.build_parser())[command])


@pytest.mark.parametrize(
    "argv",
    [
        ["backup", "verify", "--repo", "/r", "latest", "--json"],
        ["--json", "backup", "list", "--repo", "/r"],
        ["backup", "restore", "--repo", "/r", "latest", "--data-dir", "/d"],
        ["engine", "get", "--data-dir", "/d", "k"],
    ],
)
def test_arguments_parse_the_same_either_way(argv: list[str]) -> None:
    alone = vars(cli._parser_for(argv).parse_args(argv))
    whole = vars(cli.build_parser().parse_args(argv))
    assert {k: v for k, v in alone.items() if k != "func"} == {k: v for k, v in whole.items() if k != "func"}


def test_top_level_help_and_unknown_commands_still_see_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help", "backup"]) == 0
    out = capsys.readouterr().out
    assert all(word in out for word in ("engine", "backup", "node", "drill", "completion"))
    assert cli.main(["bogus-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err
