"""Run ``drconsole`` with the ``node`` command in a subprocess: ``python run_node.py node serve ...``.

``console/cli.py`` registers ``console.cli_node`` itself, so this is plain ``console.cli.main``.
"""

from __future__ import annotations

import sys

import console.cli as cli

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
