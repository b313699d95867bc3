"""Run ``drconsole`` with the ``node`` command in a subprocess: ``python run_node.py node serve ...``.

``console/cli/main.py`` registers ``console.cli.node`` itself, so this is plain ``console.cli.main.main``.
"""

from __future__ import annotations

import sys

import console.cli.main as cli

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
