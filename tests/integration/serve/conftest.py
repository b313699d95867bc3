"""``drconsole serve ssh|web`` tests: real server processes, the system ssh client, real websockets."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
