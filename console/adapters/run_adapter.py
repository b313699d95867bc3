"""The one launcher of the Run screen: every playbook run, start or resume, goes through a runner.

    launcher = RunLauncher(config.nodes, read_only=False, param_defaults={"orders": {"repo": "/backups"}})
    plan = launcher.plan("data-recovery", "orders")       # the dry run (changes nothing)
    session = launcher.start("data-recovery", "orders")   # a RunSession; iterate session.events()
    session = launcher.resume("orders")                   # the newest interrupted or failed run of orders

The runner comes from ``runner_for``: the playbooks' ``Runner`` on a data dir of this host that no
process serves; a node that has a url is acted on through its own agent once that path exists
(``playbooks.agent``). A node with neither cannot be acted on, and the launcher says why
(``CannotAct``) instead of pretending. The runner runs on a worker thread; its events
(``playbooks.events.RunEvent``) are relayed as they are, and its ``confirm`` callback waits for
the responder to type the node name in the screen's dialog. When the runner returns, ``RunEnded``
carries its ``RunResult`` and whether the node was verified ready.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.adapters.run_view import VERIFY_ACTIONS
from fleet import NodeSpec
from playbooks.events import Listener, RunEvent

if TYPE_CHECKING:  # imported when a run is planned or started: the runner pulls in every engine
    from playbooks.runner import RunResult, StepOutcome

__all__ = ["CannotAct", "RunEnded", "RunLauncher", "RunSession", "runner_for", "verification"]

RESUMABLE = ("interrupted", "failed", "refused")  # ``playbook runs`` statuses a resume picks up


class CannotAct(Exception):
    """The console cannot run this on the node; ``message`` says why and ``hint`` what would let it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f" ({self.hint})" if self.hint else "")


@dataclass(frozen=True)
class RunEnded:
    """The runner returned (``result``) or raised (``error``); ``verified``: what checked the node ready."""

    result: RunResult | None
    error: str = ""
    verified: str | None = None
    verified_at: float | None = None  # when the node said it was ready (a remote run)
    unverified: str = ""


def runner_for(spec: NodeSpec, *, library: Any, state: Any, listeners: list[Listener]) -> Any:
    """The runner that acts on ``spec`` (``playbooks.agent.select.runner_for``): its agent, or local files.

    A node with a url: ``RemoteRunner`` (the node drains, runs, reopens and answers /ready itself).
    A node with only a data_dir: ``LocalRunner``, the playbooks' ``Runner`` on that data dir.
    """
    from engines.errors import DrconsoleError
    from playbooks.agent.select import runner_for as choose

    try:
        return choose(spec, listeners=listeners, state=state, library=library)
    except DrconsoleError as exc:
        raise CannotAct(exc.message, exc.hint or "") from exc


def verification(result: RunResult) -> tuple[str | None, float | None, str]:
    """(what verified the node ready or None, when (epoch seconds) if the node said, why it is not verified).

    The runner decides: ``result.verified`` is its evidence that the target serves again (a local
    run: its checks passed and the data dir opens; through the agent: the node reopened its engine
    and answered /ready at ``verified_ready_at``). A run that kept no incident (a routine playbook)
    is verified by its last verification step having succeeded.
    """
    if result.status != "succeeded":
        return None, None, f"the run {result.status}"
    ready_at = getattr(result, "verified_ready_at", None)
    evidence = getattr(result, "verified", None)
    if evidence:
        return str(evidence), ready_at, ""
    if ready_at is not None and not result.partial:
        return f"the node answered /ready after run {result.run_id}", ready_at, ""
    if result.partial:
        return None, None, "a step failed and the run went on, so not all of its checks passed"
    if getattr(result, "incident", None) is not None or getattr(result, "node_url", None):
        return None, None, "the node was not seen ready after the run (the log says why)"
    checks = [step for step in result.steps if step.action in VERIFY_ACTIONS]
    if not checks:
        return None, None, "the playbook has no step that checks the node; run post-recovery-validation to verify it"
    last = checks[-1]
    if last.status != "succeeded":
        return None, None, f"its last check, {last.id}, {last.status}: {last.summary}"
    passed = [step for step in checks if step.status == "succeeded"][-2:]
    return "; ".join(f"{step.id}: {step.summary}" for step in passed), None, ""


