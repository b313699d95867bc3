"""Snapshot tests of the console (pytest-textual-snapshot); helpers from ``console_testkit``.

Update the SVGs after an intended change with ``pytest tests/snapshots --snapshot-update`` and
review them (``snapshot_report.html`` shows the differences when a test fails).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "console"))
