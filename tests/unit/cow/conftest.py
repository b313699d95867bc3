"""The COW tests import their helpers from ``cow_testkit`` beside them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
