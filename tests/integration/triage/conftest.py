"""Fixtures of the triage matrix; helpers in ``triage_kit`` (real fleets) and ``matrix`` (the table), and the
console's ``console_testkit`` (screen text) for the Pilot tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "console"))
