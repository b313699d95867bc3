"""A drill's sandbox for a human responder: built, loaded and broken, then measured when it is healthy.

    sandbox = build_sandbox("sstable-corrupt", "lsm")    # data dir, backups, ledger; the fault injected
    outcome = measure(sandbox)                           # None while the node is not healthy; else a DrillResult

The same scenario, load and fault as the unattended ``drconsole drill run`` (``playbooks.drills``):
a sync-durability engine takes a load whose acknowledged writes are kept in a ledger outside the
data dir, a full backup is taken part-way and the WAL is archived, then the scenario's fault is
injected. The console's drill mode (console.drill_mode) lets a person respond; ``measure`` uses the
drill's own health check and ledger comparison. No Textual here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engines import create_engine
from engines.backup import create_backup
from engines.fsutil import atomic_write_text
from playbooks.drills import SCENARIOS, DrillResult, Ledger, Scenario, compare, healthy, report_markdown, write_load
from playbooks.faults import inject

__all__ = ["DrillSandbox", "SandboxError", "build_sandbox", "measure", "state_dir_of", "write_report"]


class SandboxError(ValueError):
    """The scenario cannot be played by a human in the console (it needs a node process, an unknown name)."""


@dataclass
class DrillSandbox:
    scenario: Scenario
    engine: str
    root: Path
    fault: dict[str, Any]
    fault_summary: str
    fault_at: float  # time.monotonic() when the fault was injected: the RTO clock starts here
    fault_wall: datetime
    acked_writes: int
    node_name: str = "drill-node"
    checks: list[str] = field(default_factory=list)  # the health checks so far, and why they failed

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def repo(self) -> Path:
        return self.root / "backup"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger" / "acked.jsonl"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def elapsed(self, now: float | None = None) -> float:
        return max(0.0, (time.monotonic() if now is None else now) - self.fault_at)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)  # the drill's own temp dir, never user data


def build_sandbox(name: str, engine: str, *, writes: int = 500, value_size: int = 128, seed: int = 1,
                  workdir: Path | None = None, log: Callable[[str], None] | None = None) -> DrillSandbox:
    """A fresh sandbox with the load, the backups and the fault of scenario ``name`` on ``engine``."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise SandboxError(f"no scenario {name!r} (see `drconsole drill list`)")
    if engine not in scenario.engines:
        raise SandboxError(f"{name} does not apply to {engine}; it applies to {', '.join(scenario.engines)}")
    if scenario.needs_node:
        local = ", ".join(sorted(key for key, value in SCENARIOS.items() if not value.needs_node))
        raise SandboxError(f"{name} needs a node process; the console drill plays the data-dir scenarios: {local}")
    root = Path(tempfile.mkdtemp(prefix=f"drill-console-{name}-{engine}-", dir=workdir))
    try:
        return _fill(root, scenario, engine, writes=max(10, writes), value_size=max(2, value_size), seed=seed,
                     log=log)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _fill(root: Path, scenario: Scenario, engine: str, *, writes: int, value_size: int, seed: int,
          log: Callable[[str], None] | None) -> DrillSandbox:
    data_dir, repo = root / "data", root / "backup"
    ledger = Ledger(root / "ledger" / "acked.jsonl")
    before = writes * 3 // 5
    try:
        if log:
            log(f"sandbox {root}: {engine} data dir, sync durability, {writes} acknowledged writes")
        with create_engine(data_dir, backend=engine, durability="sync", node_name="drill-node") as db:
            write_load(db, ledger, 0, before, value_size=value_size)
            db.flush()
            create_backup(repo, engine=db)
            write_load(db, ledger, before, writes - before, value_size=value_size)
            db.flush()
            db.put(b"__drill_mark__", b"end of load")
            create_backup(repo, engine=db, incremental=True)  # continuous archiving: the WAL shipped so far
    finally:
        ledger.close()
    report = inject(scenario.name, data_dir, seed=seed, repo=repo)
    fault_at, fault_wall = time.monotonic(), datetime.now(UTC)
    if log:
        log(f"fault: {report.summary}")
    return DrillSandbox(scenario, engine, root, report.to_json(), report.summary, fault_at, fault_wall,
                        Ledger.count(root / "ledger" / "acked.jsonl"))


def measure(sandbox: DrillSandbox, *, playbooks: list[dict[str, Any]] | None = None,
            triage: list[dict[str, Any]] | None = None) -> tuple[DrillResult | None, str]:
    """(the drill's result, why) once the node is healthy; (None, why not) before. Blocks: run it in a worker.

    Healthy is the unattended drill's test: the engine opens read-write, verifies ok, and serves a
    write and a read. RTO is fault -> that check passing; RPO the acknowledged writes missing.
    """
    ok, why = healthy(sandbox.data_dir)
    if not ok:
        sandbox.checks.append(why)
        return None, why
    rto = round(sandbox.elapsed(), 3)
    lost, acked = compare(sandbox.ledger_path, sandbox.data_dir)
    scenario = sandbox.scenario
    rpo = span = 0.0
    if lost:
        fault_wall = sandbox.fault_wall.timestamp()
        rpo = round(max(0.0, fault_wall - min(entry["ack"] for entry in lost)), 3)
        span = round(max(entry["ack"] for entry in lost) - min(entry["ack"] for entry in lost), 3)
    within_rpo = not lost if scenario.target_rpo_seconds == 0 else rpo <= scenario.target_rpo_seconds
    result = DrillResult(scenario.name, sandbox.engine, rto, rpo, acked, len(lost), scenario.target_rto_seconds,
                         scenario.target_rpo_seconds, rto <= scenario.target_rto_seconds and within_rpo,
                         recovered=True, health=why, playbooks=list(playbooks or []), triage=list(triage or []),
                         fault=sandbox.fault, lost_span_seconds=span)
    return result, why


def write_report(result: DrillResult, path: Path, *, responder: str, timeline: list[str]) -> Path:
    """The recovery-metrics table of ``drill all`` for this drill, then what the responder did."""
    lines = [report_markdown([result]).rstrip("\n"), "", "## Responded by a human in the console", "",
             f"- **Responder**: {responder}", f"- **Fault**: {result.fault.get('summary', result.scenario)}",
             f"- **Measured RTO**: {result.rto_seconds} s (target {result.target_rto_seconds:g} s)",
             f"- **Measured RPO**: {result.rpo_seconds:g} s, {result.lost_writes} of {result.acked_writes} "
             f"acknowledged writes lost (target {result.target_rpo_seconds:g} s)", "", "### Triage"]
    lines += [f"- {row['question']} **{row['answer']}**" + (" (override)" if row.get("overridden") else "")
              + f" — {row['evidence']}" for row in result.triage] or ["- (no triage answers)"]
    lines += ["", "### Playbook runs"]
    lines += [f"- {run['playbook']}: {run['status']}" for run in result.playbooks] or ["- (none)"]
    lines += ["", "### Timeline"] + [f"- {entry}" for entry in timeline] + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines))
    return path


@contextlib.contextmanager
def state_dir_of(sandbox: DrillSandbox) -> Iterator[None]:
    """Runs, incidents and the audit log of a drill go to its sandbox, not the responder's state dir."""
    old = os.environ.get("DRCONSOLE_STATE_DIR")
    os.environ["DRCONSOLE_STATE_DIR"] = str(sandbox.state_dir)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DRCONSOLE_STATE_DIR", None)
        else:
            os.environ["DRCONSOLE_STATE_DIR"] = old
