"""A drill's sandbox: a data dir loaded with a ledger of acknowledged writes, its backups, the fault; then RPO.

    sandbox = Sandbox.create(workdir, prefix="drill-")   # a temp folder: data, backup, ledger, state
    sandbox.load("lsm", before=300, after=200)           # sync engine, full backup part-way, WAL archived
    sandbox.break_with("sstable-corrupt", seed=1)        # the fault; the RTO clock starts here
    rpo = measure_rpo(sandbox.ledger_path, sandbox.data_dir, sandbox.fault_wall)

The unattended drills (``drills.run_drill`` and its host drills) and the console's drill
mode (``console.adapters.drill_sandbox``) build and measure their sandboxes with these, so a human's drill
and the autopilot's are the same load, the same fault and the same RPO count.
The ledger is kept outside the data dir: what was acknowledged survives whatever the fault does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines import create_engine, open_engine
from engines.backup import attach_archiver, create_backup
from engines.backup.mirror import access
from faults import inject
from faults.report import FaultReport

__all__ = [
    "BULK_BATCH",
    "BULK_VALUE_SIZE",
    "Ledger",
    "Rpo",
    "Sandbox",
    "compare",
    "drill_state_dir",
    "measure_rpo",
    "rpo_of",
    "write_load",
]

BULK_VALUE_SIZE = 4096  # --data-mb loads: 4 KiB random values, BULK_BATCH per write_batch
BULK_BATCH = 256


# ------------------------------------------------------------------------------------------- ledger
class Ledger:
    """Acknowledged writes, one JSON line each (key, value sha256, lsn, ack time), kept outside the data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "a", encoding="utf-8")

    def ack(self, key: bytes, value: bytes | None, lsn: int | None) -> None:
        entry = {
            "key": key.decode(),
            "sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
            "lsn": lsn,
            "ack": time.time(),
        }
        self._handle.write(json.dumps(entry) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    @staticmethod
    def expected(path: Path) -> dict[str, dict[str, Any]]:
        """The newest acknowledged write of each key."""
        latest: dict[str, dict[str, Any]] = {}
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    entry = json.loads(line)
                    latest[entry["key"]] = entry
        return latest

    @staticmethod
    def count(path: Path) -> int:
        with open(path, encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())


def write_load(
    engine: Any, ledger: Ledger, start: int, count: int, *, value_size: int = 128, prefix: str = "k"
) -> None:
    """``count`` puts through the engine; each one is ledgered only after put() returned (acknowledged).

    Bulk sizes (``value_size`` >= BULK_VALUE_SIZE) go in batches of random bytes: one fsync per batch,
    each key ledgered after its batch returned, so 512 MiB load in seconds, not an fsync per key.
    """
    if value_size >= BULK_VALUE_SIZE:
        for first in range(start, start + count, BULK_BATCH):
            rows = [
                (f"{prefix}{number:07d}".encode(), os.urandom(value_size))
                for number in range(first, min(start + count, first + BULK_BATCH))
            ]
            engine.write_batch(rows)
            for key, value in rows:
                ledger.ack(key, value, None)
        return
    for number in range(start, start + count):
        key = f"{prefix}{number:07d}".encode()
        value = os.urandom(value_size // 2).hex().encode()
        lsn = engine.put(key, value)
        ledger.ack(key, value, lsn if isinstance(lsn, int) else None)


def compare(ledger_path: Path, data_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """(lost writes, acknowledged writes): entries whose newest acked value is not what the engine returns."""
    expected = Ledger.expected(ledger_path)
    lost: list[dict[str, Any]] = []
    with open_engine(data_dir, mode="ro") as engine:
        for key, entry in expected.items():
            value = engine.get(key.encode())
            found = hashlib.sha256(value).hexdigest() if value is not None else None
            if found != entry["sha256"]:
                lost.append(entry)
    return lost, Ledger.count(ledger_path)


# ------------------------------------------------------------------------------------------ sandbox
@dataclass
class Sandbox:
    """A drill's own folder: the data dir (``root/data`` unless put elsewhere, as on a tmpfs), the backup
    repo, the ledger and the state dir; after ``break_with``, the fault and when it was injected."""

    root: Path
    data_dir: Path
    until_ns: int = 0  # the end of the load: what the reporter of a deletion says ("all fine up to now")
    fault: FaultReport | None = None
    fault_at: float = 0.0  # time.monotonic() at the fault: the RTO clock starts here
    fault_wall: float = 0.0  # time.time() at the fault: the RPO is measured back from here

    @classmethod
    def at(cls, root: Path) -> Sandbox:
        """The sandbox in folder ``root``, its data dir in ``root/data``."""
        return cls(root, root / "data")

    @classmethod
    def create(cls, workdir: Path | None, *, prefix: str) -> Sandbox:
        """A fresh temporary folder (under ``workdir``, else the system's temp dir)."""
        return cls.at(Path(tempfile.mkdtemp(prefix=prefix, dir=workdir)))

    @property
    def repo(self) -> Path:
        return self.root / "backup"

    @property
    def offsite(self) -> Path:
        """The repository's off-site copy (a directory here; sftp:// in production, the same code)."""
        return self.root / "offsite"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger" / "acked.jsonl"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def load(
        self,
        engine: str,
        *,
        before: int,
        after: int,
        value_size: int = 128,
        archive_wal: bool = True,
        node_name: str | None = None,
        offsite: bool = False,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        """A sync-durability engine takes ``before`` ledgered writes, a full backup, then ``after`` more.

        ``engine_options``: more options of ``create_engine`` (WAL segment size, segments kept).

        ``archive_wal``: continuous archiving as in production (the archiver attached after the full
        backup, the WAL shipped at the end), so a restore can roll forward to the end of the load.
        """
        options: dict[str, Any] = {"node_name": node_name} if node_name is not None else {}
        options.update(engine_options or {})
        ledger = Ledger(self.ledger_path)
        try:
            with create_engine(self.data_dir, backend=engine, durability="sync", **options) as db:
                write_load(db, ledger, 0, before, value_size=value_size)
                db.flush()
                with access(copies=(str(self.offsite),) if offsite else ()):
                    create_backup(self.repo, engine=db)  # records the copy: every later write reaches it too
                if archive_wal:
                    # a segment a flush recycles is archived first, so the window has no gap once the
                    # WAL outgrows a segment (a --data-mb load does)
                    attach_archiver(db, self.repo)
                write_load(db, ledger, before, after, value_size=value_size)
                db.flush()
                self.until_ns = time.time_ns()
                time.sleep(0.002)
                db.put(b"__drill_mark__", b"end of load")  # the archived WAL then reaches past until_ns
                if archive_wal:
                    create_backup(self.repo, engine=db, incremental=True)
        finally:
            ledger.close()

    def break_with(self, kind: str, *, seed: int, **options: Any) -> FaultReport:
        """Inject fault ``kind`` (the backup repo offered to it) and start the clocks."""
        self.fault = inject(kind, self.data_dir, seed=seed, repo=self.repo, **options)
        self.fault_at, self.fault_wall = time.monotonic(), time.time()
        return self.fault

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)  # the drill's own temp dir, never user data


# ---------------------------------------------------------------------------------------------- RPO
@dataclass(frozen=True)
class Rpo:
    """Acknowledged writes missing or different after the recovery, and how far back they go."""

    acked_writes: int
    lost_writes: int
    rpo_seconds: float  # from the oldest lost ack to the fault
    lost_span_seconds: float  # from the oldest lost ack to the newest
    unreadable: str | None = None  # why the data dir could not be read back (then every ack counts as lost)


def measure_rpo(ledger_path: Path, data_dir: Path, fault_wall: float) -> Rpo:
    """Compare the ledger with what the engine returns now (read-only)."""
    try:
        lost, acked = compare(ledger_path, data_dir)
    except Exception as exc:  # noqa: BLE001 - unreadable: everything acknowledged counts as lost
        return rpo_of(
            list(Ledger.expected(ledger_path).values()),
            Ledger.count(ledger_path),
            fault_wall,
            unreadable=f"{type(exc).__name__}: {exc}",
        )
    return rpo_of(lost, acked, fault_wall)


def rpo_of(lost: list[dict[str, Any]], acked: int, fault_wall: float, *, unreadable: str | None = None) -> Rpo:
    """The RPO of ``lost`` ledger entries (however they were found: a data dir, a node's API)."""
    if not lost:
        return Rpo(acked, 0, 0.0, 0.0, unreadable)
    oldest = min(entry["ack"] for entry in lost)
    newest = max(entry["ack"] for entry in lost)
    return Rpo(acked, len(lost), round(max(0.0, fault_wall - oldest), 3), round(newest - oldest, 3), unreadable)


@contextlib.contextmanager
def drill_state_dir(path: Path) -> Iterator[None]:
    """Runs, incidents and the audit log of a drill go to its sandbox, not the responder's state dir."""
    old = os.environ.get("DRCONSOLE_STATE_DIR")
    os.environ["DRCONSOLE_STATE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DRCONSOLE_STATE_DIR", None)
        else:
            os.environ["DRCONSOLE_STATE_DIR"] = old
