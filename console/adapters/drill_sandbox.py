"""A drill's sandbox for a human responder: built, loaded and broken, then measured when it is healthy.

    sandbox = build_sandbox("sstable-corrupt", "lsm")    # data dir, backups, ledger; the fault injected
    outcome = measure(sandbox)                           # None while the node is not healthy; else a DrillResult

The same scenario, load and fault as the unattended ``drconsole drill run``, built by the same code
(``drills.Sandbox``): a sync-durability engine takes a load whose acknowledged writes are
kept in a ledger outside the data dir, a full backup is taken part-way and the WAL is archived, then
the scenario's fault is injected. The console's drill mode (console.tui.drill_mode) lets a person
respond; ``measure`` uses the drill's own health check, RPO measure and targets. No Textual here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drills import (
    SCENARIOS,
    DrillResult,
    Ledger,
    Sandbox,
    Scenario,
    drill_state_dir,
    healthy,
    measure_rpo,
    met_targets,
    report_markdown,
)
from engines.fsutil import atomic_write_text

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
    def sandbox(self) -> Sandbox:
        """The folder's layout, as the unattended drill has it."""
        return Sandbox.at(self.root)

    @property
    def data_dir(self) -> Path:
        return self.sandbox.data_dir

    @property
    def repo(self) -> Path:
        return self.sandbox.repo

    @property
    def ledger_path(self) -> Path:
        return self.sandbox.ledger_path

    @property
    def state_dir(self) -> Path:
        return self.sandbox.state_dir

    def elapsed(self, now: float | None = None) -> float:
        return max(0.0, (time.monotonic() if now is None else now) - self.fault_at)

    def remove(self) -> None:
        self.sandbox.remove()


def _plays_on_a_data_dir(scenario: Any) -> bool:
    """Whether a scenario's fault acts on one data dir only (not a node process, a fleet or the host)."""
    return not (scenario.needs_node or scenario.cluster or scenario.host or scenario.new_host)


def build_sandbox(
    name: str,
    engine: str,
    *,
    writes: int = 500,
    value_size: int = 128,
    seed: int = 1,
    workdir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> DrillSandbox:
    """A fresh sandbox with the load, the backups and the fault of scenario ``name`` on ``engine``."""
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise SandboxError(f"no scenario {name!r} (see `drconsole drill list`)")
    if engine not in scenario.engines:
        raise SandboxError(f"{name} does not apply to {engine}; it applies to {', '.join(scenario.engines)}")
    if not _plays_on_a_data_dir(scenario):
        local = ", ".join(sorted(key for key, value in SCENARIOS.items() if _plays_on_a_data_dir(value)))
        # A host or cluster fault built as a plain data dir would act on the real host (a disk-full
        # filler on the temp dir's real file system): refuse rather than improvise.
        why = (
            "a node process"
            if scenario.needs_node
            else "a primary and a standby"
            if scenario.cluster
            else "three hosts (network namespaces) and an sshd"
            if scenario.new_host
            else "its own small file system or a memory hog"
        )
        raise SandboxError(f"{name} needs {why}; the console drill plays the data-dir scenarios: {local}")
    sandbox = Sandbox.create(workdir, prefix=f"drill-console-{name}-{engine}-")
    writes, value_size = max(10, writes), max(2, value_size)
    try:
        if log:
            log(f"sandbox {sandbox.root}: {engine} data dir, sync durability, {writes} acknowledged writes")
        before = writes * 3 // 5
        sandbox.load(engine, before=before, after=writes - before, value_size=value_size, node_name="drill-node")
        fault = sandbox.break_with(scenario.name, seed=seed)
    except BaseException:
        sandbox.remove()
        raise
    if log:
        log(f"fault: {fault.summary}")
    return DrillSandbox(
        scenario,
        engine,
        sandbox.root,
        fault.to_json(),
        fault.summary,
        sandbox.fault_at,
        datetime.fromtimestamp(sandbox.fault_wall, UTC),
        Ledger.count(sandbox.ledger_path),
    )


def measure(
    sandbox: DrillSandbox, *, playbooks: list[dict[str, Any]] | None = None, triage: list[dict[str, Any]] | None = None
) -> tuple[DrillResult | None, str]:
    """(the drill's result, why) once the node is healthy; (None, why not) before. Blocks: run it in a worker.

    Healthy and the RPO are the unattended drill's: the engine opens read-write, verifies ok, and serves
    a write and a read; RTO is fault -> that check passing; RPO the acknowledged writes missing. The RTO
    target is the scenario's console target (a person at the keys), not the autopilot's.
    """
    ok, why = healthy(sandbox.data_dir)
    if not ok:
        sandbox.checks.append(why)
        return None, why
    rto = round(sandbox.elapsed(), 3)
    rpo = measure_rpo(sandbox.ledger_path, sandbox.data_dir, sandbox.fault_wall.timestamp())
    if rpo.unreadable is not None:
        why += f"; cannot read back ({rpo.unreadable})"
    scenario = sandbox.scenario
    target = scenario.console_target_rto_seconds  # a person's target, not the autopilot's
    result = DrillResult(
        scenario.name,
        sandbox.engine,
        rto,
        rpo.rpo_seconds,
        rpo.acked_writes,
        rpo.lost_writes,
        target,
        scenario.target_rpo_seconds,
        met_targets(scenario, True, rto, rpo.rpo_seconds, rpo.lost_writes, target_rto_seconds=target),
        recovered=True,
        health=why,
        playbooks=list(playbooks or []),
        triage=list(triage or []),
        fault=sandbox.fault,
        lost_span_seconds=rpo.lost_span_seconds,
    )
    return result, why


def write_report(result: DrillResult, path: Path, *, responder: str, timeline: list[str]) -> Path:
    """The recovery-metrics table of ``drill all`` for this drill, then what the responder did."""
    lines = [
        report_markdown([result]).rstrip("\n"),
        "",
        "## Responded by a human in the console",
        "",
        f"- **Responder**: {responder}",
        f"- **Fault**: {result.fault.get('summary', result.scenario)}",
        f"- **Measured RTO**: {result.rto_seconds} s (target {result.target_rto_seconds:g} s)",
        f"- **Measured RPO**: {result.rpo_seconds:g} s, {result.lost_writes} of {result.acked_writes} "
        f"acknowledged writes lost (target {result.target_rpo_seconds:g} s)",
        "",
        "### Triage",
    ]
    lines += [
        f"- {row['question']} **{row['answer']}**"
        + (" (override)" if row.get("overridden") else "")
        + f" — {row['evidence']}"
        for row in result.triage
    ] or ["- (no triage answers)"]
    lines += ["", "### Playbook runs"]
    lines += [f"- {run['playbook']}: {run['status']}" for run in result.playbooks] or ["- (none)"]
    lines += ["", "### Timeline"] + [f"- {entry}" for entry in timeline] + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines))
    return path


@contextlib.contextmanager
def state_dir_of(sandbox: DrillSandbox) -> Iterator[None]:
    """Runs, incidents and the audit log of a drill go to its sandbox, not the responder's state dir."""
    with drill_state_dir(sandbox.state_dir):
        yield
