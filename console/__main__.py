"""``python -m console``: the same as the ``drconsole`` command."""

from console.cli.main import entry

entry()
