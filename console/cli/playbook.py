"""``drconsole playbook``: recovery playbooks from the command line.

    drconsole playbook list [--json]
    drconsole playbook show ID [--json]
    drconsole playbook run ID (--node NAME | --data-dir D) [--param K=V]... [--dry-run] [--yes]
                      [--simulate] [--waive-safety-copy REASON] [--read-only] [--json]
    drconsole playbook resume RUN_ID [--node NAME] [--yes] [--json]
    drconsole playbook runs [--node NAME] [--json]
    drconsole playbook cancel RUN_ID --node NAME [--json]

With ``--node NAME`` and a ``url`` in its [[node]] table, run/resume/runs/cancel act through the
node's agent (``playbooks.agent.runner_for``): the node runs the playbook on its own data dir
and keeps the journal; the events, exit codes and --json are those of a local run.
(``triage`` and ``incident`` are console/cli/triage.py and incident.py; --node/--data-dir, targets.py.)

``register(subparsers, common)`` adds the commands; each leaf parser sets ``func`` to its
handler, ``handler(args, output=None) -> int``. This module imports only the standard library and
the CLI's output helpers at load time, so building the parser stays cheap; the playbook layer is
imported by the handler that runs. Run events are rendered on stderr (symbols and words, a Rich
progress bar on a terminal); stdout carries the result, or exactly one JSON object with --json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.cli.common import CommandGroup
from console.cli.targets import add_target, config_and_node
from console.output import EXIT_OK, Output, output_for

__all__ = [
    "register",
    "run_playbook_list",
    "run_playbook_show",
    "run_playbook_run",
    "run_playbook_resume",
    "run_playbook_runs",
    "run_playbook_cancel",
]

Handler = Callable[..., int]
_SYMBOLS = {"succeeded": "✓", "failed": "✗", "skipped": "-", "refused": "⛔", "problem": "!", "planned": "·"}


# ------------------------------------------------------------------------------------------- parser
def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``playbook`` to ``subparsers``.

    ``common`` is the main parser's shared options (``--config``, ``--json``), accepted after each
    command too; without it each command and action gets its own ``--json``.
    """

    about = "list, show, run and resume recovery playbooks"
    playbook = CommandGroup(subparsers, "playbook", about, common, description=about, json_on_group=True)
    playbook.add("list", "the playbooks of the library", run_playbook_list)
    show = playbook.add("show", "one playbook: parameters and steps", run_playbook_show)
    show.add_argument("id", metavar="ID")
    run = playbook.add("run", "run a playbook against a data dir (destructive steps need --yes)", run_playbook_run)
    run.add_argument("id", metavar="ID")
    add_target(run)
    run.add_argument("--param", action="append", default=[], metavar="K=V", help="a playbook parameter (repeatable)")
    run.add_argument(
        "--dry-run", action="store_true", help="print the plan and what each step would touch; change nothing"
    )
    run.add_argument("--yes", action="store_true", help="confirm the destructive steps")
    run.add_argument(
        "--simulate",
        action="store_true",
        help="run against a sandbox copy of the data dir (the real one is not touched)",
    )
    run.add_argument(
        "--waive-safety-copy",
        metavar="REASON",
        help="skip the safety copy before destructive steps (no space); the waiver is audited",
    )
    run.add_argument("--read-only", action="store_true", help="refuse every step that would change something")
    resume = playbook.add(
        "resume",
        "resume a run that was cut off (kill -9, dropped SSH) at the step it was in; "
        "with --node, follow or resume it on the node's agent",
        run_playbook_resume,
    )
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument("--node", metavar="NAME", help="the node whose agent holds the run's journal")
    resume.add_argument("--yes", action="store_true", help="confirm destructive steps not confirmed before")
    runs = playbook.add(
        "runs", "the runs in the journal folder (with --node: on the node's agent), newest last", run_playbook_runs
    )
    runs.add_argument("--node", metavar="NAME", help="list the runs of this node's agent")
    cancel = playbook.add(
        "cancel", "stop a run on a node's agent at the next step boundary (resumable)", run_playbook_cancel
    )
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--node", required=True, metavar="NAME", help="the node whose agent runs it")


