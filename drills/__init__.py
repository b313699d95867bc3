"""DR drills: a sandbox fleet, a load with a ledger of acknowledged writes, a real fault, the
autopilot's response (triage, then the recommended playbooks with --yes), measured RTO and RPO.

    from drills import SCENARIOS, run_drill
    result = run_drill("sstable-corrupt", engine="lsm")     # -> DrillResult; .to_json()

RTO = fault injected -> the engine opens read-write, verifies ok and serves a read and a write.
RPO = acknowledged writes (the ledger, kept outside the data dir) whose value is missing or
different afterwards: a count, and the time span from the oldest lost ack to the fault.
The sandbox itself (load, ledger, backups, fault, RPO) is ``drills.sandbox``, re-exported
here: the console's drill mode builds and measures a human's drill with the same code.
Nothing here imports Textual or the console.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drills.sandbox import (
    BULK_BATCH,
    BULK_VALUE_SIZE,
    Ledger,
    Rpo,
    Sandbox,
    compare,
    drill_state_dir,
    measure_rpo,
    rpo_of,
    write_load,
)
from engines import open_engine
from engines.backup import iso_utc
from faults import inject

__all__ = [
    "Scenario",
    "SCENARIOS",
    "DrillResult",
    "RESULT_CONTRACT",
    "run_drill",
    "scenario_pairs",
    "report_markdown",
    "healthy",
    "autopilot",
    "met_targets",
    "record_rpo",
    "run_waiving",
    # the sandbox API (drills.sandbox), shared with the console's drill mode
    "Sandbox",
    "Ledger",
    "Rpo",
    "measure_rpo",
    "rpo_of",
    "set_rpo",
    "drill_state_dir",
    "write_load",
    "compare",
    "BULK_BATCH",
    "BULK_VALUE_SIZE",
]

BACKENDS = ("cow", "lsm", "rocksdb")
SAFETY_COPY_FAILED = "the safety copy failed"  # the runner's message when it could not take one


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
    host: str | None = None  # "disk" | "memory": a fault of the host, drilled by drills.host
    cluster: bool = False  # a primary + standby fleet, drilled by drills.cluster
    offsite: bool = False  # the repository has an off-site copy; the fault hits the local repository too
    fault: str | None = None  # the fault kind it injects, when not its name
    new_host: bool = False  # the host is lost; a new node is built on another host (drills.host_loss)
    # The RTO target when a person responds in the console (``drill run --console``): what a responder
    # pressing keys at a human pace achieved, plus a margin (bench/console_drill_pace.py measures it).
    console_rto_seconds: float | None = None

    @property
    def console_target_rto_seconds(self) -> float:
        """A person's target: the scenario's own, else CONSOLE_RTO_SECONDS for the data-dir drills the
        console plays, else the autopilot's (node, host and cluster drills have no console drill)."""
        if self.console_rto_seconds is not None:
            return self.console_rto_seconds
        if self.needs_node or self.host is not None or self.cluster or self.new_host:
            return self.target_rto_seconds
        return CONSOLE_RTO_SECONDS

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "engines": list(self.engines),
            "target_rto_seconds": self.target_rto_seconds,
            "console_target_rto_seconds": self.console_target_rto_seconds,
            "target_rpo_seconds": self.target_rpo_seconds,
            "description": self.description,
            "reference": self.reference,
        }


