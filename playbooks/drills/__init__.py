"""DR drills: a sandbox fleet, a load with a ledger of acknowledged writes, a real fault, the
autopilot's response (triage, then the recommended playbooks with --yes), measured RTO and RPO.

    from playbooks.drills import SCENARIOS, run_drill
    result = run_drill("sstable-corrupt", engine="lsm")     # -> DrillResult; .to_json()

RTO = fault injected -> the engine opens read-write, verifies ok and serves a read and a write.
RPO = acknowledged writes (the ledger, kept outside the data dir) whose value is missing or
different afterwards: a count, and the time span from the oldest lost ack to the fault.
Nothing here imports Textual or the console.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbooks.faults import inject

__all__ = ["Scenario", "SCENARIOS", "DrillResult", "Ledger", "run_drill", "scenario_pairs", "report_markdown"]

BACKENDS = ("cow", "lsm", "rocksdb")


@dataclass(frozen=True)
class Scenario:
    name: str  # the fault kind it injects
    engines: tuple[str, ...]
    target_rto_seconds: float
    target_rpo_seconds: float
    description: str
    reference: str = ""  # the orchestrator table's row it is measured against
    needs_node: bool = False
    reported: str | None = None  # the playbook a human's report leads to when the probes see nothing

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.name, "engines": list(self.engines), "target_rto_seconds": self.target_rto_seconds,
                "target_rpo_seconds": self.target_rpo_seconds, "description": self.description,
                "reference": self.reference}


# Targets ahead of the reference tables (issue 9): corruption RTO <= 30 s (reference 1m30-2m),
# restore RTO <= 30 s (reference 8-15 min), RPO 0 acknowledged writes in sync mode unless lossy by
# nature (a restore loses the writes after the last backup: the reference's "< 1 hour").
SCENARIOS: dict[str, Scenario] = {scenario.name: scenario for scenario in (
    Scenario("wal-corrupt-tail", BACKENDS, 30, 0, "bytes flipped in the last WAL records",
             "Database crash: RTO 2 min, RPO < 1 min"),
    Scenario("wal-corrupt-middle", BACKENDS, 30, 0, "bytes flipped in the middle of a WAL segment",
             "Data corruption: RTO 2 min, RPO < 1 min"),
    Scenario("page-corrupt", ("cow",), 30, 0, "a B+ tree page corrupted", "Data corruption: RTO 2 min, RPO < 1 min"),
    Scenario("meta-corrupt", ("cow",), 30, 0, "both meta pages corrupted", "Data corruption: RTO 2 min, RPO < 1 min"),
    Scenario("sstable-corrupt", ("lsm",), 30, 0, "an SSTable data block corrupted",
             "Data corruption: RTO 2 min, RPO < 1 min"),
    Scenario("sst-corrupt", ("rocksdb",), 30, 0, "an SST file corrupted", "Data corruption: RTO 2 min, RPO < 1 min"),
    Scenario("manifest-lost", ("lsm", "rocksdb"), 30, 0, "the manifest moved aside",
             "Data corruption: RTO 2 min, RPO < 1 min"),
    Scenario("accidental-deletion", BACKENDS, 30, 0, "a key range deleted through the engine",
             "Backup restore: RTO 10 min, RPO < 1 hour", reported="accidental-deletion"),
    Scenario("ransomware", BACKENDS, 30, 3600, "files encrypted in place and renamed .locked",
             "Backup restore: RTO 10 min, RPO < 1 hour"),
    Scenario("config-broken", BACKENDS, 30, 0, "drconsole.json made invalid",
             "Application crash: RTO 30 s, RPO < 1 min"),
    Scenario("process-kill", BACKENDS, 5, 0, "SIGKILL of the node process under load (sync durability)",
             "Application crash: RTO 30 s (typical 22-26 s), RPO < 1 min", needs_node=True),
    Scenario("process-hang", BACKENDS, 5, 0, "SIGSTOP of the node process under load (it holds its lock, serves nothing)",
             "Application crash: RTO 30 s (typical 22-26 s), RPO < 1 min", needs_node=True),
)}


def scenario_pairs(engine: str | None = None) -> list[tuple[str, str]]:
    return [(name, backend) for name, scenario in SCENARIOS.items() for backend in scenario.engines
            if engine is None or backend == engine]


# ------------------------------------------------------------------------------------------- ledger
class Ledger:
    """Acknowledged writes, one JSON line each (key, value sha256, lsn, ack time), kept outside the data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "a", encoding="utf-8")

    def ack(self, key: bytes, value: bytes | None, lsn: int | None) -> None:
        entry = {"key": key.decode(), "sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
                 "lsn": lsn, "ack": time.time()}
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


