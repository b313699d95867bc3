"""``python -m console``: the same as the ``drconsole`` command."""

import sys

from console.cli import main

sys.exit(main())