# ------------------------------------------------------------------------------------------- helpers
def _params(pairs: list[str]) -> dict[str, str]:
    from engines.errors import InvalidArgumentError

    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidArgumentError(f"--param {pair!r} is not NAME=VALUE", hint="e.g. --param repo=/backup/orders-a")
        if not value.strip():  # `repo=` would otherwise mean the current directory
            raise InvalidArgumentError(
                f"--param {name.strip()}= has no value", hint="leave the parameter out to take its default"
            )
        found[name.strip()] = value
    return found


def _node_data_dir(spec: Any) -> Path:
    from engines.errors import InvalidArgumentError

    if spec.data_dir is None:
        raise InvalidArgumentError(
            f"node {spec.name} has no data_dir in the config; playbooks work on local files",
            hint="add data_dir to its [[node]] table, or run on the node's host with --data-dir",
        )
    return Path(spec.data_dir).absolute()


class _Renderer:
    """Run events on stderr: a line per step with a symbol and a word, log lines, a progress bar on a TTY."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.progress: Any = None
        self.task: Any = None
        self.last_plain = 0.0

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        kind = event.kind
        if kind == "progress":
            self._progress(event)
            return
        self._stop_progress()
        if kind == "step_started":
            self._line(f"▶ [{event.index}/{event.steps}] {event.step_id}: {event.message}")
        elif kind == "log":
            self._line(f"    {event.message}")
        elif kind == "needs_confirmation":
            self._line(f"? {event.message}")
        elif kind == "step_finished":
            symbol = _SYMBOLS.get(event.status or "", "?")
            took = f" ({event.duration_seconds:.1f} s)" if event.duration_seconds else ""
            self._line(f"{symbol} {event.step_id} {event.status}{took}: {event.message}")
        elif kind == "run_finished":
            self._line(f"{_SYMBOLS.get(event.status or '', '?')} run {event.run_id} {event.status}")

    def _line(self, text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def _progress(self, event: Any) -> None:
        unit = event.unit or "bytes"
        if not self.tty:
            now = time.monotonic()
            if now - self.last_plain >= 2.0 and event.total:
                eta = f", ETA {event.eta_seconds:.0f} s" if event.eta_seconds is not None else ""
                self._line(f"    {event.phase or event.step_id}: {event.done}/{event.total} {unit}{eta}")
                self.last_plain = now
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        if self.progress is None:
            columns: list[Any] = [TextColumn("    {task.description}"), BarColumn()]
            columns.append(DownloadColumn() if unit == "bytes" else TextColumn("{task.completed}/{task.total} " + unit))
            columns.append(TimeRemainingColumn())
            self.progress = Progress(*columns, console=Console(file=sys.stderr), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(event.phase or event.step_id or "", total=event.total or None)
        self.progress.update(self.task, completed=event.done, total=event.total or None)

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _run_text(result: Any) -> str:
    lines = []
    if result.dry_run:
        lines.append(
            f"plan of {result.playbook} on {result.data_dir} ({result.backend or 'no backend yet'}); "
            f"nothing is changed:"
        )
        for number, step in enumerate(result.steps, start=1):
            flag = " [destructive: needs --yes]" if step.destructive else ""
            when = f" (if {step.when})" if step.when else ""
            status = "" if step.status == "planned" else f" [{step.status}]"
            lines.append(f"{number:>2}. {step.id}: {step.summary} <{step.action}>{flag}{when}{status}")
            lines += [f"      {touch}" for touch in step.would_touch]
        return "\n".join(lines)
    for step in result.steps:
        symbol = _SYMBOLS.get(step.status, "?")
        lines.append(f"{symbol} {step.status:<9} {step.id} ({step.duration_seconds:.1f} s): {step.summary}")
    partial = " (partially: some steps failed and were passed over)" if result.partial else ""
    lines.append(f"run {result.run_id}: {result.playbook} {result.status}{partial}")
    if result.lost:
        lines.append("reported as not recovered:")
        lines += [f"  {item}" for item in result.lost]
    if result.sandboxed_from:
        lines.append(f"simulated in {result.data_dir}; {result.sandboxed_from} was not touched")
    if result.message and result.status != "succeeded":
        lines.append(result.message)
    if result.status == "refused":
        lines.append(
            "nothing more was changed; confirm destructive steps with --yes "
            f"(or `drconsole playbook resume {result.run_id} --yes`)"
        )
    if result.status == "failed":
        lines.append(f"the journal says what was done: {result.journal}")
        lines.append(f"after fixing the cause: drconsole playbook resume {result.run_id}")
        if result.escalation:
            lines.append("escalate: " + " -> ".join(result.escalation))
    if result.incident:
        lines.append(f"incident {result.incident}: drconsole incident show {result.incident}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- playbook
def run_playbook_list(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.loader import Library

    out = output_for(args, output)
    library = Library.load()
    rows = [library.playbooks[key].summary_json() for key in sorted(library.playbooks)]
    pending = [{"id": key, "reason": reason} for key, reason in sorted(library.pending().items())]
    text = [f"{'ID':<26} {'SEV':<4} {'RTO':>6}  {'BACKENDS':<17} TITLE"]
    for key in sorted(library.playbooks):
        playbook = library.playbooks[key]
        mark = " (destructive)" if playbook.destructive else ""
        text.append(
            f"{playbook.id:<26} {playbook.severity:<4} {playbook.target_rto_seconds:>5}s  "
            f"{','.join(playbook.backends):<17} {playbook.title}{mark}"
        )
    if pending:
        text.append("")
        text.append("not available yet:")
        text += [f"  {row['id']}: {row['reason']}" for row in pending]
    out.result({"playbooks": rows, "pending": pending}, "\n".join(text))
    return EXIT_OK


def run_playbook_show(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.loader import Library

    out = output_for(args, output)
    library = Library.load()
    playbook = library.get(args.id)
    payload = {
        **playbook.model_dump(mode="json"),
        "destructive": playbook.destructive,
        "source": str(library.sources[playbook.id]),
    }
    lines = [
        f"{playbook.id}: {playbook.title}",
        f"severity {playbook.severity}, target RTO {playbook.target_rto_seconds} s, backends "
        f"{', '.join(playbook.backends)}",
    ]
    if playbook.guide:
        lines.append(f"implements: {playbook.guide}")
    if playbook.summary:
        lines += ["", " ".join(playbook.summary.split())]
    if playbook.params:
        lines += ["", "parameters:"]
        for name, spec in playbook.params.items():
            need = (
                "required" if spec.required else f"default {spec.default!r}" if spec.default is not None else "optional"
            )
            choices = f", one of {', '.join(spec.choices)}" if spec.choices else ""
            lines.append(f"  --param {name}=<{spec.type}> ({need}{choices}) {spec.help}")
    lines += ["", "steps:"]
    for number, step in enumerate(playbook.steps, start=1):
        what = step.action or f"include {step.include}"
        flags = [flag for flag, on in (("destructive", step.destructive), ("diagnostic", step.diagnostic)) if on]
        extra = f" [{', '.join(flags)}]" if flags else ""
        lines.append(f"{number:>2}. {step.id}: {step.title or what} <{what}>{extra}")
        if step.when:
            lines.append(f"      when {step.when}")
        if step.verify:
            lines.append(f"      verified by {step.verify}")
        if step.on_failure != "stop":
            lines.append(f"      on failure: {step.on_failure}")
        if step.note:
            lines.append(f"      note: {step.note}")
    out.result(payload, "\n".join(lines))
    return EXIT_OK


def _finish_run(result: Any, out: Output) -> int:
    out.result(result.to_json(), _run_text(result))
    return int(result.exit_code)


def _runner(spec: Any, data_dir: Path | None, quiet: bool) -> Any:
    """The one choice (``playbooks.agent.runner_for``): the node's agent when it has a url, else local files."""
    from playbooks.agent import runner_for

    if spec is not None and not spec.url:
        _node_data_dir(spec)  # a node with neither: the config's own message
    return runner_for(spec, data_dir=data_dir, listeners=[_Renderer(quiet=quiet)])