# Targets ahead of the reference tables (issue 9): corruption RTO <= 30 s (reference 1m30-2m),
# restore RTO <= 30 s (reference 8-15 min), RPO 0 acknowledged writes in sync mode unless lossy by
# nature (a restore loses the writes after the last backup: the reference's "< 1 hour").
#
# A person in the console (``drill run --console``) is held to CONSOLE_RTO_SECONDS instead: with a
# key every 2 s, read before pressing (bench/console_drill_pace.py, 2026-12-06, 120x40), the
# data-dir drills took 17.7-36.2 s for 9-18 keys (ransomware 17.7, manifest-lost 21.5, meta-corrupt
# 25.4, wal-corrupt-tail 27.6, sst-corrupt 28.1, sstable-corrupt 28.6, page-corrupt 30.5,
# config-broken 31.5, wal-corrupt-middle 36.2); 60 s leaves a slower reader room (about 3 s a key)
# and is half the reference's 2 minutes. accidental-deletion was not measured: its playbook needs a
# point in time, which the console's Run playbook… does not ask for yet.
CONSOLE_RTO_SECONDS = 60.0
SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "wal-corrupt-tail",
            BACKENDS,
            30,
            0,
            "bytes flipped in the last WAL records",
            "Database crash: RTO 2 min, RPO < 1 min",
        ),
        Scenario(
            "wal-corrupt-middle",
            BACKENDS,
            30,
            0,
            "bytes flipped in the middle of a WAL segment",
            "Data corruption: RTO 2 min, RPO < 1 min",
        ),
        Scenario(
            "page-corrupt", ("cow",), 30, 0, "a B+ tree page corrupted", "Data corruption: RTO 2 min, RPO < 1 min"
        ),
        Scenario(
            "meta-corrupt", ("cow",), 30, 0, "both meta pages corrupted", "Data corruption: RTO 2 min, RPO < 1 min"
        ),
        Scenario(
            "sstable-corrupt",
            ("lsm",),
            30,
            0,
            "an SSTable data block corrupted",
            "Data corruption: RTO 2 min, RPO < 1 min",
        ),
        Scenario(
            "sst-corrupt", ("rocksdb",), 30, 0, "an SST file corrupted", "Data corruption: RTO 2 min, RPO < 1 min"
        ),
        Scenario(
            "manifest-lost",
            ("lsm", "rocksdb"),
            30,
            0,
            "the manifest moved aside",
            "Data corruption: RTO 2 min, RPO < 1 min",
        ),
        Scenario(
            "accidental-deletion",
            BACKENDS,
            30,
            0,
            "a key range deleted through the engine",
            "Backup restore: RTO 10 min, RPO < 1 hour",
            reported="accidental-deletion",
        ),
        Scenario(
            "ransomware",
            BACKENDS,
            30,
            3600,
            "files encrypted in place and renamed .locked",
            "Backup restore: RTO 10 min, RPO < 1 hour",
        ),
        Scenario(
            "ransomware-offsite",
            BACKENDS,
            30,
            3600,
            "the data dir and the local backup repository encrypted; restored from the off-site copy",
            "Backup restore: RTO 10 min, RPO < 1 hour",
            offsite=True,
            fault="ransomware",
        ),
        Scenario(
            "config-broken", BACKENDS, 30, 0, "drconsole.json made invalid", "Application crash: RTO 30 s, RPO < 1 min"
        ),
        Scenario(
            "process-kill",
            BACKENDS,
            5,
            0,
            "SIGKILL of the node process under load (sync durability)",
            "Application crash: RTO 30 s (typical 22-26 s), RPO < 1 min",
            needs_node=True,
        ),
        Scenario(
            "process-hang",
            BACKENDS,
            5,
            0,
            "SIGSTOP of the node process under load (it holds its lock, serves nothing)",
            "Application crash: RTO 30 s (typical 22-26 s), RPO < 1 min",
            needs_node=True,
        ),
        Scenario(
            "disk-full",
            BACKENDS,
            30,
            0,
            "the data dir's 64 MiB tmpfs filled until ENOSPC while a writer runs",
            "Disk space exhaustion (Orbit P0/P1); no reference timing",
            host="disk",
        ),
        Scenario(
            "memory-pressure",
            BACKENDS,
            30,
            0,
            "a process holding 4 GiB of touched memory next to the engine",
            "Memory exhaustion (Orbit P1); no reference timing",
            host="memory",
        ),
        # The reference's complete server failure takes 30-45 min; the drill's WAL ships every second
        # (host_loss.ARCHIVE_TIMEOUT): an RPO of 5 s is that, plus sealing and two uploads.
        Scenario(
            "host-loss",
            BACKENDS,
            60,
            5,
            "the primary's host lost (node killed, cable pulled, data dir and local repository gone); "
            "a new node rebuilt on another host from the off-site copy over SFTP",
            "Complete server failure: RTO 30-45 min",
            offsite=True,
            new_host=True,
        ),
        # Cluster drills (drills.cluster): failover RTO <= 5 s (reference 1 m 45 s - 2 m), RPO 0 in sync mode.
        Scenario(
            "primary-loss",
            BACKENDS,
            5,
            0,
            "SIGKILL of the primary of a primary + standby under load: failover",
            "Failover: RTO 1 m 45 s - 2 m",
            cluster=True,
        ),
        Scenario(
            "split-brain",
            BACKENDS,
            30,
            0,
            "a standby promoted while its primary keeps taking writes",
            "Split brain (Lightning: fence the non-authoritative side, rebuild it)",
            cluster=True,
        ),
        Scenario(
            "standby-lag",
            BACKENDS,
            30,
            0,
            "the standby SIGSTOPped while the primary takes writes",
            "Replication lag (Orbit: replication lag alert); no reference timing",
            cluster=True,
        ),
        Scenario(
            "isolated-node",
            BACKENDS,
            30,
            0,
            "a standby's network cable pulled (its namespace's links down) for 10 s; it keeps running",
            "Plumtree: Isolated Node; no reference timing",
            cluster=True,
        ),
        Scenario(
            "network-partition",
            BACKENDS,
            30,
            0,
            "the primary of three cut off for 14 s while clients on its side "
            "keep writing to it: failover, then its writes reconciled",
            "Plumtree: Network Partition",
            cluster=True,
        ),
        Scenario(
            "two-node-loss",
            BACKENDS,
            30,
            0,
            "SIGKILL of the primary and a standby of three under load",
            "Plumtree: Multiple Node Failure (minority survives)",
            cluster=True,
        ),
        Scenario(
            "total-cluster-loss",
            BACKENDS,
            60,
            0,
            "SIGKILL of all three nodes under load",
            "Plumtree: Total Cluster Loss",
            cluster=True,
        ),
    )
}