def write_load(engine: Any, ledger: Ledger, start: int, count: int, *, value_size: int = 128,
               prefix: str = "k") -> None:
    """``count`` puts through the engine; each one is ledgered only after put() returned (acknowledged)."""
    for number in range(start, start + count):
        key = f"{prefix}{number:07d}".encode()
        value = os.urandom(value_size // 2).hex().encode()
        lsn = engine.put(key, value)
        ledger.ack(key, value, lsn if isinstance(lsn, int) else None)


def compare(ledger_path: Path, data_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """(lost writes, acknowledged writes): entries whose newest acked value is not what the engine returns."""
    from engines import open_engine

    expected = Ledger.expected(ledger_path)
    lost: list[dict[str, Any]] = []
    with open_engine(data_dir, mode="ro") as engine:
        for key, entry in expected.items():
            value = engine.get(key.encode())
            found = hashlib.sha256(value).hexdigest() if value is not None else None
            if found != entry["sha256"]:
                lost.append(entry)
    return lost, Ledger.count(ledger_path)


# ------------------------------------------------------------------------------------------- health
def healthy(data_dir: Path) -> tuple[bool, str]:
    """The engine opens read-write, verifies ok, and serves a write and a read back."""
    from engines import open_engine

    try:
        with open_engine(data_dir, mode="rw") as engine:
            report = engine.verify()
            if not report.ok:
                return False, f"verify: {len(report.problems)} problem(s)"
            probe = f"{time.time_ns()}".encode()
            engine.put(b"__drill_probe__", probe)
            if engine.get(b"__drill_probe__") != probe:
                return False, "the probe write was not read back"
            engine.delete(b"__drill_probe__")
        return True, "opens rw, verifies ok, serves reads and writes"
    except Exception as exc:  # noqa: BLE001 - unhealthy, and why
        return False, f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------------------------- result
@dataclass
class DrillResult:
    scenario: str
    engine: str
    rto_seconds: float | None
    rpo_seconds: float
    acked_writes: int
    lost_writes: int
    target_rto_seconds: float
    target_rpo_seconds: float
    passed: bool
    recovered: bool = False
    health: str = ""
    playbooks: list[dict[str, Any]] = field(default_factory=list)
    triage: list[dict[str, Any]] = field(default_factory=list)
    fault: dict[str, Any] = field(default_factory=dict)
    lost_span_seconds: float = 0.0
    sandbox: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _passed(scenario: Scenario, recovered: bool, rto: float | None, rpo: float, lost: int) -> bool:
    if not recovered or rto is None or rto > scenario.target_rto_seconds:
        return False
    if scenario.target_rpo_seconds == 0:
        return lost == 0
    return rpo <= scenario.target_rpo_seconds


@contextlib.contextmanager
def _state_dir(path: Path) -> Iterator[None]:
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


def autopilot(data_dir: Path, repo: Path, *, rounds: int = 3, log: Callable[[str], None] | None = None,
              reported: tuple[str, dict[str, Any]] | None = None,
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Triage, then every recommended playbook (with --yes) in order; again until triage finds nothing.

    ``reported``: (playbook, params) a human's report leads to (an accidental deletion is a valid write:
    no probe sees it); run once when triage finds nothing.
    """
    from playbooks.runner import Runner, RunOptions
    from playbooks.triage import triage

    runs: list[dict[str, Any]] = []
    walks: list[dict[str, Any]] = []
    for _ in range(rounds):
        result = triage(data_dir=data_dir, repo=repo)
        walks.append({"recommended": result.recommended, "summary": result.summary,
                      "path": [[entry.node, entry.answer]
                               for entry in result.path]})
        if log:
            log(f"triage: {result.summary} -> {', '.join(result.recommended) or 'nothing'}")
        recommended = list(result.recommended)
        params: dict[str, Any] = {}
        if not recommended and reported is not None:
            recommended, params = [reported[0]], dict(reported[1])
            reported = None
            if log:
                log(f"reported by a human: {recommended[0]} {params}")
        if not recommended:
            break
        ran = False
        for playbook in recommended:
            if playbook in result.pending:
                continue
            try:
                run = Runner().run(playbook, data_dir, RunOptions(params=params, param_defaults={"repo": str(repo)}, assume_yes=True))
                runs.append({"playbook": playbook, "status": run.status, "message": run.message, "lost": run.lost})
            except Exception as exc:  # noqa: BLE001 - a playbook that cannot run is a finding, recorded
                runs.append({"playbook": playbook, "status": "error", "message": f"{type(exc).__name__}: {exc}"})
            ran = True
            if log:
                log(f"  {playbook}: {runs[-1]['status']} {runs[-1]['message']}")
        if not ran:
            break
    return runs, walks


def run_drill(name: str, engine: str, *, writes_before_backup: int = 300, writes_after_backup: int = 200,
              value_size: int = 128, seed: int = 1, keep: bool = False, archive_wal: bool = True, workdir: Path | None = None,
              log: Callable[[str], None] | None = None) -> DrillResult:
    """Run one scenario on one engine in a fresh sandbox; the sandbox is removed unless ``keep``."""
    from engines import create_engine
    from engines.backup import create_backup

    scenario = SCENARIOS[name]
    if engine not in scenario.engines:
        raise ValueError(f"scenario {name} does not apply to {engine}; it applies to {', '.join(scenario.engines)}")
    sandbox = Path(tempfile.mkdtemp(prefix=f"drill-{name}-{engine}-", dir=workdir))
    data_dir, repo, ledger_path = sandbox / "data", sandbox / "backup", sandbox / "ledger" / "acked.jsonl"
    result = DrillResult(name, engine, None, 0.0, 0, 0, scenario.target_rto_seconds, scenario.target_rpo_seconds,
                         False, sandbox=str(sandbox) if keep else None)
    if scenario.needs_node:
        try:
            with _state_dir(sandbox / "state"):
                _node_drill(scenario, engine, sandbox, result, writes=writes_before_backup + writes_after_backup,
                            seed=seed, log=log)
        except Exception as exc:  # noqa: BLE001 - a drill that breaks is a failed drill, with the reason
            result.error = f"{type(exc).__name__}: {exc}"
            result.passed = False
        finally:
            if not keep:
                shutil.rmtree(sandbox, ignore_errors=True)
        return result
    try:
        with _state_dir(sandbox / "state"):
            ledger = Ledger(ledger_path)
            try:
                with create_engine(data_dir, backend=engine, durability="sync") as db:
                    write_load(db, ledger, 0, writes_before_backup, value_size=value_size)
                    db.flush()
                    create_backup(repo, engine=db)
                    write_load(db, ledger, writes_before_backup, writes_after_backup, value_size=value_size)
                    db.flush()
                    until_ns = time.time_ns()  # what the reporter of a deletion says: "everything up to now was fine"
                    time.sleep(0.002)
                    db.put(b"__drill_mark__", b"end of load")  # the archived WAL then reaches past until_ns
                    if archive_wal:  # continuous archiving, as in production: the WAL shipped so far
                        create_backup(repo, engine=db, incremental=True)
            finally:
                ledger.close()
            fault = inject(name, data_dir, seed=seed, repo=repo)
            fault_at = time.monotonic()
            fault_wall = time.time()
            result.fault = fault.to_json()
            if log:
                log(f"fault: {fault.summary}")
            reported = None
            if scenario.reported:
                from engines.backup import iso_utc

                reported = (scenario.reported, {"until": iso_utc(until_ns)})
            result.playbooks, result.triage = autopilot(data_dir, repo, log=log, reported=reported)
            ok, why = healthy(data_dir)
            result.rto_seconds = round(time.monotonic() - fault_at, 3) if ok else None
            result.recovered, result.health = ok, why
            _measure_rpo(result, ledger_path, data_dir, fault_wall)
            result.passed = _passed(scenario, ok, result.rto_seconds, result.rpo_seconds, result.lost_writes)
    except Exception as exc:  # noqa: BLE001 - a drill that breaks is a failed drill, with the reason
        result.error = f"{type(exc).__name__}: {exc}"
        result.passed = False
    finally:
        if not keep:
            shutil.rmtree(sandbox, ignore_errors=True)
    return result


def _measure_rpo(result: DrillResult, ledger_path: Path, data_dir: Path, fault_wall: float) -> None:
    try:
        lost, acked = compare(ledger_path, data_dir)
    except Exception as exc:  # noqa: BLE001 - unreadable: everything acknowledged counts as lost
        lost, acked = list(Ledger.expected(ledger_path).values()), Ledger.count(ledger_path)
        result.health += f"; cannot read back ({type(exc).__name__}: {exc})"
    result.acked_writes, result.lost_writes = acked, len(lost)
    if lost:
        oldest = min(entry["ack"] for entry in lost)
        newest = max(entry["ack"] for entry in lost)
        result.rpo_seconds = round(max(0.0, fault_wall - oldest), 3)
        result.lost_span_seconds = round(newest - oldest, 3)


def _node_drill(scenario: Scenario, engine: str, sandbox: Path, result: DrillResult, *, writes: int, seed: int,
                log: Callable[[str], None] | None) -> None:
    """A node under load through its API is killed; the autopilot recovers the data dir and the node is
    restarted (the supervisor's part). RTO: fault -> the restarted node serves a write and a read."""
    from engines.node.client import NodeClient
    from playbooks.drills.node import NodeLoad, NodeProcess

    data_dir, repo, ledger_path = sandbox / "data", sandbox / "backup", sandbox / "ledger" / "acked.jsonl"  # no backup: a crash needs none
    node = NodeProcess(data_dir, engine, sandbox / "node.log")
    ledger = Ledger(ledger_path)
    load: NodeLoad | None = None
    try:
        node.start()
        load = NodeLoad(node.url, ledger).start()
        load.wait_for(writes // 2)
        fault = inject(scenario.name, data_dir, seed=seed, pid=node.pid)
        fault_at, fault_wall = time.monotonic(), time.time()
        result.fault = fault.to_json()
        if log:
            log(f"fault: {fault.summary} ({load.acked} writes acknowledged so far)")
        if scenario.name == "process-kill":
            node.reap()  # no zombie keeps the lock file open
        load.stop()  # the clients see the node gone; nothing more is acknowledged
        ledger.close()
        result.playbooks, result.triage = autopilot(data_dir, repo, log=log)
        ok, why = healthy(data_dir)
        if ok:
            node.start()  # the supervisor restarts the service
            with NodeClient(node.url) as client:
                client.put(b"__drill_probe__", b"up")
                ok = client.get(b"__drill_probe__") == b"up"
                client.delete(b"__drill_probe__")
            why = "the restarted node serves reads and writes" if ok else "the node does not read back its write"
            result.rto_seconds = round(time.monotonic() - fault_at, 3) if ok else None
            node.stop()
        result.recovered, result.health = ok, why
        _measure_rpo(result, ledger_path, data_dir, fault_wall)
        result.passed = _passed(scenario, ok, result.rto_seconds, result.rpo_seconds, result.lost_writes)
    finally:
        if load is not None:
            load.stop()
        try:
            ledger.close()
        except Exception:  # noqa: BLE001
            pass
        node.stop()


def report_markdown(results: list[DrillResult]) -> str:
    lines = ["# Recovery metrics", "",
             "| scenario | engine | target RTO | measured RTO | target RPO | measured RPO | acked | lost | result | playbooks |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        rto = f"{result.rto_seconds:.2f} s" if result.rto_seconds is not None else "not recovered"
        used = ", ".join(f"{run['playbook']} ({run['status']})" for run in result.playbooks) or "-"
        verdict = "PASS" if result.passed else "FAIL" + (f" ({result.error})" if result.error else "")
        lines.append(f"| {result.scenario} | {result.engine} | {result.target_rto_seconds:g} s | {rto} | "
                     f"{result.target_rpo_seconds:g} s | {result.rpo_seconds:g} s | {result.acked_writes} | "
                     f"{result.lost_writes} | {verdict} | {used} |")
    passed = sum(1 for result in results if result.passed)
    lines += ["", f"{passed}/{len(results)} drills passed."]
    return "\n".join(lines) + "\n"
