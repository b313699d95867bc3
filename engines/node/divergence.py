"""A diverged old primary: where its history left the new primary's, and what it wrote after.

After a failover the old primary may hold records the new primary never received (writes it
acknowledged before it died, or took while cut off). Following the new primary on top of them
would mix two histories; dropping them would lose acknowledged writes without a word. So a
rejoin (the reference's "rebuild primary from standby") first finds the fork: the LSN where the
new primary's epoch began (its timeline history, ``state.switch_lsn``). A node with records past
the fork has diverged; those records are exported, one JSON object per line, for a human to
review and replay by hand, and its whole data dir is moved to
``<parent>/.quarantine/diverged-<epoch>-<ts>/<name>`` with the export beside it
(``<name>.diverged.jsonl``, and ``<name>.diverged.json`` summing it up). Then it follows the new
primary from scratch (or from a backup).

The export reads the node's own WAL only: records past the fork that it already recycled are
named as missing in the summary (their effect is still in the quarantined data dir). It never
reads the shared WAL archive, which after the failover holds the new primary's records for the
same LSNs.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engines.backup.metadata import iso_utc
from engines.errors import EngineError, SafetyRefusal, map_os_error
from engines.fsutil import QUARANTINE_DIR, atomic_write_text, fsync_dir, fsync_file, utc_stamp
from engines.node.state import TimelineEntry, switch_lsn
from engines.wal import RecoveryMode, WalReader
from engines.wal.records import Op, WalRecord, decode_batch

__all__ = ["RejoinPlan", "ExportResult", "plan_rejoin", "export_records", "diverged_folder", "write_summary"]


@dataclass
class RejoinPlan:
    """What rejoining this node to ``primary`` means, decided before anything changes."""

    primary: str
    node_epoch: int
    node_last_lsn: int
    primary_epoch: int
    primary_last_lsn: int
    fork_lsn: int  # the last LSN both histories share
    diverged: bool
    diverged_records: int  # records past the fork on this node

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportResult:
    path: Path
    records: int = 0
    first_lsn: int | None = None
    last_lsn: int | None = None
    missing: list[list[int]] = field(default_factory=list)  # [from, to] ranges the WAL no longer held

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "records": self.records,
            "first_lsn": self.first_lsn,
            "last_lsn": self.last_lsn,
            "missing": self.missing,
            "complete": not self.missing,
        }


def plan_rejoin(
    *,
    primary: str,
    node_epoch: int,
    node_last_lsn: int,
    primary_epoch: int,
    primary_last_lsn: int,
    history: list[TimelineEntry],
    node_is_primary: bool = False,
) -> RejoinPlan:
    """Where this node's history meets the primary's.

    Raises:
        SafetyRefusal: this node is in a newer epoch than the primary, or in the same epoch and
            ahead of it (a split brain, or a switchover without promotion): there is no fork
            point to cut at, so nothing is decided for the operator.
    """
    if node_epoch > primary_epoch:
        raise SafetyRefusal(
            f"this node is in epoch {node_epoch}, newer than {primary}'s {primary_epoch}: "
            "it would be the one to follow",
            hint="rejoin the other node to this one instead",
        )
    if node_is_primary and node_epoch == primary_epoch:
        raise SafetyRefusal(
            f"this node and {primary} are both primaries in epoch {node_epoch}: a split brain, "
            "and both may hold writes the other lacks",
            hint="promote the node to keep (it starts a new epoch), then rejoin this one to it",
        )
    fork = switch_lsn(history, node_epoch)
    if fork is None:
        if node_last_lsn > primary_last_lsn:
            raise SafetyRefusal(
                f"this node and {primary} are both in epoch {node_epoch} and this node holds LSN {node_last_lsn}, "
                f"past the primary's {primary_last_lsn}: there is no fork point to cut at",
                hint="promote the node to keep (it starts a new epoch), then rejoin this one to it",
            )
        fork = node_last_lsn
    diverged = node_last_lsn > fork
    return RejoinPlan(
        primary=primary,
        node_epoch=node_epoch,
        node_last_lsn=node_last_lsn,
        primary_epoch=primary_epoch,
        primary_last_lsn=primary_last_lsn,
        fork_lsn=fork,
        diverged=diverged,
        diverged_records=max(0, node_last_lsn - fork),
    )


def diverged_folder(data_dir: Path, epoch: int) -> Path:
    """A new ``<parent>/.quarantine/diverged-<epoch>-<ts>`` folder for the data dir and its export."""
    folder = Path(data_dir).parent / QUARANTINE_DIR / f"diverged-{epoch}-{utc_stamp()}"
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise map_os_error(exc, f"creating {folder}") from exc
    return folder


def _field(name: str, data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8"), f"{name}_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {name: base64.b64encode(data).decode("ascii"), f"{name}_encoding": "base64"}


def _lines(record: WalRecord) -> list[dict[str, Any]]:
    when = {"lsn": record.lsn, "time": iso_utc(record.timestamp_ns), "timestamp_ns": record.timestamp_ns}
    if record.op == Op.BATCH:
        return [
            {
                **when,
                "op": "put" if value is not None else "delete",
                "batch": True,
                **_field("key", key),
                **_field("value", value),
            }
            for key, value in decode_batch(record.value)
        ]
    value = record.value if record.op == Op.PUT else None
    return [
        {
            **when,
            "op": "put" if record.op == Op.PUT else "delete",
            **_field("key", record.key),
            **_field("value", value),
        }
    ]


def export_records(wal_dir: Path, fork_lsn: int, last_lsn: int, dest: Path) -> ExportResult:
    """Write the records past ``fork_lsn`` found in ``wal_dir`` to ``dest`` as JSON lines.

    Every record the WAL holds past the fork is written, also any past ``last_lsn`` (a write that
    raced the fence); ranges up to ``last_lsn`` the WAL no longer holds are listed as missing.

    Raises:
        EngineError: the file cannot be written (nothing else has been changed yet).
    """
    result = ExportResult(dest)
    expected = fork_lsn + 1
    try:
        with open(dest, "x", encoding="utf-8") as out:
            reader = WalReader(wal_dir)
            for record in reader.records(from_lsn=fork_lsn + 1, mode=RecoveryMode.POINT_IN_TIME):
                if record.lsn > expected:
                    result.missing.append([expected, record.lsn - 1])
                for line in _lines(record):
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
                result.records += 1
                result.first_lsn = record.lsn if result.first_lsn is None else result.first_lsn
                result.last_lsn = record.lsn
                expected = record.lsn + 1
            out.flush()
        fsync_file(dest)
        fsync_dir(dest.parent)
    except OSError as exc:
        raise map_os_error(exc, f"exporting the diverged records to {dest}") from exc
    except EngineError:
        raise
    if expected <= last_lsn:
        result.missing.append([expected, last_lsn])
    return result


def write_summary(path: Path, plan: RejoinPlan, export: ExportResult, moved: Path | None) -> None:
    """The ``<name>.diverged.json`` beside the export: what diverged, from what, and where it is."""
    body = {
        "plan": plan.to_json(),
        "export": export.to_json(),
        "data_dir": None if moved is None else str(moved),
        "note": "records past fork_lsn were on this node only; review them and replay what must be kept "
        "on the primary by hand",
    }
    atomic_write_text(path, json.dumps(body, indent=2) + "\n")
