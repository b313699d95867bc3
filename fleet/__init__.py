"""The fleet snapshot and its sources: what the console renders and the probes read.

    from fleet import FleetSnapshot, LocalSource, HttpSource, fleet_source
    source = fleet_source(specs, thresholds=Thresholds())
    snapshot = await source.collect()          # one per refresh tick

No Textual here (the house rule: console -> playbooks -> fleet -> engines). The sources are imported on
first use (PEP 562): httpx, prometheus_client and the engines cost a few hundred milliseconds,
which a console that must paint within a second only pays for the sources it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fleet.alerts import RULES, Thresholds, evaluate_alerts
from fleet.history import FleetHistory
from fleet.nodes import NodeSpec
from fleet.snapshot import (
    Alert,
    AlertSeverity,
    BackupState,
    Corruption,
    DiskComponents,
    DiskUsage,
    FleetSnapshot,
    Health,
    MemoryUsage,
    NodeSnapshot,
    Performance,
    Replication,
    utc_now,
)
from fleet.source import FleetSource, ReaderSource, finalize

if TYPE_CHECKING:
    from fleet.alertmanager import AlertingSource, AlertmanagerClient
    from fleet.fixture import FixtureSource, load_recording, save_recording
    from fleet.http import HttpNodeReader, HttpSource
    from fleet.local import LocalNodeReader, LocalSource
    from fleet.mixed import MixedSource, fleet_source
    from fleet.prometheus import PrometheusSource

_LAZY = {
    "FixtureSource": "fleet.fixture",
    "load_recording": "fleet.fixture",
    "save_recording": "fleet.fixture",
    "HttpNodeReader": "fleet.http",
    "HttpSource": "fleet.http",
    "LocalNodeReader": "fleet.local",
    "LocalSource": "fleet.local",
    "MixedSource": "fleet.mixed",
    "fleet_source": "fleet.mixed",
    "PrometheusSource": "fleet.prometheus",
    "AlertingSource": "fleet.alertmanager",
    "AlertmanagerClient": "fleet.alertmanager",
}

__all__ = [
    "Alert",
    "AlertingSource",
    "AlertmanagerClient",
    "PrometheusSource",
    "AlertSeverity",
    "BackupState",
    "Corruption",
    "DiskComponents",
    "DiskUsage",
    "FixtureSource",
    "FleetHistory",
    "FleetSnapshot",
    "FleetSource",
    "Health",
    "HttpNodeReader",
    "HttpSource",
    "LocalNodeReader",
    "LocalSource",
    "MemoryUsage",
    "MixedSource",
    "NodeSnapshot",
    "NodeSpec",
    "Performance",
    "RULES",
    "ReaderSource",
    "Replication",
    "Thresholds",
    "evaluate_alerts",
    "finalize",
    "fleet_source",
    "load_recording",
    "save_recording",
    "utc_now",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fleet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
