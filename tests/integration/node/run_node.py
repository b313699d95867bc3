"""Run ``drconsole`` with the ``node`` command in a subprocess: ``python run_node.py node serve ...``.

Until ``console/cli.py`` registers ``console.cli_node`` itself, this adds it to the parser; once
it does, this is plain ``console.cli.main``.
"""

from __future__ import annotations

import sys

import console.cli as cli
from console.cli_node import register


def _with_node(build: object) -> object:
    def build_parser() -> object:
        parser = build()  # type: ignore[operator]
        commands = next(action for action in parser._actions if action.dest == "command")
        if "node" not in commands.choices:
            register(commands, cli._common_options())
        return parser
    return build_parser


cli.build_parser = _with_node(cli.build_parser)  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
