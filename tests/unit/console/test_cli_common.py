"""``console.cli.common``: the argument types and the command wiring the CLI modules share."""

from __future__ import annotations

import argparse

import pytest

from console.cli.common import CommandGroup, add_command, listen_port, port_number
from console.output import output_for


def _handler(args: argparse.Namespace, output: object = None) -> int:
    return 0


def test_a_listening_port_may_be_zero_a_port_to_reach_may_not() -> None:
    assert listen_port("0") == 0 and listen_port("65535") == 65535
    assert port_number("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match=r"out of range 1-65535"):
        port_number("0")
    for text, message in (
        ("-1", r"out of range 0-65535 \(0: any free port\)"),
        ("65536", r"out of range 0-65535"),
        ("eighty", r"'eighty' is not a port number"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            listen_port(text)


def _standalone(json_on_group: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drconsole")
    subparsers = parser.add_subparsers(dest="command", required=True)
    group = CommandGroup(subparsers, "drill", "drills", description="DR drills, at length", json_on_group=json_on_group)
    group.add("list", "the scenarios", _handler)
    group.add("run", "run one", _handler, description="run one scenario, at length").add_argument("name")
    add_command(subparsers, "triage", "walk the tree", _handler, description="walk the tree, at length")
    return parser


def test_json_on_the_group_is_kept_when_the_action_is_parsed() -> None:
    parser = _standalone(json_on_group=True)
    # the action's own --json (SUPPRESS) must not reset what the group was given
    assert parser.parse_args(["drill", "--json", "list"]).json is True
    assert parser.parse_args(["drill", "list", "--json"]).json is True
    plain = parser.parse_args(["drill", "list"])
    assert not hasattr(plain, "json") and output_for(plain, None).json_mode is False
    assert output_for(parser.parse_args(["triage", "--json"]), None).json_mode is True


def test_without_json_on_the_group_each_action_has_its_own() -> None:
    parser = _standalone(json_on_group=False)
    assert parser.parse_args(["drill", "list"]).json is False
    with pytest.raises(SystemExit):
        parser.parse_args(["drill", "--json", "list"])


def test_descriptions_say_more_than_the_one_line_help() -> None:
    parser = _standalone(json_on_group=True)
    sub = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    drill = sub.choices["drill"]
    actions = next(action for action in drill._actions if isinstance(action, argparse._SubParsersAction))
    assert "DR drills, at length" in drill.format_help()
    assert "run one scenario, at length" in actions.choices["run"].format_help()
    assert "the scenarios" in actions.choices["list"].format_help()  # no description: the help line
    assert "walk the tree, at length" in sub.choices["triage"].format_help()
    assert "drills" in parser.format_help()  # the one-line help in the command list
