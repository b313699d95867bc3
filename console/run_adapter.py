"""``PlaybookLauncher``: a ``RunLauncher`` backed by the playbooks' ``Runner`` on local data dirs.

The runner belongs to ``playbooks`` (plan, journal, audit, safety copy, the registry's read-only
gate); this module only translates. The runner runs on a worker thread; its events
(``playbooks.events.RunEvent``) become the Run screen's events, and its ``confirm`` callback
waits for the responder's answer in the screen's dialog (the node name typed). Cancelling
declines a step that waits for confirmation and makes every later action refuse through the
runner's own refusal path, so the run stops at the next step boundary (a step already running
finishes). A read-only launcher passes ``read_only`` to the runner: its gate refuses every
writing action.

Nodes without a local data dir go to the ``fallback`` launcher (the simulation).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from console.run_view import (
    LogLine,
    NeedsConfirmation,
    ResumableRun,
    RunEvent,
    RunFinished,
    RunLauncher,
    RunStarted,
    RunSession,
    StepFinished,
    StepInfo,
    StepProgress,
    StepStarted,
)
from console.triage_view import Recommendation

__all__ = ["PlaybookLauncher", "PlaybookRun"]

# The runner's step statuses -> the Run screen's.
_STATUS = {"succeeded": "succeeded", "skipped": "skipped", "failed": "failed", "problem": "failed",
           "refused": "failed", "planned": "pending"}


def _registry(cancelled: threading.Event) -> Any:
    """The action registry, whose ``invoke`` refuses once the run is cancelled (the runner stops on it)."""
    from engines.errors import SafetyRefusal
    from playbooks.actions import REGISTRY, Registry

    class CancellableRegistry(Registry):
        def invoke(self, name: str, context: Any, args: dict[str, Any]) -> Any:
            if cancelled.is_set():
                raise SafetyRefusal("the run was cancelled by the responder", hint="start it again, or resume it")
            return super().invoke(name, context, args)

    registry = CancellableRegistry()
    for entry in REGISTRY:
        registry.register(entry)
    return registry


class PlaybookRun:
    """One run of the playbooks' ``Runner`` (``resume_id`` set: a resume of that run)."""

    simulated = False

    def __init__(self, recommendation: Recommendation, node: str, data_dir: Path, steps: Sequence[StepInfo], *,
                 read_only: bool = False, state: Any | None = None, library: Any | None = None,
                 param_defaults: Mapping[str, Any] | None = None, resume_id: str | None = None,
                 ready_url: str | None = None) -> None:
        self.recommendation = recommendation
        self.playbook_id = recommendation.playbook_id
        self.node = node
        self.data_dir = Path(data_dir)
        self.run_id = resume_id or ""
        self.read_only = read_only
        self.state = state
        self.library = library
        self.param_defaults = dict(param_defaults or {})
        self.resume_id = resume_id
        self.ready_url = ready_url  # a node serves this data dir: its incident resolves when /ready answers
        self.result: Any | None = None
        self._steps = tuple(steps)
        self._cancelled = threading.Event()
        self._decisions: dict[str, concurrent.futures.Future[bool]] = {}
        self._lock = threading.Lock()

    def steps(self) -> Sequence[StepInfo]:
        return self._steps

    # ------------------------------------------------------------------ the responder's decisions
    def confirm(self, step_id: str, typed: str) -> bool:
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
        self._cancelled.set()
        with self._lock:
            decisions = list(self._decisions.values())
        for decision in decisions:
            if not decision.done():
                decision.set_result(False)

    # ------------------------------------------------------------------ the runner's side (its thread)
    def _ask(self, planned: Any, target: str) -> bool:
        """The runner's ``confirm`` callback: waits for the dialog (the future exists since the event)."""
        with self._lock:
            decision = self._decisions.setdefault(planned.id, concurrent.futures.Future())
        if self._cancelled.is_set():
            return False
        return bool(decision.result())

    def _translate(self, event: Any) -> list[RunEvent]:
        kind = event.kind
        if kind == "run_started":
            self.run_id = event.run_id
            return [RunStarted(event.run_id, event.playbook, self.node, self._steps),
                    LogLine(event.message or f"{event.playbook} started")]
        if kind == "step_started":
            return [StepStarted(event.step_id or "")]
        if kind == "progress":
            total = int(event.total or 0)
            done = int(event.done or 0)
            in_bytes = event.unit == "bytes"
            return [StepProgress(event.step_id or "", done, total, done if in_bytes else None,
                                 total if in_bytes else None, event.eta_seconds)]
        if kind == "log":
            level = event.level if event.level in ("info", "warning", "error") else "info"
            prefix = f"{event.step_id}: " if event.step_id else ""
            return [LogLine(prefix + event.message, level)]
        if kind == "needs_confirmation":
            with self._lock:
                self._decisions.setdefault(event.step_id or "", concurrent.futures.Future())
            step = next((step for step in self._steps if step.id == event.step_id), None)
            return [NeedsConfirmation(event.step_id or "", self.node, step.title if step else event.message)]
        if kind == "step_finished":
            status = _STATUS.get(event.status or "", "failed")
            if self._cancelled.is_set() and event.status == "refused":
                status = "cancelled"
            return [StepFinished(event.step_id or "", status, event.message)]  # type: ignore[arg-type]
        return []  # run_finished: reported from the run's result (after the runner returns)

    def _finished(self, result: Any | None, error: BaseException | None, seen: set[str]) -> list[RunEvent]:
        if error is not None:
            return [LogLine(f"the run stopped: {error}", "error"), RunFinished("failed", str(error))]
        assert result is not None
        self.result = result
        rest = [StepFinished(step.id, "cancelled") for step in self._steps
                if step.id not in seen] if result.status != "succeeded" else []
        if self._cancelled.is_set() and result.status != "succeeded":
            return [*rest, RunFinished("cancelled", "cancelled by the responder")]
        status = result.status if result.status in ("succeeded", "failed", "refused") else "failed"
        detail = result.message or ("every step succeeded" if status == "succeeded" else "")
        if result.partial:
            detail = (detail + "; " if detail else "") + "partially: a step failed and the run went on"
        return [*rest, RunFinished(status, detail)]  # type: ignore[arg-type]

    def _run(self, emit: Callable[[Any], None]) -> Any:
        from playbooks.runner import Runner, RunOptions

        runner = Runner(self.library, state=self.state, registry=_registry(self._cancelled), listeners=[emit])
        options = RunOptions(read_only=self.read_only, node=self.node, confirm=self._ask,
                             param_defaults=self.param_defaults, ready_url=self.ready_url)
        if self.resume_id is not None:
            return runner.resume(self.resume_id, options)
        return runner.run(self.playbook_id, self.data_dir, options)

    # ------------------------------------------------------------------ the screen's side
    async def events(self) -> AsyncIterator[RunEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def emit(event: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ("event", event))

        def work() -> None:
            try:
                result = self._run(emit)
            except BaseException as exc:  # noqa: BLE001 - reported as the run's end, not raised in the UI
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
            else:
                loop.call_soon_threadsafe(queue.put_nowait, ("result", result))

        thread = threading.Thread(target=work, name=f"playbook-run-{self.playbook_id}", daemon=True)
        thread.start()
        seen: set[str] = set()
        started = False
        while True:
            what, payload = await queue.get()
            if what == "event":
                for event in self._translate(payload):
                    if isinstance(event, RunStarted):
                        started = True
                    if isinstance(event, StepFinished):
                        seen.add(event.step_id)
                    yield event
                continue
            if not started:
                yield RunStarted(self.run_id or "not-started", self.playbook_id, self.node, self._steps)
            for event in self._finished(payload if what == "result" else None,
                                        payload if what == "error" else None, seen):
                yield event
            return


class PlaybookLauncher:
    """Starts ``PlaybookRun``s for nodes with a local data dir; other nodes go to ``fallback``."""

    simulated = False

    def __init__(self, data_dirs: Mapping[str, Path], *, fallback: RunLauncher | None = None, read_only: bool = False,
                 state: Any | None = None, library: Any | None = None,
                 param_defaults: Mapping[str, Mapping[str, Any]] | None = None,
                 ready_urls: Mapping[str, str] | None = None) -> None:
        self.data_dirs = {name: Path(path).absolute() for name, path in data_dirs.items()}
        self.fallback = fallback
        self.read_only = read_only
        self.state = state
        self._library = library
        self.param_defaults = {name: dict(values) for name, values in (param_defaults or {}).items()}
        self.ready_urls = dict(ready_urls or {})
        self.runs: list[RunSession] = []

    @property
    def library(self) -> Any:
        if self._library is None:
            from playbooks.loader import Library

            self._library = Library.load()
        return self._library

    def _data_dir(self, node: str) -> Path | None:
        return self.data_dirs.get(node)

    def plan(self, recommendation: Recommendation, node: str) -> Sequence[StepInfo]:
        """The runner's dry run (changes nothing): the steps, the automatic safety copy included."""
        data_dir = self._data_dir(node)
        if data_dir is None:
            return self.fallback.plan(recommendation, node) if self.fallback is not None else ()
        from engines.errors import EngineError
        from playbooks.runner import Runner, RunOptions

        try:
            result = Runner(self.library, state=self.state).run(
                recommendation.playbook_id, data_dir,
                RunOptions(dry_run=True, node=node, param_defaults=self.param_defaults.get(node, {})))
        except EngineError:
            return ()
        return tuple(StepInfo(step.id, step.summary or step.id, step.action, step.destructive)
                     for step in result.steps)

    def start(self, recommendation: Recommendation, node: str) -> RunSession:
        data_dir = self._data_dir(node)
        if data_dir is None:
            if self.fallback is None:
                raise LookupError(f"node {node} has no local data_dir: the playbooks work on local files")
            return self.fallback.start(recommendation, node)
        session = PlaybookRun(recommendation, node, data_dir, self.plan(recommendation, node),
                              read_only=self.read_only, state=self.state, library=self.library,
                              param_defaults=self.param_defaults.get(node, {}), ready_url=self.ready_urls.get(node))
        self.runs.append(session)
        return session

    def _journal_state(self) -> Any:
        from playbooks.state import StateDir

        return self.state or StateDir()

    def resumable(self) -> Sequence[ResumableRun]:
        """Interrupted runs (in the journal) on the nodes this launcher knows, oldest first."""
        from playbooks.journal import read_journal

        state = self._journal_state()
        by_dir = {str(path): name for name, path in self.data_dirs.items()}
        runs: list[ResumableRun] = []
        if state.runs.is_dir():
            for path in sorted(state.runs.glob("*.jsonl")):
                try:
                    journal = read_journal(path)
                except Exception:  # noqa: BLE001 - a damaged journal is not resumable from here
                    continue
                if journal.status is not None:  # None: the run was cut off
                    continue
                header = journal.header
                node = header.get("node") or by_dir.get(str(header.get("data_dir")))
                if node not in self.data_dirs:
                    continue
                runs.append(ResumableRun(header["run_id"], header["playbook"], node, journal.interrupted_step or ""))
        fallback = list(self.fallback.resumable()) if self.fallback is not None else []
        return [*fallback, *runs]

    def resume(self, run_id: str) -> RunSession:
        for run in self.resumable():
            if run.run_id != run_id:
                continue
            if run.node not in self.data_dirs and self.fallback is not None:
                return self.fallback.resume(run_id)
            from playbooks.journal import read_journal

            header = read_journal(self._journal_state().journal(run_id)).header
            steps = tuple(StepInfo(row["id"], row["step"].get("title") or row["id"], row["step"].get("action") or "",
                                   bool(row["step"].get("destructive"))) for row in header.get("plan", []))
            recommendation = Recommendation(run.playbook_id, header.get("title", run.playbook_id),
                                            header.get("severity", "P1"))
            session = PlaybookRun(recommendation, run.node, self.data_dirs[run.node], steps,
                                  read_only=self.read_only, state=self.state, library=self.library,
                                  resume_id=run_id, ready_url=self.ready_urls.get(run.node))
            self.runs.append(session)
            return session
        raise LookupError(f"no interrupted run {run_id!r}")
