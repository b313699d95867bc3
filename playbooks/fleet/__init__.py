"""The fleet snapshot and its sources: what the console renders and the probes read.

    from playbooks.fleet import FleetSnapshot, LocalSource, HttpSource, fleet_source
    source = fleet_source(specs, thresholds=Thresholds())
    snapshot = await source.collect()          # one per refresh tick

No Textual here (the house rule: console -> playbooks -> engines).
"""

from playbooks.fleet.alerts import RULES, Thresholds, evaluate_alerts
from playbooks.fleet.fixture import FixtureSource, load_recording, save_recording
from playbooks.fleet.history import FleetHistory
from playbooks.fleet.http import HttpNodeReader, HttpSource
from playbooks.fleet.local import LocalNodeReader, LocalSource
from playbooks.fleet.mixed import MixedSource, fleet_source
from playbooks.fleet.nodes import NodeSpec
from playbooks.fleet.snapshot import (
    Alert,
    AlertSeverity,
    BackupState,
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
from playbooks.fleet.source import FleetSource, ReaderSource, finalize

__all__ = [
    "Alert", "AlertSeverity", "BackupState", "DiskComponents", "DiskUsage", "FixtureSource", "FleetHistory",
    "FleetSnapshot", "FleetSource", "Health", "HttpNodeReader", "HttpSource", "LocalNodeReader", "LocalSource",
    "MemoryUsage", "MixedSource", "NodeSnapshot", "NodeSpec", "Performance", "RULES", "ReaderSource",
    "Replication", "Thresholds", "evaluate_alerts", "finalize", "fleet_source", "load_recording",
    "save_recording", "utc_now",
]
