"""Recovery verification in the THE_BOT reference's shape: levels, and "Total Checks / Passed / Failed".

    quick   the dir is there, the configuration is valid, the engine opens, the WAL is valid,
            disk and memory are under their thresholds
    full    quick + every checksum and invariant, every key readable, key count agrees
            (+ the backup repository verifies, when one is given)
    smoke   full + a write/read/delete round trip and a batch (``checks.smoke`` writes)

Each check prints ``[PASS]`` or ``[FAIL]`` with what it saw; the result line is
``RESULT: ALL CHECKS PASSED`` or ``RESULT: SOME CHECKS FAILED``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines.checks import verify_data_dir
from engines.errors import EngineError, InvalidArgumentError
from engines.marker import read_marker
from engines.registry import open_engine
from engines.wal import WalReader
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.evidence import disk_usage, human_bytes
from playbooks.probes.base import DISK_THRESHOLD, MEMORY_THRESHOLD

__all__ = ["CheckList", "LEVELS"]

LEVELS = ("quick", "full", "smoke")


class CheckList:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def run(self, name: str, check: Callable[[], tuple[bool, str]]) -> bool:
        try:
            passed, detail = check()
        except (EngineError, OSError) as exc:
            passed, detail = False, str(exc)
        self.rows.append({"check": name, "passed": passed, "detail": detail})
        return passed

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if not row["passed"])

    def lines(self) -> list[str]:
        out = [
            f"Total Checks: {len(self.rows)}",
            f"Passed: {len(self.rows) - self.failed}",
            f"Failed: {self.failed}",
            "",
        ]
        out += [f"[{'PASS' if row['passed'] else 'FAIL'}] {row['check']}: {row['detail']}" for row in self.rows]
        out += ["", "RESULT: ALL CHECKS PASSED" if not self.failed else "RESULT: SOME CHECKS FAILED"]
        return out

    def result(self, context: ActionContext, level: str) -> ActionResult:
        for line in self.lines():
            if line:
                context.log(line, "info" if not line.startswith("[FAIL]") else "warning")
        data = {
            "level": level,
            "total": len(self.rows),
            "passed": len(self.rows) - self.failed,
            "failed": self.failed,
            "checks": self.rows,
            "report": "\n".join(self.lines()),
        }
        passed = len(self.rows) - self.failed
        summary = f"{level} verification: {len(self.rows)} checks, {passed} passed, {self.failed} failed"
        return ActionResult(self.failed == 0, summary, data)


def _quick(checks: CheckList, data_dir: Path) -> None:
    import psutil

    checks.run("data dir present", lambda: (data_dir.is_dir(), str(data_dir)))

    def marker() -> tuple[bool, str]:
        found = read_marker(data_dir)
        return (found is not None, f"{found.backend}, epoch {found.epoch}" if found else "drconsole.json missing")

    checks.run("configuration valid", marker)

    def opens() -> tuple[bool, str]:
        clock = time.monotonic()
        with open_engine(data_dir, mode="ro") as engine:
            return True, f"{engine.backend}, last LSN {engine.last_lsn}, {time.monotonic() - clock:.2f} s"

    checks.run("engine opens", opens)

    def wal() -> tuple[bool, str]:
        validation = WalReader(data_dir / "wal").validate()
        if validation.corruption is not None:
            return False, f"{validation.corruption.reason} in {validation.corruption.segment}"
        return True, f"{validation.records} records"

    checks.run("WAL valid", wal)

    def disk() -> tuple[bool, str]:
        found = disk_usage(data_dir)
        return found.ratio <= DISK_THRESHOLD, found.sentence(DISK_THRESHOLD)

    checks.run("disk below threshold", disk)

    def memory() -> tuple[bool, str]:
        found = psutil.virtual_memory()
        ratio = (found.total - found.available) / found.total
        return ratio <= MEMORY_THRESHOLD, f"{ratio * 100:.0f} % used; threshold {MEMORY_THRESHOLD * 100:.0f} %"

    checks.run("memory below threshold", memory)


def _full(checks: CheckList, data_dir: Path, repo: str | None) -> None:
    def integrity() -> tuple[bool, str]:
        report = verify_data_dir(data_dir)
        if report.ok:
            return True, ", ".join(f"{count} {what}" for what, count in sorted(report.checked.items()))
        first = report.problems[0]
        return False, f"{len(report.problems)} problem(s): {first.kind} {first.detail} ({first.file})"

    checks.run("data integrity", integrity)

    def readable() -> tuple[bool, str]:
        with open_engine(data_dir, mode="ro") as engine:
            count = sum(1 for _ in engine.scan())
            stats = engine.stats()
        exact = not stats.details.get("total_keys_is_estimate", False)
        if exact and stats.total_keys != count:
            return False, f"scan read {count} keys, stats say {stats.total_keys}"
        return True, f"{count} keys read"

    checks.run("every key readable", readable)
    if repo:

        def backups() -> tuple[bool, str]:
            from engines.backup import verify_repository

            result = verify_repository(str(repo), quick=True)
            return result.ok, f"{len(result.backups)} backup(s); window {result.window or 'none'}"

        checks.run("backup repository verifies", backups)


@action("checks.verify_recovery", writes=False)
def verify_recovery(
    context: ActionContext, *, level: str = "quick", repo: str | None = None, path: str | None = None
) -> ActionResult:
    """Run the quick or full recovery verification and print Total Checks / Passed / Failed."""
    if level not in ("quick", "full"):
        raise InvalidArgumentError(f"level {level!r}: checks.verify_recovery runs quick or full (smoke: checks.smoke)")
    data_dir = Path(path) if path else context.require_data_dir()
    checks = CheckList()
    _quick(checks, data_dir)
    if level == "full":
        _full(checks, data_dir, repo)
    return checks.result(context, level)


@action("checks.smoke", writes=True)
def smoke(context: ActionContext, *, repo: str | None = None) -> ActionResult:
    """The full verification plus write/read/delete round trips (the smoke level)."""
    data_dir = context.require_data_dir()
    checks = CheckList()
    _quick(checks, data_dir)
    _full(checks, data_dir, repo)
    prefix = f"\x00drconsole/smoke/{context.run_id}/".encode()

    def round_trip() -> tuple[bool, str]:
        with open_engine(data_dir, mode="rw") as engine:
            engine.put(prefix + b"one", b"1")
            ok = engine.get(prefix + b"one") == b"1"
            engine.delete(prefix + b"one")
            return ok and engine.get(prefix + b"one") is None, "put, get and delete of a probe key"

    checks.run("write/read/delete round trip", round_trip)

    def batch() -> tuple[bool, str]:
        keys = [prefix + b"batch-%03d" % index for index in range(20)]
        with open_engine(data_dir, mode="rw") as engine:
            engine.write_batch([(key, b"v") for key in keys])
            seen = [key for key, _ in engine.scan(prefix=prefix)]
            engine.write_batch([(key, None) for key in keys])
            left = list(engine.scan(prefix=prefix))
        return seen == keys and not left, f"batch of {len(keys)} written, scanned in order, deleted"

    checks.run("atomic batch and ordered scan", batch)
    return checks.result(context, "smoke")


@action("checks.benchmark", writes=False)
def benchmark(context: ActionContext, *, reads: int = 1000, read_p95_ms: float = 50.0) -> ActionResult:
    """Time point reads of sampled keys (read-only); compare p95 with the alert threshold (50 ms)."""
    data_dir = context.require_data_dir()
    with open_engine(data_dir, mode="ro") as engine:
        keys = []
        for key, _ in engine.scan():
            keys.append(key)
            if len(keys) >= int(reads):
                break
        timings = []
        clock = time.monotonic()
        for key in keys:
            start = time.perf_counter()
            engine.get(key)
            timings.append((time.perf_counter() - start) * 1000)
        elapsed = time.monotonic() - clock
    if not timings:
        return ActionResult(True, "no keys to read: benchmark skipped", {"reads": 0})
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    data = {
        "reads": len(timings),
        "p50_ms": round(statistics.median(timings), 4),
        "p95_ms": round(p95, 4),
        "reads_per_second": round(len(timings) / elapsed, 1) if elapsed else None,
    }
    return ActionResult(
        p95 <= float(read_p95_ms),
        f"{len(timings)} reads: p50 {data['p50_ms']} ms, p95 {data['p95_ms']} ms (threshold {read_p95_ms} ms)",
        data,
    )


@action("report.validation", writes=True)
def validation_report(context: ActionContext) -> ActionResult:
    """Write the recovery validation report of this run (the Orbit guide's report) into the run folder."""
    data_dir = context.require_data_dir()
    report = context.run_dir / "recovery-validation-report.txt"
    context.run_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "Recovery Validation Report",
        f"Generated: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"Data dir: {data_dir}",
        f"Run: {context.run_id} ({context.playbook})",
        "",
    ]
    for step_id, outcome in context.history.items():
        lines.append(f"{step_id}: {'PASSED' if outcome.get('ok') else 'FAILED'} - {outcome.get('summary', '')}")
    from engines.fsutil import atomic_write_text

    atomic_write_text(report, "\n".join(lines) + "\n")
    size = report.stat().st_size
    return ActionResult(
        True,
        f"validation report written to {report} ({human_bytes(size)})",
        {"path": str(report)},
        touched=[str(report)],
    )
