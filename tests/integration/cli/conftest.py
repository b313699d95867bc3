"""Fixtures of the CLI tests; the helpers themselves live in ``cli_support``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cli_support import any_backend, backend  # noqa: E402,F401  (fixtures)