def run_playbook_run(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.runner import RunOptions

    out = output_for(args, output)
    params = _params(args.param)
    config, spec = config_and_node(args)
    defaults: dict[str, Any] = {}
    if spec is not None and spec.backup_repo is not None:
        defaults["repo"] = str(spec.backup_repo)
    options = RunOptions(
        params=params,
        param_defaults=defaults,
        assume_yes=args.yes,
        dry_run=args.dry_run,
        read_only=args.read_only,
        sandbox=args.simulate,
        waive_safety_copy=args.waive_safety_copy,
        node=spec.name if spec is not None else None,
        ready_url=spec.url if spec is not None else None,  # a served node: its incident resolves on /ready
        webhook=getattr(getattr(config, "notify", None), "webhook", None),
        escalation=list(getattr(getattr(config, "escalation", None), "path", []) or []) or None,
    )
    runner = _runner(spec, None if spec is not None else args.data_dir, out.json_mode or args.dry_run)
    return _finish_run(_detachable(runner, lambda: runner.run(args.id, None, options), out), out)


def _detachable(runner: Any, call: Callable[[], Any], out: Output) -> Any:
    """``call()``; on a node's agent, Ctrl-C only stops following: the run goes on on the node."""
    if not hasattr(runner, "client"):
        return call()
    try:
        return call()
    except KeyboardInterrupt:
        run_id = getattr(runner, "run_id", None) or "RUN_ID"
        node = getattr(runner, "node", None) or "NAME"
        out.error(
            f"stopped following run {run_id}; it goes on on the node {node}",
            hint=f"follow it again: drconsole playbook resume {run_id} --node {node} "
            f"(or stop it: drconsole playbook cancel {run_id} --node {node})",
            exit_code=130,
            kind="interrupted",
        )
        raise SystemExit(130) from None


def run_playbook_resume(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.runner import RunOptions

    out = output_for(args, output)
    _, spec = config_and_node(args)
    runner = _runner(spec, None, out.json_mode)
    return _finish_run(
        _detachable(runner, lambda: runner.resume(args.run_id, RunOptions(assume_yes=args.yes)), out), out
    )


def run_playbook_cancel(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.errors import InvalidArgumentError

    out = output_for(args, output)
    _, spec = config_and_node(args)
    if not spec.url:
        raise InvalidArgumentError(
            f"node {spec.name} has no url: only a run on a node's agent can be cancelled from here",
            hint="a local run stops with Ctrl-C and resumes from its journal",
        )
    runner = _runner(spec, None, True)
    with runner.client() as client:
        answer = client.cancel(args.run_id)
    text = (
        f"run {args.run_id} on {spec.name}: cancel requested; it stops at the next step boundary "
        f"(resume it with `drconsole playbook resume {args.run_id} --node {spec.name}`)"
        if answer.get("cancelled")
        else f"run {args.run_id} on {spec.name}: {answer.get('reason')}"
    )
    out.result({"run_id": args.run_id, "node": spec.name, **answer}, text)
    return EXIT_OK


def run_playbook_runs(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.journal import list_journals
    from playbooks.state import StateDir

    out = output_for(args, output)
    _, spec = config_and_node(args)
    if spec is not None and spec.url:
        runs = _runner(spec, None, True).runs()
    else:
        runs = [state.summary_json() for state in list_journals(StateDir().runs)]
    text = [
        f"{row['run_id']}  {row['playbook']:<26} {row['status']:<11} {row['data_dir']}"
        + (
            f" (cut off in {row['interrupted_step']})"
            if row["status"] == "interrupted" and row["interrupted_step"]
            else ""
        )
        for row in runs
    ] or ["no runs yet"]
    out.result({"runs": runs}, "\n".join(text))
    return EXIT_OK
