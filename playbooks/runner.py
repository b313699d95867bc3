"""The runner: executes a playbook's steps against one data dir, journaled, audited, resumable.

    runner = Runner(listeners=[print_event])
    result = runner.run("recover-rocksdb", Path("/data/orders-a"), RunOptions(assume_yes=True))
    result = runner.resume(run_id, RunOptions())

A run, in order: the plan is built (includes expanded, parameters checked), destructive steps
are confirmed up front unless a ``confirm`` callback will ask at the step (the TUI), a journal is
opened, and the steps run. Before the first destructive step the runner takes a safety copy
unless one was taken (or waived, which is audited). A step fails when its action raises or
reports a problem, or its ``verify`` action does; ``on_failure`` then stops, retries, continues
or rolls back (the step's ``rollback`` action, else the run's safety copy is put back). Every
writing action passes the registry's gate: refused in read-only mode, appended to the audit log.

Resuming reads the journal: steps that finished are not run again, the step that was cut off runs
again (actions are written to be re-run: a safety copy already taken is found, a restore already
swapped in is seen), then the run goes on.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import DrconsoleError, EngineError, InvalidArgumentError, LockedError, NotFoundError, map_os_error
from engines.marker import detect_backend
from playbooks.accounting import account
from playbooks.actions import REGISTRY, ActionContext, ActionResult, Registry
from playbooks.audit import AuditLog
from playbooks.conditions import parse_condition
from playbooks.errors import ConfirmationRequired, NotApplicableError
from playbooks.events import EventBus, Listener, ProgressClock, RunEvent
from playbooks.evidence import backend_from_files
from playbooks.incident_store import IncidentStore
from playbooks.incident_verify import engine_opens
from playbooks.journal import Journal, read_journal
from playbooks.loader import Library
from playbooks.models import Playbook, Step
from playbooks.notify import escalation_path, run_message, send_webhook
from playbooks.plan import PlannedStep, build_plan, plan_from_json, resolve_params, static_condition
from playbooks.severity import LEVELS
from playbooks.state import StateDir, current_actor, new_run_id
from playbooks.templating import render_args

__all__ = ["Runner", "RunOptions", "RunResult", "StepOutcome", "Confirm"]

Confirm = Callable[[PlannedStep, str], bool]
_DONE = ("succeeded", "skipped", "problem")
SAFETY_ACTION = "engine.safety_copy"


@dataclass
class RunOptions:
    params: dict[str, Any] = field(default_factory=dict)
    param_defaults: dict[str, Any] = field(default_factory=dict)  # from the node's config (backup_repo)
    assume_yes: bool = False
    dry_run: bool = False
    read_only: bool = False
    simulate: bool = False
    waive_safety_copy: str | None = None  # the reason, audited
    node: str | None = None
    confirm: Confirm | None = None  # asks at each destructive step (the TUI); None: assume_yes decides
    webhook: str | None = None
    escalation: list[str] | None = None
    open_incident: bool = True
    # The URL of the node that serves this data dir: the incident then resolves when it answers
    # /ready (playbooks.incident_verify), not when the run ends. None: nobody serves it, and the
    # incident resolves when the run's checks pass and the data dir opens.
    ready_url: str | None = None


@dataclass
class StepOutcome:
    id: str
    action: str
    status: str  # succeeded | failed | skipped | refused | problem | planned
    duration_seconds: float = 0.0
    summary: str = ""
    attempts: int = 0
    destructive: bool = False
    would_touch: list[str] = field(default_factory=list)
    when: str | None = None

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "status": self.status, "duration_seconds": round(self.duration_seconds, 3),
                               "action": self.action, "summary": self.summary, "destructive": self.destructive}
        if self.attempts > 1:
            row["attempts"] = self.attempts
        if self.would_touch:
            row["would_touch"] = self.would_touch
        if self.when:
            row["when"] = self.when
        return row

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StepOutcome:
        return cls(record["step"], record.get("action", ""), record["status"], record.get("duration_seconds", 0.0),
                   record.get("summary", ""), record.get("attempts", 1), record.get("destructive", False))


@dataclass
class RunResult:
    run_id: str | None
    playbook: str
    status: str  # succeeded | failed | refused
    steps: list[StepOutcome]
    data_dir: str | None = None
    backend: str | None = None
    dry_run: bool = False
    partial: bool = False
    message: str = ""
    journal: str | None = None
    incident: str | None = None
    escalation: list[str] | None = None
    simulated_from: str | None = None
    lost: list[str] = field(default_factory=list)  # the final accounting: not recovered, in quarantine
    recovered: list[str] = field(default_factory=list)  # reported lost by a step, re-applied by a later one
    verified: str | None = None  # the incident resolved: the evidence the target serves again
    exit_code_hint: int | None = None
    # Through a node's agent: when the node had reopened its engine and answered /ready after a
    # run that succeeded (the moment the recovery is verified), and the node's URL.
    verified_ready_at: float | None = None
    node_url: str | None = None

    @property
    def exit_code(self) -> int:
        if self.exit_code_hint is not None:
            return self.exit_code_hint
        return {"succeeded": 0, "failed": 1, "refused": 4}.get(self.status, 1)

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"run_id": self.run_id, "playbook": self.playbook, "status": self.status,
                                   "steps": [step.to_json() for step in self.steps], "data_dir": self.data_dir,
                                   "backend": self.backend}
        for key in ("dry_run", "partial"):
            if getattr(self, key):
                payload[key] = True
        for key in ("message", "journal", "incident", "escalation", "simulated_from", "lost", "recovered", "verified",
                    "verified_ready_at", "node_url"):
            if getattr(self, key):
                payload[key] = getattr(self, key)
        return payload


class Runner:
    def __init__(self, library: Library | None = None, *, state: StateDir | None = None,
                 registry: Registry = REGISTRY, listeners: list[Listener] | None = None,
                 incidents: IncidentStore | None = None) -> None:
        self.library = library if library is not None else Library.load()
        self.state = state or StateDir()
        self.registry = registry
        self.bus = EventBus(listeners)
        self.audit = AuditLog(self.state.audit_log)
        self.incidents = incidents or IncidentStore(self.state)
        self.actor = current_actor()

    # ------------------------------------------------------------------ entry points
    def run(self, playbook_id: str, data_dir: Path | None, options: RunOptions | None = None) -> RunResult:
        options = options or RunOptions()
        playbook = self.library.get(playbook_id)
        if data_dir is None:
            raise InvalidArgumentError(f"{playbook.id} needs a target", hint="pass --data-dir D or --node NAME")
        data_dir = Path(data_dir).absolute()
        backend = self._backend(playbook, data_dir)
        params = resolve_params(playbook, options.params, options.param_defaults)
        plan = build_plan(self.library, playbook, backend)
        if options.dry_run:
            return self._dry_run(playbook, plan, data_dir, backend, params, options)
        run_id = new_run_id()
        simulated_from = None
        if options.simulate:
            simulated_from, data_dir = str(data_dir), self._sandbox(run_id, data_dir)
        header = {
            "run_id": run_id, "playbook": playbook.id, "title": playbook.title, "severity": playbook.severity,
            "target_rto_seconds": playbook.target_rto_seconds, "data_dir": str(data_dir), "backend": backend,
            "node": options.node, "params": params, "plan": [step.to_json() for step in plan],
            "assume_yes": options.assume_yes, "waive_safety_copy": options.waive_safety_copy,
            "simulated_from": simulated_from, "incident": playbook.incident and options.open_incident and not options.simulate,
            "ready_url": options.ready_url, "who": self.actor.to_json(),
        }
        with self._locks(run_id, data_dir):
            journal = Journal(self.state.journal(run_id))
            journal.write("run_started", **header)
            unconfirmed = self._unconfirmed(plan, params, backend, options)
            if unconfirmed:
                message = (f"{playbook.id} has destructive steps ({', '.join(unconfirmed)}) and they were not "
                           f"confirmed; nothing was changed")
                journal.write("run_finished", status="refused", message=message)
                self._emit("run_finished", header, status="refused", message=message)
                steps = [StepOutcome(p.id, p.step.action or "", "refused" if p.id in unconfirmed else "planned",
                                     summary=p.step.title, destructive=p.step.destructive) for p in plan]
                return RunResult(run_id, playbook.id, "refused", steps, str(data_dir), backend, message=message,
                                 journal=str(journal.path))
            return self._steps(header, plan, journal, options, finished={}, interrupted=None)

    def resume(self, run_id: str, options: RunOptions | None = None) -> RunResult:
        options = options or RunOptions()
        state = read_journal(self.state.journal(run_id))
        if state.status == "succeeded":
            raise InvalidArgumentError(f"run {run_id} already succeeded; there is nothing to resume",
                                       hint=f"see `drconsole playbook runs` or the journal {state.path}")
        header = dict(state.header)
        header["assume_yes"] = bool(header.get("assume_yes")) or options.assume_yes
        if options.waive_safety_copy:
            header["waive_safety_copy"] = options.waive_safety_copy
        plan = plan_from_json(header["plan"])
        merged = RunOptions(params=header["params"], assume_yes=header["assume_yes"], read_only=options.read_only,
                            waive_safety_copy=header.get("waive_safety_copy"), node=header.get("node"),
                            confirm=options.confirm, webhook=options.webhook, escalation=options.escalation,
                            open_incident=options.open_incident)
        unconfirmed = self._unconfirmed(plan, header["params"], header.get("backend"), merged,
                                        done=set(state.finished))
        if unconfirmed:
            raise ConfirmationRequired(f"run {run_id} has destructive steps not confirmed yet "
                                       f"({', '.join(unconfirmed)})", hint="resume with --yes to confirm them")
        finished = {step: record for step, record in state.finished.items()
                    if record.get("status") in _DONE or (record.get("status") == "failed" and record.get("continued"))}
        interrupted = state.interrupted_step
        with self._locks(run_id, Path(header["data_dir"])):
            journal = Journal(state.path)
            journal.write("run_resumed", who=self.actor.to_json(), interrupted_step=interrupted)
            return self._steps(header, plan, journal, merged, finished=finished, interrupted=interrupted)

    # ------------------------------------------------------------------ preparation
    def _backend(self, playbook: Playbook, data_dir: Path) -> str | None:
        try:
            backend = detect_backend(data_dir)
        except NotFoundError:
            if playbook.target_may_be_missing:
                return None
            raise
        except EngineError:
            found = backend_from_files(data_dir)  # a damaged marker: config-recovery exists to fix it
            if found is None:
                if playbook.target_may_be_missing:
                    return None
                raise
            backend = found
        if backend not in playbook.backends:
            raise NotApplicableError(f"{playbook.id} does not apply to {data_dir}: it is a {backend} data dir and "
                                     f"the playbook is for {', '.join(playbook.backends)}",
                                     hint="see `drconsole playbook list` for the playbooks of each backend")
        return backend

    def _unconfirmed(self, plan: list[PlannedStep], params: dict[str, Any], backend: str | None,
                     options: RunOptions, done: set[str] | None = None) -> list[str]:
        if options.assume_yes or options.confirm is not None:
            return []
        return [p.id for p in plan if p.step.destructive and p.id not in (done or set())
                and static_condition(p.step.when, params, backend) is not False]

    def _sandbox(self, run_id: str, data_dir: Path) -> Path:
        if not data_dir.is_dir():
            raise NotFoundError(f"cannot simulate: {data_dir} does not exist")
        target = self.state.run_dir(run_id) / "sandbox" / data_dir.name

        def ignore(directory: str, names: list[str]) -> list[str]:
            skipped = {"drconsole.lock", "LOCK"}
            if Path(directory) == data_dir:
                skipped.add(".quarantine")
            return [name for name in names if name in skipped]

        try:
            shutil.copytree(data_dir, target, ignore=ignore, symlinks=True)
        except OSError as exc:
            raise map_os_error(exc, f"copying {data_dir} into the simulation sandbox {target}") from exc
        return target

    def _dry_run(self, playbook: Playbook, plan: list[PlannedStep], data_dir: Path, backend: str | None,
                 params: dict[str, Any], options: RunOptions) -> RunResult:
        context = ActionContext(data_dir=data_dir, backend=backend, run_id="RUN_ID", playbook=playbook.id,
                                state=self.state, params=params, node=options.node, dry_run=True)
        variables = self._variables(context, params, options.node)
        outcomes: list[StepOutcome] = []
        safety_planned = any(p.step.action == SAFETY_ACTION for p in plan)
        for planned in plan:
            step = planned.step
            verdict = static_condition(step.when, params, backend)
            if step.destructive and not safety_planned and options.waive_safety_copy is None and data_dir.exists():
                entry = self.registry.get(SAFETY_ACTION)
                outcomes.append(StepOutcome("auto-safety-copy", SAFETY_ACTION, "planned",
                                            summary="safety copy before the first destructive step (automatic)",
                                            would_touch=entry.touches(context, {})))
                safety_planned = True
            entry = self.registry.get(step.action or "")
            try:
                args = render_args(step.args, variables)
                touches = entry.touches(context, args)
            except KeyError as exc:
                touches = [f"(needs a value for {{{exc.args[0]}}})"]
            status = "skipped" if verdict is False else "planned"
            outcomes.append(StepOutcome(planned.id, step.action or "", status, summary=step.title or entry.summary,
                                        destructive=step.destructive, would_touch=touches,
                                        when=step.when if verdict is None else None))
        return RunResult(None, playbook.id, "succeeded", outcomes, str(data_dir), backend, dry_run=True,
                         message="dry run: nothing was changed")

    # ------------------------------------------------------------------ execution
    @contextmanager
    def _locks(self, run_id: str, data_dir: Path) -> Iterator[None]:
        self.state.ensure(self.state.runs)
        target_key = hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]
        handles = []
        try:
            for name, what in ((f"{run_id}.lock", f"run {run_id} is already running in another process"),
                               (f".target-{target_key}.lock", f"another run is working on {data_dir}")):
                handle = open(self.state.runs / name, "a")
                handles.append(handle)
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise LockedError(what, hint="wait for it to finish, or resume it if it was cut off") from None
            yield
        finally:
            for handle in handles:
                handle.close()

    def _variables(self, context: ActionContext, params: dict[str, Any], node: str | None) -> dict[str, Any]:
        return {**params, "data_dir": str(context.data_dir) if context.data_dir else None,
                "quarantine": str(context.quarantine_path) if context.quarantine_path else None,
                "run_dir": str(context.run_dir), "run_id": context.run_id, "backend": context.backend,
                "node": node, "state_dir": str(self.state.root), "playbook": context.playbook}

    def _emit(self, kind: str, header: dict[str, Any], **fields: Any) -> None:
        self.bus.emit(RunEvent(kind=kind, run_id=header["run_id"], playbook=header["playbook"], **fields))

    def _steps(self, header: dict[str, Any], plan: list[PlannedStep], journal: Journal, options: RunOptions,
               finished: dict[str, dict[str, Any]], interrupted: str | None) -> RunResult:
        run_id, data_dir, params = header["run_id"], Path(header["data_dir"]), header["params"]
        backend = header.get("backend")
        base = ActionContext(data_dir=data_dir, backend=backend, run_id=run_id, playbook=header["playbook"],
                             state=self.state, read_only=options.read_only, params=params, node=header.get("node"),
                             actor=self.actor, audit=self.audit, started_at=float(header.get("time", time.time())))
        variables = self._variables(base, params, header.get("node"))
        incident = self._incident(header)
        history: dict[str, dict[str, Any]] = {sid: record.get("result", {}) for sid, record in finished.items()}
        base.history = history  # the same dict: actions see every earlier step's result (the report)
        outcomes: list[StepOutcome] = []
        safety_done = any(record.get("action") == SAFETY_ACTION and record.get("status") == "succeeded"
                          for record in finished.values())
        waived = header.get("waive_safety_copy")
        waiver_audited = False
        self._emit("run_started", header, steps=len(plan), message=f"{header['playbook']} on {data_dir}")
        status, partial, message = "succeeded", False, ""
        previous: dict[str, Any] | None = None
        total = len(plan)
        for index, planned in enumerate(plan, start=1):
            step = planned.step
            if planned.id in finished:
                outcomes.append(StepOutcome.from_record(finished[planned.id]))
                previous = history.get(planned.id)
                continue
            namespace = self._namespace(params, backend, history, planned.scope, previous)
            if step.when and not parse_condition(step.when).evaluate(namespace):
                outcomes.append(self._skip(header, journal, planned, index, total, f"condition false: {step.when}"))
                continue
            if step.action == SAFETY_ACTION and waived:
                outcomes.append(self._skip(header, journal, planned, index, total, f"safety copy waived: {waived}"))
                continue
            if step.destructive:
                if not safety_done and not waived and data_dir.exists():
                    auto = PlannedStep("auto-safety-copy", Step.model_validate({
                        "id": "auto-safety-copy", "action": SAFETY_ACTION,
                        "title": "safety copy before destructive steps"}),
                                       "", header["playbook"])
                    outcome, result = self._run_step(header, journal, base, variables, auto, index, total,
                                                     resuming=interrupted == auto.id, incident=incident)
                    outcomes.append(outcome)
                    history[auto.id] = result
                    if outcome.status != "succeeded":
                        status = "refused" if outcome.status == "refused" else "failed"
                        message = f"the safety copy failed, so {planned.id} did not run: {outcome.summary}"
                        break
                    safety_done = True
                if waived and not safety_done and not waiver_audited:
                    self.audit.append(actor=self.actor, action="safety_copy.waived", target=str(data_dir),
                                      outcome="waived", detail=str(waived), run_id=run_id,
                                      playbook=header["playbook"], step=planned.id)
                    self._log(header, journal, planned.id, f"safety copy waived by {self.actor.describe()}: {waived}",
                              "warning")
                    waiver_audited = True
                if not self._confirm(header, planned, options):
                    outcome = StepOutcome(planned.id, step.action or "", "refused", destructive=True,
                                          summary="destructive step not confirmed")
                    journal.write("step_finished", step=planned.id, action=step.action, status="refused",
                                  summary=outcome.summary, destructive=True)
                    self._emit("step_finished", header, step_id=planned.id, index=index, steps=total,
                               status="refused", message=outcome.summary)
                    outcomes.append(outcome)
                    status, message = "refused", f"{planned.id} is destructive and was not confirmed"
                    break
            outcome, result = self._run_step(header, journal, base, variables, planned, index, total,
                                             resuming=interrupted == planned.id, incident=incident)
            outcomes.append(outcome)
            history[planned.id] = result
            previous = result
            if step.action == SAFETY_ACTION and outcome.status == "succeeded":
                safety_done = True
            if outcome.status in _DONE:
                continue
            if outcome.status == "refused":
                status, message = "refused", outcome.summary
                break
            if step.on_failure == "continue":
                partial = True
                continue
            status, message = "failed", f"{planned.id} failed: {outcome.summary}"
            if step.on_failure == "rollback":
                rollback = PlannedStep(f"{planned.id}:rollback",
                                       Step.model_validate({
                                           "id": "rollback", "action": step.rollback or "engine.restore_safety_copy",
                                           "args": step.rollback_args, "title": f"roll back {planned.id}"}),
                                       planned.scope, planned.source)
                rolled, _ = self._run_step(header, journal, base, variables, rollback, index, total,
                                           resuming=False, incident=incident)
                outcomes.append(rolled)
                message += f"; rollback {rolled.status}: {rolled.summary}"
            break
        return self._finish(header, journal, outcomes, status, partial, message, options, incident, history)

    def _namespace(self, params: dict[str, Any], backend: str | None, history: dict[str, dict[str, Any]],
                   scope: str, previous: dict[str, Any] | None) -> dict[str, Any]:
        steps = dict(history)
        if scope:
            steps.update({key[len(scope):]: value for key, value in history.items() if key.startswith(scope)})
        return {"params": params, "backend": backend, "steps": steps, "previous": previous or {}, "vars": {}}

    def _skip(self, header: dict[str, Any], journal: Journal, planned: PlannedStep, index: int, total: int,
              why: str) -> StepOutcome:
        journal.write("step_finished", step=planned.id, action=planned.step.action, status="skipped", summary=why,
                      duration_seconds=0.0, result={})
        self._emit("step_finished", header, step_id=planned.id, index=index, steps=total, status="skipped", message=why)
        return StepOutcome(planned.id, planned.step.action or "", "skipped", summary=why,
                           destructive=planned.step.destructive)

    def _confirm(self, header: dict[str, Any], planned: PlannedStep, options: RunOptions) -> bool:
        target = header.get("node") or Path(header["data_dir"]).name
        self._emit("needs_confirmation", header, step_id=planned.id,
                   message=f"{planned.id} ({planned.step.action}) is destructive; confirm by typing {target}",
                   data={"target": target})
        if options.confirm is not None:
            return bool(options.confirm(planned, target))
        return bool(header.get("assume_yes") or options.assume_yes)

    def _log(self, header: dict[str, Any], journal: Journal, step: str | None, message: str, level: str = "info") -> None:
        journal.write("log", step=step, message=message, level=level)
        self._emit("log", header, step_id=step, message=message, level=level)

    def _run_step(self, header: dict[str, Any], journal: Journal, base: ActionContext, variables: dict[str, Any],
                  planned: PlannedStep, index: int, total: int, *, resuming: bool,
                  incident: str | None) -> tuple[StepOutcome, dict[str, Any]]:
        step = planned.step
        action_name = step.action or ""
        journal.write("step_started", step=planned.id, index=index, action=action_name, resuming=resuming)
        self._emit("step_started", header, step_id=planned.id, index=index, steps=total,
                   message=step.title or self.registry.get(action_name).summary, data={"action": action_name})
        if resuming:
            self._log(header, journal, planned.id, f"resuming {planned.id}: it was cut off before it finished")
        clock = time.monotonic()
        progress_clock = ProgressClock()

        def log(message: str, level: str = "info") -> None:
            self._log(header, journal, planned.id, message, level)

        def progress(done: int, units: int, unit: str = "bytes", phase: str = "") -> None:
            self._emit("progress", header, step_id=planned.id, index=index, steps=total, done=done, total=units,
                       unit=unit, phase=phase, eta_seconds=progress_clock.eta(done, units, phase))

        attempts = 0
        status = "failed"
        result = ActionResult(False, "not run")
        while True:
            attempts += 1
            context = ActionContext(**{**base.__dict__, "step": planned.id, "resuming": resuming or attempts > 1,
                                       "log": log, "progress": progress})
            error: BaseException | None = None
            try:
                args = render_args(step.args, variables)
                result = self.registry.invoke(action_name, context, args)
                if result.ok and step.verify:
                    check = self.registry.invoke(step.verify, context, render_args(step.verify_args, variables))
                    log(f"verification ({step.verify}): {check.summary}", "info" if check.ok else "warning")
                    if not check.ok:
                        result = ActionResult(False, f"{result.summary}; verification failed: {check.summary}",
                                              {**result.data, "verification": check.namespace()}, result.touched)
            except KeyError as exc:
                error = exc
                result = ActionResult(False, f"the placeholder {{{exc.args[0]}}} has no value (a parameter not given?)")
            except DrconsoleError as exc:
                error = exc
                result = ActionResult(False, str(exc), {"error": type(exc).__name__, "exit_code": exc.exit_code})
            except OSError as exc:
                mapped = map_os_error(exc, f"{action_name} on {base.target()}")
                error = mapped
                result = ActionResult(False, str(mapped), {"error": type(mapped).__name__})
            except Exception as exc:  # noqa: BLE001 - a bug in an action fails the step, not the console
                error = exc
                result = ActionResult(False, f"unexpected {type(exc).__name__}: {exc}", {"error": type(exc).__name__})
            if result.ok:
                status = "succeeded"
                break
            if error is not None and getattr(error, "exit_code", None) == 4:
                status = "refused"
                break
            if error is None and step.diagnostic:
                status = "problem"
                break
            if step.on_failure == "retry" and attempts <= step.retries:
                log(f"attempt {attempts} failed ({result.summary}); retrying", "warning")
                time.sleep(min(2.0, 0.2 * attempts))
                continue
            status = "failed"
            break
        duration = time.monotonic() - clock
        namespace = result.namespace()
        continued = status == "failed" and step.on_failure == "continue"
        journal.write("step_finished", step=planned.id, action=action_name, status=status,
                      duration_seconds=round(duration, 3), summary=result.summary, attempts=attempts,
                      destructive=step.destructive, continued=continued, result=namespace, touched=result.touched)
        self._emit("step_finished", header, step_id=planned.id, index=index, steps=total, status=status,
                   duration_seconds=duration, message=result.summary)
        if incident is not None:
            lost = namespace.get("lost") if isinstance(namespace.get("lost"), list) else None
            self.incidents.record(incident, "step", f"{planned.id}: {result.summary}", actor=self.actor,
                                  node=header.get("node"), step=planned.id, status=status, run_id=header["run_id"],
                                  lost=lost)
        return (StepOutcome(planned.id, action_name, status, duration, result.summary, attempts, step.destructive),
                namespace)

    # ------------------------------------------------------------------ the end of a run
    def _incident(self, header: dict[str, Any]) -> str | None:
        """Join the target's open incident (a diagnosis opened it), or open one with the playbook's severity."""
        if not header.get("incident"):
            return None
        target = header.get("node") or header["data_dir"]
        severity = header.get("severity", "P2")
        try:
            incident = self.incidents.join_run(
                target, run_id=header["run_id"], playbook=header["playbook"], severity=severity, title=header["title"],
                target_rto_seconds=float(header.get("target_rto_seconds") or LEVELS[severity].response_seconds),
                actor=self.actor)
        except DrconsoleError:
            return None
        return incident.id

    def _finish(self, header: dict[str, Any], journal: Journal, outcomes: list[StepOutcome], status: str,
                partial: bool, message: str, options: RunOptions, incident: str | None,
                history: dict[str, dict[str, Any]]) -> RunResult:
        run_id = header["run_id"]
        target = header.get("node") or header["data_dir"]
        accounting = account(history)
        lost, recovered = accounting.lost, accounting.recovered
        checks_passed = status == "succeeded" and not partial
        ready_url = header.get("ready_url")
        journal.write("run_finished", status=status, partial=partial, message=message, lost=lost, recovered=recovered)
        verified = None
        severity = None
        if incident is not None:
            severity = self.incidents.record_run_finished(
                incident, target, run_id=run_id, playbook=header["playbook"], status=status, partial=partial,
                message=message, lost=lost, recovered=recovered, ready_url=ready_url, actor=self.actor).severity
            verified = self._verify(header, journal, incident, checks_passed, ready_url)
        webhook = options.webhook or os.environ.get("DRCONSOLE_WEBHOOK_URL")
        if webhook and not header.get("simulated_from"):
            tag = (incident, severity) if incident is not None and severity is not None else None
            sent = send_webhook(webhook, run_message(header["playbook"], run_id, status, partial, target, tag),
                                extra={"incident": incident, "severity": severity} if tag else None)
            self._log(header, journal, None, f"notification: {sent.detail}", "info" if sent.sent else "warning")
        escalation = escalation_path(options.escalation) if status == "failed" else None
        self._emit("run_finished", header, status=status, message=message,
                   data={"partial": partial, "escalation": escalation, "lost": lost, "checks_passed": checks_passed,
                         "incident": incident, "verified": verified})
        return RunResult(run_id, header["playbook"], status, outcomes, header["data_dir"], header.get("backend"),
                         partial=partial, message=message, journal=str(journal.path), incident=incident,
                         escalation=escalation, simulated_from=header.get("simulated_from"), lost=lost,
                         recovered=recovered, verified=verified,
                         verified_ready_at=header.get("verified_ready_at") if verified else None)

    def _verify(self, header: dict[str, Any], journal: Journal, incident: str, checks_passed: bool,
                ready_url: str | None) -> str | None:
        """Resolve the incident when the target is verified serving; the evidence, or None (it stays open)."""
        if not checks_passed:
            self._log(header, journal, None, f"incident {incident} stays open: the run did not pass all its checks",
                      "warning")
            return None
        if ready_url:
            self._log(header, journal, None, f"incident {incident} resolves when {ready_url}/ready answers 200")
            return None
        opens, evidence = engine_opens(header["data_dir"])
        if not opens:
            self._log(header, journal, None, f"incident {incident} stays open: {evidence}", "warning")
            return None
        evidence = f"{evidence}; run {header['run_id']} ({header['playbook']}) passed its checks"
        # One moment for the incident's resolution and the run's result: the RTO clock and the screen agree.
        header["verified_ready_at"] = moment = time.time()
        self.incidents.record_verified(header.get("node") or header["data_dir"], evidence=evidence, at=moment,
                                       run_id=header["run_id"], actor=self.actor)
        self._log(header, journal, None, f"incident {incident} resolved: {evidence}")
        return evidence
