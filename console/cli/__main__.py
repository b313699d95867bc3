"""``python -m console.cli``: the same as the ``drconsole`` command."""

import sys

from console.cli.main import main

sys.exit(main())
