"""The LSM unit tests import their helpers from ``lsm_unit_kit`` beside them (importlib import mode)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