def scenario_pairs(engine: str | None = None) -> list[tuple[str, str]]:
    return [
        (name, backend)
        for name, scenario in SCENARIOS.items()
        for backend in scenario.engines
        if engine is None or backend == engine
    ]


# ------------------------------------------------------------------------------------------- health
def healthy(data_dir: Path) -> tuple[bool, str]:
    """The engine opens read-write, verifies ok, and serves a write and a read back."""
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
RESULT_CONTRACT = (
    "scenario",
    "engine",
    "rto_seconds",
    "rpo_seconds",
    "acked_writes",
    "lost_writes",
    "target_rto_seconds",
    "target_rpo_seconds",
    "passed",
)


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

    def contract_json(self) -> dict[str, Any]:
        """``drill run --json``'s object (DESIGN.md's CLI contract): the contract's keys first, then the rest."""
        payload = self.to_json()
        return {**{key: payload[key] for key in RESULT_CONTRACT}, **payload}


def met_targets(
    scenario: Scenario,
    recovered: bool,
    rto: float | None,
    rpo: float,
    lost: int,
    *,
    target_rto_seconds: float | None = None,
) -> bool:
    """Recovered within the target RTO (``target_rto_seconds``, else the scenario's), and no acknowledged
    write lost (or within the target RPO when the scenario is lossy by nature, like a restore)."""
    target = scenario.target_rto_seconds if target_rto_seconds is None else target_rto_seconds
    if not recovered or rto is None or rto > target:
        return False
    if scenario.target_rpo_seconds == 0:
        return lost == 0
    return rpo <= scenario.target_rpo_seconds


def record_rpo(result: DrillResult, ledger_path: Path, data_dir: Path, fault_wall: float) -> Rpo:
    """Measure the RPO into ``result`` (a data dir that cannot be read back is said in its health)."""
    return set_rpo(result, measure_rpo(ledger_path, data_dir, fault_wall))


