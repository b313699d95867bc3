"""``drconsole fault|drill``: real faults and measured DR drills from the command line.

    drconsole fault inject KIND --data-dir D [--seed N] [--repo R] [--pid P] [--megabytes MB] [--json]
    drconsole fault list [--json]
    drconsole drill list [--json]
    drconsole drill run SCENARIO [--engine E] [--seed N] [--keep] [--writes N | --size 100MB] [--json]
    drconsole drill all [--engine E] [--report FILE.md] [--writes N | --size 100MB] [--json]

``register(subparsers, common)`` adds the commands; each leaf parser sets ``func`` to its handler,
``handler(args, output=None) -> int``. Only the standard library and the CLI's output helpers are
imported at load time; the drill machinery is imported by the handler that runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from console.cli.common import BACKENDS, CommandGroup, absolute_path, positive_int, whole_number
from console.output import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Output, output_for

__all__ = ["register", "run_fault_inject", "run_fault_list", "run_drill_list", "run_drill_run", "run_drill_all"]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``fault`` and ``drill`` to ``subparsers``."""

    def group(name: str, help_text: str) -> CommandGroup:
        return CommandGroup(subparsers, name, help_text, common, description=help_text, json_on_group=True)

    fault = group("fault", "inject real faults into a data dir (for drills; destructive)")
    inject = fault.add(
        "inject", "inject one fault; the report says what was changed (file, offset, bytes)", run_fault_inject
    )
    inject.add_argument("kind", metavar="KIND", help="the fault (see `drconsole fault list`)")
    inject.add_argument(
        "--data-dir", required=True, type=absolute_path, metavar="D", help="the engine's data directory"
    )
    inject.add_argument(
        "--seed", type=whole_number, default=0, help="seed of the random choices (same seed, same bytes)"
    )
    inject.add_argument("--repo", type=absolute_path, metavar="R", help="backup repository (backup-corrupt)")
    inject.add_argument(
        "--pid", type=positive_int, help="process to signal (process-kill/-hang; default: the lock holder)"
    )
    inject.add_argument(
        "--megabytes",
        type=positive_int,
        default=1024,
        metavar="MB",
        help="memory-pressure: MiB the hog allocates and touches (default 1024)",
    )
    fault.add("list", "the fault kinds", run_fault_list)

    drill = group("drill", "DR drills: sandbox fleet, fault, autopilot, measured RTO/RPO")
    drill.add("list", "the drill scenarios, their engines and targets", run_drill_list)
    run = drill.add(
        "run", "run one scenario in a sandbox and measure RTO/RPO (exit 1 when a target is missed)", run_drill_run
    )
    run.add_argument("scenario", metavar="SCENARIO")
    run.add_argument("--engine", choices=BACKENDS, default=None, help="backend (default: the scenario's first)")
    run.add_argument("--seed", type=whole_number, default=1)
    run.add_argument("--keep", action="store_true", help="keep the sandbox (its path is printed)")
    run.add_argument(
        "--console",
        action="store_true",
        help="respond yourself: the console opens on the broken sandbox with the drill clock running "
        "(console.tui.drill_mode); the report goes to --drill-report or the state dir",
    )
    run.add_argument(
        "--drill-report", type=absolute_path, metavar="FILE.md", help="with --console: where the drill report goes"
    )
    _size_options(run)
    every = drill.add("all", "every scenario on every engine it applies to; a recovery-metrics table", run_drill_all)
    every.add_argument("--engine", choices=BACKENDS, default=None, help="only this backend")
    every.add_argument("--report", type=absolute_path, metavar="FILE.md", help="write the recovery-metrics table here")
    every.add_argument("--seed", type=whole_number, default=1)
    _size_options(every)


def _size_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--writes",
        type=positive_int,
        default=500,
        metavar="N",
        help="acknowledged writes of the load (60%% before the backup, 40%% after; default 500)",
    )
    parser.add_argument(
        "--value-size", type=positive_int, default=128, metavar="BYTES", help="bytes per value (default 128)"
    )
    parser.add_argument(
        "--data-mb",
        "--size",
        dest="data_mb",
        type=_megabytes,
        default=None,
        metavar="N|100MB",
        help="load N MiB of 4 KiB random values instead of --writes (e.g. 100MB, 512MB)",
    )


