"""Power-loss tests: helpers beside them (importlib import mode), every test marked ``powerloss``.

``DRCONSOLE_POWERLOSS_NOOP`` (a site name, or ``*``) turns sync call sites into no-ops for the
mutation check; ``DRCONSOLE_POWERLOSS_RECORD`` names a JSON-lines file where each test appends
the sync sites it went through (tests/powerloss/test_fsync_mutations.py uses both).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import crashkit  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        if path.parent == here and path.name != "test_fsync_mutations.py":
            item.add_marker(pytest.mark.powerloss)


@pytest.fixture(autouse=True)
def _sites_record(request: pytest.FixtureRequest) -> Iterator[None]:
    crashkit.SITES_SEEN.clear()
    yield
    record = os.environ.get("DRCONSOLE_POWERLOSS_RECORD")
    if record:
        with open(record, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"test": request.node.nodeid, "sites": sorted(crashkit.SITES_SEEN)}) + "\n")
