"""``drconsole triage``: the decision tree walked with live evidence, from the command line.

    drconsole triage (--node NAME | --data-dir D) [--repo R] [--override QUESTION=yes|no]... [--json]

Exit 0 when no fault is found, 1 when one is or a question cannot be answered from here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from console.cli.common import absolute_path, add_command
from console.cli.targets import add_target, config_and_node, fleet_snapshot
from console.output import EXIT_OK, EXIT_PROBLEM, Output, output_for

__all__ = ["register", "run_triage", "triage_lines"]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``triage`` to ``subparsers`` (``common``: the main parser's shared options)."""
    triage = add_command(
        subparsers,
        "triage",
        "walk the decision tree with live evidence",
        run_triage,
        common,
        description="walk the decision tree with live evidence; exit 0 when no fault is found, "
        "1 when one is, or when a question cannot be answered from here (unknown)",
    )
    add_target(triage)
    triage.add_argument(
        "--repo",
        type=absolute_path,
        metavar="R",
        help="backup repository, for the 'recent backup?' question (default: the node's)",
    )
    triage.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="QUESTION=yes|no",
        help="the responder's answer to a question (its id in tree.toml); recorded",
    )
    triage.add_argument("--read-only", action="store_true", help="record nothing (no incident, no audit entry)")
    triage.add_argument(
        "--log-file",
        type=absolute_path,
        metavar="F",
        help="the node's log (node serve --log-file), for how its process ended (default: the node's log_file)",
    )


def _overrides(pairs: list[str]) -> dict[str, bool]:
    from engines.errors import InvalidArgumentError

    found: dict[str, bool] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        word = value.strip().lower()
        if not sep or word not in ("yes", "no", "y", "n", "true", "false"):
            raise InvalidArgumentError(
                f"--override {pair!r} is not QUESTION=yes|no",
                hint="QUESTION is the node id in tree.toml, e.g. --override can-start=no",
            )
        found[name.strip()] = word in ("yes", "y", "true")
    return found


def run_triage(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.triage import record_triage, triage

    out = output_for(args, output)
    overrides = _overrides(args.override)
    config, spec = config_and_node(args)
    snapshot = None
    data_dir = args.data_dir
    repo = args.repo
    options: dict[str, Any] = {}
    if spec is not None:
        data_dir = Path(spec.data_dir).absolute() if spec.data_dir is not None else None
        repo = repo or (Path(spec.backup_repo) if spec.backup_repo is not None else None)
        snapshot = fleet_snapshot(config)
        options = {"specs": config.nodes, "thresholds": config.thresholds}
    if data_dir is not None and not data_dir.exists() and spec is None:
        from engines.errors import NotFoundError

        if not data_dir.parent.exists():
            raise NotFoundError(f"{data_dir} does not exist, nor does its parent", hint="check the --data-dir path")
    result = triage(
        data_dir=data_dir,
        snapshot=snapshot,
        node=spec.name if spec is not None else None,
        repo=repo,
        overrides=overrides,
        log_file=args.log_file,
        **options,
    )
    if not args.read_only:
        record_triage(result)
    target = f"--node {spec.name}" if spec is not None else f"--data-dir {data_dir}"
    run_target = f"--node {result.run_on}" if spec is not None and result.run_on else target
    out.result(result.to_json(), "\n".join(triage_lines(result, target, run_target)))
    return EXIT_OK if result.healthy else EXIT_PROBLEM


def triage_lines(result: Any, target: str, run_target: str) -> list[str]:
    """The walk as the CLI prints it: each question, its answer and evidence (and log lines), then the outcome."""
    from playbooks.triage import answer_word

    lines = []
    for entry in result.path:
        mark = " (override)" if entry.overridden else ""
        about = f" [{entry.subject}]" if entry.subject else ""
        lines.append(f"{entry.question} {answer_word(entry.answer).upper()}{mark}{about}  [{entry.node}]")
        lines.append(f"    {entry.evidence}")
        lines += [f"    | {line}" for line in entry.lines]
    lines.append("")
    if result.unknown is not None:
        lines.append(f"unknown: {result.unknown.question}")
        lines.append(f"    {result.unknown.evidence}")
        lines.append(
            f"answer it from what you know: drconsole triage {target} --override {result.unknown.node}=yes (or =no)"
        )
    elif result.fault is not None:
        where = f" on {result.run_on}" if result.run_on else ""
        lines.append(f"severity {result.severity} ({result.fault}{where}): {result.summary}")
        for playbook in result.recommended:
            why = f" (not available yet: {result.pending[playbook]})" if playbook in result.pending else ""
            lines.append(f"  recommended: {playbook}{why}")
        runnable = [playbook for playbook in result.recommended if playbook not in result.pending]
        if runnable:
            lines.append(f"next: drconsole playbook run {runnable[0]} {run_target} --dry-run")
    else:
        lines.append(result.summary or "no fault found")
    if result.incident:
        lines.append(f"incident {result.incident}")
    return lines