def _megabytes(text: str) -> float:
    """``100``, ``100MB``, ``512M``, ``1GB`` -> MiB; argparse turns a ValueError into exit 2."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1024.0 if cleaned.endswith("G") else 1.0
    number = float(cleaned.rstrip("MG")) * factor
    if not 0 < number <= 2**20:  # inf and nan too; a drill's sandbox of a TiB is a typo
        raise ValueError(text)
    return number


def _sizes(args: argparse.Namespace) -> dict[str, Any]:
    writes = max(10, int(getattr(args, "writes", 500)))
    before = writes * 3 // 5
    return {
        "writes_before_backup": before,
        "writes_after_backup": writes - before,
        "value_size": max(2, int(getattr(args, "value_size", 128))),
        "data_mb": getattr(args, "data_mb", None),
    }


def _progress(out: Output) -> Any:
    if out.json_mode:
        return None

    def log(text: str) -> None:
        sys.stderr.write(f"    {text}\n")
        sys.stderr.flush()

    return log


# ------------------------------------------------------------------------------------------- fault
def run_fault_list(args: argparse.Namespace, output: Output | None = None) -> int:
    from faults import FAULTS

    out = output_for(args, output)
    rows = [{"kind": kind, "description": description} for kind, (_f, description) in FAULTS.items()]
    out.result({"faults": rows}, "\n".join(f"{row['kind']:<22} {row['description']}" for row in rows))
    return EXIT_OK


def run_fault_inject(args: argparse.Namespace, output: Output | None = None) -> int:
    from faults import FAULTS, FaultError, inject

    out = output_for(args, output)
    if args.kind not in FAULTS:
        return out.error(
            f"fault inject: no fault {args.kind!r}",
            hint=f"known: {', '.join(FAULTS)}",
            exit_code=EXIT_USAGE,
            kind="UsageError",
        )
    if not args.data_dir.is_dir():
        what = "is not a directory" if args.data_dir.exists() else "does not exist"
        return out.error(
            f"fault inject: {args.data_dir} {what}", hint="check the --data-dir path", exit_code=3, kind="NotFoundError"
        )
    try:
        report = inject(
            args.kind, args.data_dir, seed=args.seed, repo=args.repo, pid=args.pid, megabytes=args.megabytes
        )
    except FaultError as exc:
        return out.error(
            f"fault inject {args.kind}: {exc}", hint="nothing was changed", exit_code=EXIT_USAGE, kind="FaultError"
        )
    lines = [f"injected {report.kind} into {report.data_dir}: {report.summary}"]
    for change in report.changes:
        where = f" at offset {change.offset} ({change.length} bytes)" if change.offset is not None else ""
        flip = f" {change.before[:32]} -> {change.after[:32]}" if change.before and change.after else ""
        lines.append(f"  {change.action} {change.file}{where}{flip}{' ' + change.detail if change.detail else ''}")
    out.result(report.to_json(), "\n".join(lines))
    return EXIT_OK


# ------------------------------------------------------------------------------------------- drill
def run_drill_list(args: argparse.Namespace, output: Output | None = None) -> int:
    from drills import SCENARIOS

    out = output_for(args, output)
    rows = [scenario.to_json() for scenario in SCENARIOS.values()]
    text = [f"{'SCENARIO':<22} {'ENGINES':<18} {'RTO':>6} {'RPO':>6}  DESCRIPTION"]
    text += [
        f"{row['scenario']:<22} {','.join(row['engines']):<18} {row['target_rto_seconds']:>5g}s "
        f"{row['target_rpo_seconds']:>5g}s  {row['description']}"
        for row in rows
    ]
    out.result({"drills": rows}, "\n".join(text))
    return EXIT_OK


def _result_line(result: Any) -> str:
    rto = f"{result.rto_seconds:.2f} s" if result.rto_seconds is not None else "not recovered"
    verdict = "PASS" if result.passed else "FAIL"
    used = ", ".join(f"{run['playbook']}:{run['status']}" for run in result.playbooks) or "none"
    line = (
        f"{verdict} {result.scenario} on {result.engine}: RTO {rto} (target {result.target_rto_seconds:g} s), "
        f"RPO {result.lost_writes}/{result.acked_writes} acknowledged writes lost, {result.rpo_seconds:g} s "
        f"(target {result.target_rpo_seconds:g} s); playbooks: {used}"
    )
    if result.error:
        line += f"\n  drill error: {result.error}"
    elif not result.recovered:
        line += f"\n  not healthy: {result.health}"
    elif "; needs an operator: " in result.health:  # serving again; a human must finish (a full disk's foreign files)
        line += "\n  needs an operator: " + result.health.split("; needs an operator: ", 1)[1]
    return line


def run_drill_run(args: argparse.Namespace, output: Output | None = None) -> int:
    from drills import SCENARIOS, run_drill

    out = output_for(args, output)
    scenario = SCENARIOS.get(args.scenario)
    if scenario is None:
        return out.error(
            f"drill run: no scenario {args.scenario!r}",
            hint="see `drconsole drill list`",
            exit_code=EXIT_USAGE,
            kind="UsageError",
        )
    engine = args.engine or scenario.engines[0]
    if engine not in scenario.engines:
        return out.error(
            f"drill run: {args.scenario} does not apply to {engine}",
            hint=f"it applies to {', '.join(scenario.engines)}",
            exit_code=EXIT_USAGE,
            kind="UsageError",
        )
    if getattr(args, "console", False):  # a human responds in the console (console.tui.drill_mode)
        from console.tui.drill_mode import run_drill_console

        return run_drill_console(args, engine, out)
    result = run_drill(args.scenario, engine, seed=args.seed, keep=args.keep, log=_progress(out), **_sizes(args))
    text = _result_line(result) + (f"\n  sandbox kept: {result.sandbox}" if result.sandbox else "")
    out.result(result.contract_json(), text)
    return EXIT_OK if result.passed else EXIT_PROBLEM


def run_drill_all(args: argparse.Namespace, output: Output | None = None) -> int:
    from drills import report_markdown, run_drill, scenario_pairs
    from engines.fsutil import atomic_write_text

    out = output_for(args, output)
    results = []
    for name, engine in scenario_pairs(args.engine):
        if not out.json_mode:
            sys.stderr.write(f"drill {name} on {engine} ...\n")
        results.append(run_drill(name, engine, seed=args.seed, **_sizes(args)))
    table = report_markdown(results)
    if args.report is not None:
        atomic_write_text(args.report, table)
    passed = sum(1 for result in results if result.passed)
    payload = {
        "drills": [result.contract_json() for result in results],
        "passed": passed,
        "total": len(results),
        "report": str(args.report) if args.report else None,
    }
    out.result(payload, table + (f"\nwritten to {args.report}" if args.report else ""))
    return EXIT_OK if passed == len(results) else EXIT_PROBLEM