def set_rpo(result: DrillResult, rpo: Rpo) -> Rpo:
    """Put a measured RPO into ``result``, however the lost writes were found (a data dir, a node's API)."""
    result.acked_writes, result.lost_writes = rpo.acked_writes, rpo.lost_writes
    if rpo.lost_writes:
        result.rpo_seconds, result.lost_span_seconds = rpo.rpo_seconds, rpo.lost_span_seconds
    if rpo.unreadable is not None:
        result.health += f"; cannot read back ({rpo.unreadable})"
    return rpo


def autopilot(
    data_dir: Path,
    repo: Path,
    *,
    rounds: int = 3,
    log: Callable[[str], None] | None = None,
    reported: tuple[str, dict[str, Any]] | None = None,
    memory_threshold: float | None = None,
    defaults: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Triage, then every recommended playbook (with --yes) in order; again until triage finds nothing.

    ``reported``: (playbook, params) a human's report leads to (an accidental deletion is a valid write:
    no probe sees it); run once when triage finds nothing. ``memory_threshold``: the sandbox's alert
    rule for memory; ``defaults``: parameter defaults from the sandbox's config (quarantine_volume).
    """
    from playbooks.runner import Runner, RunOptions
    from playbooks.triage import triage

    runs: list[dict[str, Any]] = []
    walks: list[dict[str, Any]] = []
    param_defaults: dict[str, Any] = {"repo": str(repo), **(defaults or {})}
    if memory_threshold is not None:
        param_defaults["memory_threshold"] = f"{memory_threshold:.6f}"
    for _ in range(rounds):
        result = triage(data_dir=data_dir, repo=repo, memory_threshold=memory_threshold)
        walks.append(
            {
                "recommended": result.recommended,
                "summary": result.summary,
                "path": [[entry.node, entry.answer] for entry in result.path],
            }
        )
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
                run = run_waiving(
                    Runner(),
                    playbook,
                    data_dir,
                    RunOptions(params=params, param_defaults=param_defaults, assume_yes=True),
                    runs,
                )
                runs.append({"playbook": playbook, "status": run.status, "message": run.message, "lost": run.lost})
            except Exception as exc:  # noqa: BLE001 - a playbook that cannot run is a finding, recorded
                runs.append({"playbook": playbook, "status": "error", "message": f"{type(exc).__name__}: {exc}"})
            ran = True
            if log:
                log(f"  {playbook}: {runs[-1]['status']} {runs[-1]['message']}")
        if not ran:
            break
    return runs, walks


def run_waiving(
    runner: Any, playbook: str, data_dir: Path, options: Any, runs: list[dict[str, Any]], node: str | None = None
) -> Any:
    """Run ``playbook``; when its safety copy could not be taken, run it again with the copy waived.

    What a responder does when the copy cannot be taken (no room on a full disk, the lock held by a
    hung process or by a node cut off on its side of a partition): waive it, saying why; the runner
    audits the waiver. The failed first run is appended to ``runs``.
    """
    import dataclasses

    run = runner.run(playbook, data_dir, options)
    if run.status != "succeeded" and SAFETY_COPY_FAILED in (run.message or ""):
        runs.append(
            {
                "playbook": playbook,
                "status": run.status,
                "message": run.message,
                "lost": run.lost,
                **({"node": node} if node else {}),
            }
        )
        run = runner.run(
            playbook, data_dir, dataclasses.replace(options, waive_safety_copy=f"drill autopilot: {run.message}")
        )
    return run


def run_drill(
    name: str,
    engine: str,
    *,
    writes_before_backup: int = 300,
    writes_after_backup: int = 200,
    value_size: int = 128,
    seed: int = 1,
    keep: bool = False,
    archive_wal: bool = True,
    workdir: Path | None = None,
    log: Callable[[str], None] | None = None,
    data_mb: float | None = None,
) -> DrillResult:
    """Run one scenario on one engine in a fresh sandbox; the sandbox is removed unless ``keep``.

    ``data_mb``: load this many MiB of incompressible values (4 KiB each, 60 % before the backup)
    in place of the ``writes_*`` counts: the issue's "corruption on 100 MB", "restore of 512 MB".
    """
    if data_mb is not None:
        value_size = BULK_VALUE_SIZE
        total = max(10, int(data_mb * 2**20 // BULK_VALUE_SIZE))
        writes_before_backup, writes_after_backup = total * 3 // 5, total - total * 3 // 5
    scenario = SCENARIOS[name]
    if engine not in scenario.engines:
        raise ValueError(f"scenario {name} does not apply to {engine}; it applies to {', '.join(scenario.engines)}")
    sandbox = Sandbox.create(workdir, prefix=f"drill-{name}-{engine}-")
    result = DrillResult(
        name,
        engine,
        None,
        0.0,
        0,
        0,
        scenario.target_rto_seconds,
        scenario.target_rpo_seconds,
        False,
        sandbox=str(sandbox.root) if keep else None,
    )
    try:
        with drill_state_dir(sandbox.state_dir):
            if scenario.cluster:
                from drills.cluster_drill import cluster_drill

                cluster_drill(
                    scenario,
                    engine,
                    sandbox.root,
                    result,
                    writes=writes_before_backup + writes_after_backup,
                    seed=seed,
                    log=log,
                )
            elif scenario.new_host:
                from drills.host_loss import host_loss_drill

                host_loss_drill(
                    scenario,
                    engine,
                    sandbox.root,
                    result,
                    writes=writes_before_backup + writes_after_backup,
                    seed=seed,
                    log=log,
                )
            elif scenario.host:
                from drills.host import host_drill

                host_drill(
                    scenario,
                    engine,
                    sandbox,
                    result,
                    writes_before_backup=writes_before_backup,
                    writes_after_backup=writes_after_backup,
                    value_size=value_size,
                    seed=seed,
                    log=log,
                )
            elif scenario.needs_node:
                _node_drill(
                    scenario,
                    engine,
                    sandbox,
                    result,
                    writes=writes_before_backup + writes_after_backup,
                    seed=seed,
                    log=log,
                )
            else:
                _data_dir_drill(
                    scenario,
                    engine,
                    sandbox,
                    result,
                    before=writes_before_backup,
                    after=writes_after_backup,
                    value_size=value_size,
                    seed=seed,
                    archive_wal=archive_wal,
                    log=log,
                )
    except Exception as exc:  # noqa: BLE001 - a drill that breaks is a failed drill, with the reason
        result.error = f"{type(exc).__name__}: {exc}"
        result.passed = False
    finally:
        if not keep:
            sandbox.remove()
    return result


def _data_dir_drill(
    scenario: Scenario,
    engine: str,
    sandbox: Sandbox,
    result: DrillResult,
    *,
    before: int,
    after: int,
    value_size: int,
    seed: int,
    archive_wal: bool,
    log: Callable[[str], None] | None,
) -> None:
    """A fault in the data dir of a loaded engine; the autopilot responds; RTO to healthy, then the RPO."""
    sandbox.load(
        engine, before=before, after=after, value_size=value_size, archive_wal=archive_wal, offsite=scenario.offsite
    )
    fault = sandbox.break_with(scenario.fault or scenario.name, seed=seed)
    repo = sandbox.repo
    if scenario.offsite:
        # The attacker holds the host: its own backup repository is encrypted too. What is left is
        # the copy every backup and archived segment also went to (engines/backup/copies.py).
        inject(scenario.fault or scenario.name, sandbox.repo, seed=seed + 1)
        repo = sandbox.offsite
    result.fault = fault.to_json()
    if log:
        log(f"fault: {fault.summary}" + (f"; and the local repository {sandbox.repo}" if scenario.offsite else ""))
    # an accidental deletion is reported by a human: "everything up to the end of the load was fine"
    reported = (scenario.reported, {"until": iso_utc(sandbox.until_ns)}) if scenario.reported else None
    result.playbooks, result.triage = autopilot(sandbox.data_dir, repo, log=log, reported=reported)
    ok, why = healthy(sandbox.data_dir)
    result.rto_seconds = round(time.monotonic() - sandbox.fault_at, 3) if ok else None
    result.recovered, result.health = ok, why
    record_rpo(result, sandbox.ledger_path, sandbox.data_dir, sandbox.fault_wall)
    result.passed = met_targets(scenario, ok, result.rto_seconds, result.rpo_seconds, result.lost_writes)


def _node_drill(
    scenario: Scenario,
    engine: str,
    sandbox: Sandbox,
    result: DrillResult,
    *,
    writes: int,
    seed: int,
    log: Callable[[str], None] | None,
) -> None:
    """A node under load through its API is killed or hung; the autopilot responds while the load keeps
    writing (each write ledgered only once the node acknowledged it). A node the playbook resumed serves
    again by itself; a dead one has its data dir recovered and is restarted on the same port (the
    supervisor's part). RTO: fault -> the node serves a write and a read through its API again.
    """
    from drills.node import NodeLoad, NodeProcess, node_serves

    data_dir = sandbox.data_dir  # no backup: a crash needs none
    node = NodeProcess(data_dir, engine, sandbox.root / "node.log")
    ledger = Ledger(sandbox.ledger_path)
    load: NodeLoad | None = None
    try:
        node.start()
        load = NodeLoad(node.url, ledger).start()
        load.wait_for(writes // 2)
        fault = sandbox.break_with(scenario.name, seed=seed, pid=node.pid)
        acked_at_fault = load.acked
        result.fault = fault.to_json()
        if log:
            log(f"fault: {fault.summary} ({acked_at_fault} writes acknowledged so far; the load goes on)")
        if scenario.name == "process-kill":
            node.reap()  # no zombie keeps the lock file open
        result.playbooks, result.triage = autopilot(data_dir, sandbox.repo, log=log)
        if node.alive():
            ok, why = node_serves(node.url)  # resumed in place: no restart
        else:
            node.reap()
            ok, why = healthy(data_dir)
            if ok:
                node.start(same_port=True)  # the supervisor restarts the service where clients look for it
                ok, why = node_serves(node.url)
        result.rto_seconds = round(time.monotonic() - sandbox.fault_at, 3) if ok else None
        if ok:
            # the load itself gets acknowledgements again: recovery is what the clients see
            load.wait_for(load.acked + 20, timeout=10)
        result.fault["acked_at_fault"] = acked_at_fault
        result.fault["acked_during_recovery"] = load.acked - acked_at_fault
        load.stop()
        ledger.close()
        node.stop()
        result.recovered, result.health = ok, why
        record_rpo(result, sandbox.ledger_path, data_dir, sandbox.fault_wall)
        result.passed = met_targets(scenario, ok, result.rto_seconds, result.rpo_seconds, result.lost_writes)
    finally:
        if load is not None:
            load.stop()
        try:
            ledger.close()
        except Exception:  # noqa: BLE001
            pass
        node.stop()


def report_markdown(results: list[DrillResult]) -> str:
    lines = [
        "# Recovery metrics",
        "",
        "| scenario | engine | target RTO | measured RTO | target RPO | measured RPO | acked | lost | result "
        "| playbooks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        rto = f"{result.rto_seconds:.2f} s" if result.rto_seconds is not None else "not recovered"
        used = ", ".join(f"{run['playbook']} ({run['status']})" for run in result.playbooks) or "-"
        verdict = "PASS" if result.passed else "FAIL" + (f" ({result.error})" if result.error else "")
        lines.append(
            f"| {result.scenario} | {result.engine} | {result.target_rto_seconds:g} s | {rto} | "
            f"{result.target_rpo_seconds:g} s | {result.rpo_seconds:g} s | {result.acked_writes} | "
            f"{result.lost_writes} | {verdict} | {used} |"
        )
    passed = sum(1 for result in results if result.passed)
    lines += ["", f"{passed}/{len(results)} drills passed."]
    return "\n".join(lines) + "\n"
