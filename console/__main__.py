"""``python -m console``: the same as the ``drconsole`` command."""

import sys

from console.cli.main import main

sys.exit(main())