class RunSession:
    """One run (``resume_id``: a resume of that run) on one node, through the launcher's runner."""

    def __init__(
        self,
        launcher: RunLauncher,
        node: str,
        playbook_id: str,
        *,
        resume_id: str | None = None,
        steps: Sequence[StepOutcome] = (),
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        self.launcher = launcher
        self.node = node
        self.playbook_id = playbook_id
        self.resume_id = resume_id
        self.run_id = resume_id or ""
        self.steps = list(steps)  # a resume's rows, from its journal (summary: the step's title)
        self.reasons = dict(reasons or {})  # what the journal says of the steps that finished
        self._cancelled = threading.Event()
        self._runner: Any | None = None
        self._decisions: dict[str, concurrent.futures.Future[bool]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the responder's decisions
    def confirm(self, step_id: str, typed: str) -> bool:
        """Let a waiting destructive step run; refused (False) unless ``typed`` is the node name."""
        if typed.strip() != self.node or self._cancelled.is_set():
            return False
        with self._lock:
            decision = self._decisions.get(step_id)
        if decision is None or decision.done():
            return False
        decision.set_result(True)
        return True

    def decline(self, step_id: str) -> None:
        with self._lock:
            decision = self._decisions.get(step_id)
        if decision is not None and not decision.done():
            decision.set_result(False)

    def cancel(self) -> None:
        """Stop at the next step boundary (a step already running finishes); a waiting step is declined."""
        self._cancelled.set()
        with self._lock:
            decisions = list(self._decisions.values())
            runner = self._runner
        for decision in decisions:
            if not decision.done():
                decision.set_result(False)
        if runner is not None:  # through an agent this is a request: never on the UI thread
            threading.Thread(target=self._cancel_runner, args=(runner,), name="run-cancel", daemon=True).start()

    @staticmethod
    def _cancel_runner(runner: Any) -> None:
        try:
            runner.cancel()
        except Exception:  # noqa: BLE001 - an unreachable node: the run stops when the node hears, or not at all
            return

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # ------------------------------------------------------------------ the runner's side (its thread)
    def _confirm(self, planned: Any, target: str) -> bool:
        with self._lock:
            decision = self._decisions.setdefault(planned.id, concurrent.futures.Future())
        if self._cancelled.is_set():
            return False
        return bool(decision.result())

    def _seen(self, event: RunEvent) -> None:
        if event.kind == "needs_confirmation":  # the decision exists before the screen can answer it
            with self._lock:
                self._decisions.setdefault(event.step_id or "", concurrent.futures.Future())
        if event.kind == "run_started":
            self.run_id = event.run_id

    def _run(self, emit: Listener) -> RunResult:
        from playbooks.runner import RunOptions

        def listener(event: RunEvent) -> None:
            self._seen(event)
            emit(event)

        runner = self.launcher.runner(self.node, [listener])
        with self._lock:
            self._runner = runner
        if self._cancelled.is_set():
            runner.cancel()
        options = RunOptions(
            read_only=self.launcher.read_only,
            node=self.node,
            confirm=self._confirm,
            param_defaults=self.launcher.param_defaults.get(self.node, {}),
        )
        if self.resume_id is not None:
            return runner.resume(self.resume_id, options)  # type: ignore[no-any-return]
        return runner.run(self.playbook_id, None, options)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ the screen's side
    async def events(self) -> AsyncIterator[RunEvent | RunEnded]:
        """The runner's events as they come, then one ``RunEnded`` (the run starts when first iterated)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[RunEvent | RunEnded] = asyncio.Queue()

        def emit(event: RunEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def work() -> None:
            try:
                result = self._run(emit)
            except CannotAct as exc:
                ended = RunEnded(None, str(exc))
            except BaseException as exc:  # noqa: BLE001 - reported as the run's end, not raised in the UI
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                hint = getattr(exc, "hint", None)
                ended = RunEnded(None, message + (f" ({hint})" if hint else ""))
            else:
                verified, verified_at, unverified = verification(result)
                ended = RunEnded(result, verified=verified, verified_at=verified_at, unverified=unverified)
            loop.call_soon_threadsafe(queue.put_nowait, ended)

        threading.Thread(target=work, name=f"playbook-run-{self.playbook_id}", daemon=True).start()
        while True:
            item = await queue.get()
            yield item
            if isinstance(item, RunEnded):
                return


class RunLauncher:
    """Starts, plans and resumes runs on the configured nodes; the runner for each from ``runner_for``."""

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        *,
        read_only: bool = False,
        state: Any | None = None,
        library: Any | None = None,
        param_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.nodes = {spec.name: spec for spec in nodes}
        self.read_only = read_only
        self._state = state
        self._library = library
        self.param_defaults = {name: dict(values) for name, values in (param_defaults or {}).items()}
        for spec in nodes:
            if spec.backup_repo is not None:
                self.param_defaults.setdefault(spec.name, {}).setdefault("repo", str(spec.backup_repo))

    @property
    def library(self) -> Any:
        if self._library is None:
            from playbooks.loader import Library

            self._library = Library.load()
        return self._library

    @property
    def state(self) -> Any:
        if self._state is None:
            from playbooks.state import StateDir

            self._state = StateDir()
        return self._state

    def spec(self, node: str) -> NodeSpec:
        spec = self.nodes.get(node)
        if spec is None:
            raise CannotAct(
                f"{node} has no [[node]] in the config (the fleet source lists it), so the console has "
                "neither a url nor a data_dir for it and runs nothing on it",
                hint=f"add a [[node]] for {node} with its url (and token_file), or its data_dir",
            )
        return spec

    def data_dir(self, node: str) -> Path | None:
        spec = self.spec(node)
        return Path(spec.data_dir).absolute() if spec.data_dir is not None else None

    def where(self, node: str) -> str:
        """What a run on ``node`` acts on, in words (the data dir, or the url)."""
        spec = self.nodes.get(node)
        if spec is None:
            return "?"
        data_dir = self.data_dir(node)
        return str(data_dir) if data_dir is not None else (spec.url or "nowhere")

    def runner(self, node: str, listeners: list[Listener]) -> Any:
        """The runner for ``node`` (raises ``CannotAct`` with the reason when there is none)."""
        return runner_for(self.spec(node), library=self.library, state=self.state, listeners=listeners)

    def check(self, node: str) -> str:
        """Why the console cannot act on ``node`` ("" when it can); nothing is started."""
        try:
            self.runner(node, [])
        except CannotAct as exc:
            return str(exc)
        return ""

    def plan(self, playbook_id: str, node: str) -> RunResult:
        """The runner's dry run (changes nothing): every step, what it would touch, the automatic safety copy."""
        from playbooks.runner import RunOptions

        runner = self.runner(node, [])
        return runner.run(
            playbook_id,
            None,  # type: ignore[no-any-return]
            RunOptions(dry_run=True, node=node, param_defaults=self.param_defaults.get(node, {})),
        )

    def start(self, playbook_id: str, node: str) -> RunSession:
        self.runner(node, [])  # refuses now, with the reason, rather than from the worker
        return RunSession(self, node, playbook_id)

    # ------------------------------------------------------------------ resume
    def last_resumable(self, node: str) -> dict[str, Any]:
        """The newest run of ``node`` that was cut off, failed or refused (``playbook runs`` row, plus its journal
        when it is here); ``CannotAct`` says exactly why there is none."""
        from playbooks.journal import list_journals

        runner = self.runner(node, [])
        spec = self.spec(node)
        if spec.url:  # the journal is on the node: its agent lists the runs
            where = f"the journal of {spec.url}"
            rows = [dict(row) for row in runner.runs()]
        else:
            where = f"the journal folder {self.state.runs}"
            data_dir = self.data_dir(node)
            rows = [
                {**journal.summary_json(), "journal": journal}
                for journal in list_journals(self.state.runs)
                if journal.header.get("node") == node
                or (data_dir is not None and journal.header.get("data_dir") == str(data_dir))
            ]
        if not rows:
            raise CannotAct(
                f"no run of {node} in {where}, so there is nothing to resume", hint="start the playbook (s)"
            )
        rows.sort(key=lambda row: float(row.get("started") or 0.0))
        newest = rows[-1]
        if newest.get("status") not in RESUMABLE and not newest.get("live"):
            raise CannotAct(
                f"the last run of {node} ({newest.get('playbook')} {newest.get('run_id')}) "
                f"{newest.get('status')}; there is nothing to resume",
                hint="start a new run (s)",
            )
        return newest

    def resume(self, node: str) -> RunSession:
        """A session that resumes (or, on a node, attaches to) the newest interrupted or failed run of ``node``."""
        from playbooks.plan import plan_from_json
        from playbooks.runner import StepOutcome

        row = self.last_resumable(node)
        journal = row.get("journal")
        rows, reasons = [], {}
        if journal is not None:  # a local run: its rows and what finished, from the journal
            for planned in plan_from_json(journal.header.get("plan", [])):
                record = journal.finished.get(planned.id) or {}
                status = record.get("status", "planned")
                if status not in ("succeeded", "skipped", "problem"):  # it runs again
                    status = "planned"
                else:
                    reasons[planned.id] = str(record.get("summary", ""))
                rows.append(
                    StepOutcome(
                        planned.id,
                        planned.step.action or "",
                        status,
                        summary=planned.step.title or planned.id,
                        destructive=planned.step.destructive,
                    )
                )
        return RunSession(
            self, node, str(row.get("playbook")), resume_id=str(row["run_id"]), steps=rows, reasons=reasons
        )
