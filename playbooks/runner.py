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

With ``RunOptions.sandbox`` (the CLI's ``--simulate``) the run works on a copy of the data dir made
in its own run directory: every step really runs, the data dir itself is not touched, no incident
is opened and no notification sent.

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
from collections.abc import Iterator
from contextlib import contextmanager
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
from playbooks.plan import PlannedStep, build_plan, resolve_params, static_condition
from playbooks.runner_model import Confirm, Run, RunOptions, RunResult, StepOutcome
from playbooks.severity import LEVELS
from playbooks.state import StateDir, current_actor, new_run_id
from playbooks.templating import render_args

__all__ = ["Runner", "RunOptions", "RunResult", "StepOutcome", "Confirm"]

_DONE = ("succeeded", "skipped", "problem")
SAFETY_ACTION = "engine.safety_copy"


class Runner:
    def __init__(
        self,
        library: Library | None = None,
        *,
        state: StateDir | None = None,
        registry: Registry = REGISTRY,
        listeners: list[Listener] | None = None,
        incidents: IncidentStore | None = None,
    ) -> None:
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
        sandboxed_from = None
        if options.sandbox:
            sandboxed_from, data_dir = str(data_dir), self._sandbox(run_id, data_dir)
        run = Run.new(run_id, playbook, data_dir, backend, params, plan, options, self.actor.to_json(), sandboxed_from)
        with self._locks(run_id, data_dir):
            run.journal = Journal(self.state.journal(run_id))
            run.journal.write("run_started", **run.header())
            unconfirmed = self._unconfirmed(plan, params, backend, options)
            if unconfirmed:
                message = (
                    f"{playbook.id} has destructive steps ({', '.join(unconfirmed)}) and they were not "
                    f"confirmed; nothing was changed"
                )
                run.journal.write("run_finished", status="refused", message=message)
                self._emit("run_finished", run, status="refused", message=message)
                steps = [
                    StepOutcome(
                        p.id,
                        p.step.action or "",
                        "refused" if p.id in unconfirmed else "planned",
                        summary=p.step.title,
                        destructive=p.step.destructive,
                    )
                    for p in plan
                ]
                return RunResult(
                    run_id,
                    playbook.id,
                    "refused",
                    steps,
                    str(data_dir),
                    backend,
                    message=message,
                    journal=str(run.journal.path),
                )
            return self._steps(run, finished={}, interrupted=None)

    def resume(self, run_id: str, options: RunOptions | None = None) -> RunResult:
        options = options or RunOptions()
        state = read_journal(self.state.journal(run_id))
        if state.status == "succeeded":
            raise InvalidArgumentError(
                f"run {run_id} already succeeded; there is nothing to resume",
                hint=f"see `drconsole playbook runs` or the journal {state.path}",
            )
        header = state.header
        assume_yes = bool(header.get("assume_yes")) or options.assume_yes
        waived = options.waive_safety_copy or header.get("waive_safety_copy")
        merged = RunOptions(
            params=header["params"],
            assume_yes=assume_yes,
            read_only=options.read_only,
            waive_safety_copy=waived,
            node=header.get("node"),
            confirm=options.confirm,
            webhook=options.webhook,
            escalation=options.escalation,
            open_incident=options.open_incident,
        )
        run = Run.from_header(header, merged)
        run.assume_yes, run.safety.waived = assume_yes, waived
        unconfirmed = self._unconfirmed(run.plan, run.params, run.backend, merged, done=set(state.finished))
        if unconfirmed:
            raise ConfirmationRequired(
                f"run {run_id} has destructive steps not confirmed yet ({', '.join(unconfirmed)})",
                hint="resume with --yes to confirm them",
            )
        finished = {
            step: record
            for step, record in state.finished.items()
            if record.get("status") in _DONE or (record.get("status") == "failed" and record.get("continued"))
        }
        interrupted = state.interrupted_step
        with self._locks(run_id, run.data_dir):
            run.journal = Journal(state.path)
            run.journal.write("run_resumed", who=self.actor.to_json(), interrupted_step=interrupted)
            return self._steps(run, finished=finished, interrupted=interrupted)

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
            raise NotApplicableError(
                f"{playbook.id} does not apply to {data_dir}: it is a {backend} data dir and "
                f"the playbook is for {', '.join(playbook.backends)}",
                hint="see `drconsole playbook list` for the playbooks of each backend",
            )
        return backend

    def _unconfirmed(
        self,
        plan: list[PlannedStep],
        params: dict[str, Any],
        backend: str | None,
        options: RunOptions,
        done: set[str] | None = None,
    ) -> list[str]:
        if options.assume_yes or options.confirm is not None:
            return []
        return [
            p.id
            for p in plan
            if p.step.destructive
            and p.id not in (done or set())
            and static_condition(p.step.when, params, backend) is not False
        ]

    def _sandbox(self, run_id: str, data_dir: Path) -> Path:
        """Copy ``data_dir`` into the run's directory; a sandbox run (``--simulate``) really runs, on the copy."""
        if not data_dir.is_dir():
            raise NotFoundError(f"cannot copy {data_dir} into a sandbox: it does not exist")
        target = self.state.run_dir(run_id) / "sandbox" / data_dir.name

        def ignore(directory: str, names: list[str]) -> list[str]:
            skipped = {"drconsole.lock", "LOCK"}
            if Path(directory) == data_dir:
                skipped.add(".quarantine")
            return [name for name in names if name in skipped]

        try:
            shutil.copytree(data_dir, target, ignore=ignore, symlinks=True)
        except OSError as exc:
            raise map_os_error(exc, f"copying {data_dir} into the sandbox {target}") from exc
        return target

    def _dry_run(
        self,
        playbook: Playbook,
        plan: list[PlannedStep],
        data_dir: Path,
        backend: str | None,
        params: dict[str, Any],
        options: RunOptions,
    ) -> RunResult:
        context = ActionContext(
            data_dir=data_dir,
            backend=backend,
            run_id="RUN_ID",
            playbook=playbook.id,
            state=self.state,
            params=params,
            node=options.node,
            dry_run=True,
        )
        variables = self._variables(context, params, options.node)
        outcomes: list[StepOutcome] = []
        safety_planned = any(p.step.action == SAFETY_ACTION for p in plan)
        for planned in plan:
            step = planned.step
            verdict = static_condition(step.when, params, backend)
            if step.destructive and not safety_planned and options.waive_safety_copy is None and data_dir.exists():
                entry = self.registry.get(SAFETY_ACTION)
                outcomes.append(
                    StepOutcome(
                        "auto-safety-copy",
                        SAFETY_ACTION,
                        "planned",
                        summary="safety copy before the first destructive step (automatic)",
                        would_touch=entry.touches(context, {}),
                    )
                )
                safety_planned = True
            entry = self.registry.get(step.action or "")
            try:
                args = render_args(step.args, variables)
                touches = entry.touches(context, args)
            except KeyError as exc:
                touches = [f"(needs a value for {{{exc.args[0]}}})"]
            status = "skipped" if verdict is False else "planned"
            outcomes.append(
                StepOutcome(
                    planned.id,
                    step.action or "",
                    status,
                    summary=step.title or entry.summary,
                    destructive=step.destructive,
                    would_touch=touches,
                    when=step.when if verdict is None else None,
                )
            )
        return RunResult(
            None,
            playbook.id,
            "succeeded",
            outcomes,
            str(data_dir),
            backend,
            dry_run=True,
            message="dry run: nothing was changed",
        )

    # ------------------------------------------------------------------ execution
    @contextmanager
    def _locks(self, run_id: str, data_dir: Path) -> Iterator[None]:
        self.state.ensure(self.state.runs)
        target_key = hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]
        handles = []
        try:
            for name, what in (
                (f"{run_id}.lock", f"run {run_id} is already running in another process"),
                (f".target-{target_key}.lock", f"another run is working on {data_dir}"),
            ):
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
        return {
            **params,
            "data_dir": str(context.data_dir) if context.data_dir else None,
            "quarantine": str(context.quarantine_path) if context.quarantine_path else None,
            "run_dir": str(context.run_dir),
            "run_id": context.run_id,
            "backend": context.backend,
            "node": node,
            "state_dir": str(self.state.root),
            "playbook": context.playbook,
        }

    def _emit(self, kind: str, run: Run, **fields: Any) -> None:
        self.bus.emit(RunEvent(kind=kind, run_id=run.run_id, playbook=run.playbook, **fields))

    def _start(self, run: Run, finished: dict[str, dict[str, Any]]) -> None:
        """The action context every step starts from, the run variables, the incident, and what already ran."""
        run.context = ActionContext(
            data_dir=run.data_dir,
            backend=run.backend,
            run_id=run.run_id,
            playbook=run.playbook,
            state=self.state,
            read_only=run.options.read_only,
            params=run.params,
            node=run.node,
            actor=self.actor,
            audit=self.audit,
            started_at=float(run.started_at if run.started_at is not None else time.time()),
        )
        run.variables = self._variables(run.context, run.params, run.node)
        run.incident = self._incident(run)
        run.history = {sid: record.get("result", {}) for sid, record in finished.items()}
        run.context.history = run.history  # the same dict: actions see every earlier step's result (the report)
        run.safety.taken = any(
            record.get("action") == SAFETY_ACTION and record.get("status") == "succeeded"
            for record in finished.values()
        )
        self._emit("run_started", run, steps=len(run.plan), message=f"{run.playbook} on {run.data_dir}")

    def _steps(self, run: Run, finished: dict[str, dict[str, Any]], interrupted: str | None) -> RunResult:
        """Run the plan's steps in order: skip what finished or does not apply, guard, run, then decide."""
        self._start(run, finished)
        outcomes: list[StepOutcome] = []
        status, partial, message = "succeeded", False, ""
        previous: dict[str, Any] | None = None
        total = len(run.plan)
        waived = run.safety.waived
        for index, planned in enumerate(run.plan, start=1):
            step = planned.step
            if planned.id in finished:
                outcomes.append(StepOutcome.from_record(finished[planned.id]))
                previous = run.history.get(planned.id)
                continue
            namespace = self._namespace(run.params, run.backend, run.history, planned.scope, previous)
            if step.when and not parse_condition(step.when).evaluate(namespace):
                outcomes.append(self._skip(run, planned, index, total, f"condition false: {step.when}"))
                continue
            if step.action == SAFETY_ACTION and waived:
                outcomes.append(self._skip(run, planned, index, total, f"safety copy waived: {waived}"))
                continue
            if step.destructive:
                stop = self._guard(run, planned, index, total, outcomes, interrupted)
                if stop is not None:
                    status, message = stop
                    break
            outcome, result = self._run_step(run, planned, index, total, resuming=interrupted == planned.id)
            outcomes.append(outcome)
            run.history[planned.id] = result
            previous = result
            if step.action == SAFETY_ACTION and outcome.status == "succeeded":
                run.safety.taken = True
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
                rolled = self._rollback(run, planned, index, total)
                outcomes.append(rolled)
                message += f"; rollback {rolled.status}: {rolled.summary}"
            break
        return self._finish(run, outcomes, status, partial, message)

    # ------------------------------------------------------------------ the destructive-step guard
    def _guard(
        self,
        run: Run,
        planned: PlannedStep,
        index: int,
        total: int,
        outcomes: list[StepOutcome],
        interrupted: str | None,
    ) -> tuple[str, str] | None:
        """Before a destructive step: the safety copy (or its audited waiver), then the confirmation.

        Appends what it ran to ``outcomes``; returns the run's (status, message) when the step must not
        run, None when it may.
        """
        safety = run.safety
        if not safety.taken and not safety.waived and run.data_dir.exists():
            auto = PlannedStep(
                "auto-safety-copy",
                Step.model_validate(
                    {"id": "auto-safety-copy", "action": SAFETY_ACTION, "title": "safety copy before destructive steps"}
                ),
                "",
                run.playbook,
            )
            outcome, result = self._run_step(run, auto, index, total, resuming=interrupted == auto.id)
            outcomes.append(outcome)
            run.history[auto.id] = result
            if outcome.status != "succeeded":
                return (
                    "refused" if outcome.status == "refused" else "failed",
                    f"the safety copy failed, so {planned.id} did not run: {outcome.summary}",
                )
            safety.taken = True
        if safety.waived and not safety.taken and not safety.waiver_audited:
            self.audit.append(
                actor=self.actor,
                action="safety_copy.waived",
                target=str(run.data_dir),
                outcome="waived",
                detail=str(safety.waived),
                run_id=run.run_id,
                playbook=run.playbook,
                step=planned.id,
            )
            self._log(run, planned.id, f"safety copy waived by {self.actor.describe()}: {safety.waived}", "warning")
            safety.waiver_audited = True
        if self._confirm(run, planned):
            return None
        outcome = StepOutcome(
            planned.id,
            planned.step.action or "",
            "refused",
            destructive=True,
            summary="destructive step not confirmed",
            finished_at=time.time(),
        )
        run.log_journal().write(
            "step_finished",
            step=planned.id,
            action=planned.step.action,
            status="refused",
            summary=outcome.summary,
            destructive=True,
        )
        self._emit(
            "step_finished",
            run,
            step_id=planned.id,
            index=index,
            steps=total,
            status="refused",
            message=outcome.summary,
        )
        outcomes.append(outcome)
        return "refused", f"{planned.id} is destructive and was not confirmed"

    def _confirm(self, run: Run, planned: PlannedStep) -> bool:
        target = run.node or run.data_dir.name
        self._emit(
            "needs_confirmation",
            run,
            step_id=planned.id,
            message=f"{planned.id} ({planned.step.action}) is destructive; confirm by typing {target}",
            data={"target": target},
        )
        if run.options.confirm is not None:
            return bool(run.options.confirm(planned, target))
        return bool(run.assume_yes or run.options.assume_yes)

    # ------------------------------------------------------------------ rollback
    def _rollback(self, run: Run, planned: PlannedStep, index: int, total: int) -> StepOutcome:
        """Undo a failed step: its own ``rollback`` action, else the run's safety copy put back."""
        step = planned.step
        rollback = PlannedStep(
            f"{planned.id}:rollback",
            Step.model_validate(
                {
                    "id": "rollback",
                    "action": step.rollback or "engine.restore_safety_copy",
                    "args": step.rollback_args,
                    "title": f"roll back {planned.id}",
                }
            ),
            planned.scope,
            planned.source,
        )
        rolled, _ = self._run_step(run, rollback, index, total, resuming=False)
        return rolled

    # ------------------------------------------------------------------ one step
    def _namespace(
        self,
        params: dict[str, Any],
        backend: str | None,
        history: dict[str, dict[str, Any]],
        scope: str,
        previous: dict[str, Any] | None,
    ) -> dict[str, Any]:
        steps = dict(history)
        if scope:
            steps.update({key[len(scope) :]: value for key, value in history.items() if key.startswith(scope)})
        return {"params": params, "backend": backend, "steps": steps, "previous": previous or {}, "vars": {}}

    def _skip(self, run: Run, planned: PlannedStep, index: int, total: int, why: str) -> StepOutcome:
        run.log_journal().write(
            "step_finished",
            step=planned.id,
            action=planned.step.action,
            status="skipped",
            summary=why,
            duration_seconds=0.0,
            result={},
        )
        self._emit("step_finished", run, step_id=planned.id, index=index, steps=total, status="skipped", message=why)
        return StepOutcome(
            planned.id,
            planned.step.action or "",
            "skipped",
            summary=why,
            destructive=planned.step.destructive,
            finished_at=time.time(),
        )

    def _log(self, run: Run, step: str | None, message: str, level: str = "info") -> None:
        run.log_journal().write("log", step=step, message=message, level=level)
        self._emit("log", run, step_id=step, message=message, level=level)

    def _run_step(
        self, run: Run, planned: PlannedStep, index: int, total: int, *, resuming: bool
    ) -> tuple[StepOutcome, dict[str, Any]]:
        step = planned.step
        action_name = step.action or ""
        journal, base, variables = run.log_journal(), run.context, run.variables
        assert base is not None, "the run's action context is made before its steps run"
        journal.write("step_started", step=planned.id, index=index, action=action_name, resuming=resuming)
        self._emit(
            "step_started",
            run,
            step_id=planned.id,
            index=index,
            steps=total,
            message=step.title or self.registry.get(action_name).summary,
            data={"action": action_name},
        )
        if resuming:
            self._log(run, planned.id, f"resuming {planned.id}: it was cut off before it finished")
        clock = time.monotonic()
        progress_clock = ProgressClock()

        def log(message: str, level: str = "info") -> None:
            self._log(run, planned.id, message, level)

        def progress(done: int, units: int, unit: str = "bytes", phase: str = "") -> None:
            self._emit(
                "progress",
                run,
                step_id=planned.id,
                index=index,
                steps=total,
                done=done,
                total=units,
                unit=unit,
                phase=phase,
                eta_seconds=progress_clock.eta(done, units, phase),
            )

        attempts = 0
        status = "failed"
        result = ActionResult(False, "not run")
        while True:
            attempts += 1
            context = ActionContext(
                **{
                    **base.__dict__,
                    "step": planned.id,
                    "resuming": resuming or attempts > 1,
                    "log": log,
                    "progress": progress,
                }
            )
            error: BaseException | None = None
            try:
                args = render_args(step.args, variables)
                result = self.registry.invoke(action_name, context, args)
                if result.ok and step.verify:
                    check = self.registry.invoke(step.verify, context, render_args(step.verify_args, variables))
                    log(f"verification ({step.verify}): {check.summary}", "info" if check.ok else "warning")
                    if not check.ok:
                        result = ActionResult(
                            False,
                            f"{result.summary}; verification failed: {check.summary}",
                            {**result.data, "verification": check.namespace()},
                            result.touched,
                        )
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
        journal.write(
            "step_finished",
            step=planned.id,
            action=action_name,
            status=status,
            duration_seconds=round(duration, 3),
            summary=result.summary,
            attempts=attempts,
            destructive=step.destructive,
            continued=continued,
            result=namespace,
            touched=result.touched,
        )
        self._emit(
            "step_finished",
            run,
            step_id=planned.id,
            index=index,
            steps=total,
            status=status,
            duration_seconds=duration,
            message=result.summary,
        )
        if run.incident is not None:
            lost = namespace.get("lost") if isinstance(namespace.get("lost"), list) else None
            self.incidents.record(
                run.incident,
                "step",
                f"{planned.id}: {result.summary}",
                actor=self.actor,
                node=run.node,
                step=planned.id,
                status=status,
                run_id=run.run_id,
                lost=lost,
            )
        return (
            StepOutcome(
                planned.id,
                action_name,
                status,
                duration,
                result.summary,
                attempts,
                step.destructive,
                finished_at=time.time(),
            ),
            namespace,
        )

    # ------------------------------------------------------------------ the end of a run
    def _incident(self, run: Run) -> str | None:
        """Join the target's open incident (a diagnosis opened it), or open one with the playbook's severity."""
        if not run.wants_incident:
            return None
        severity = run.severity
        try:
            incident = self.incidents.join_run(
                run.target,
                run_id=run.run_id,
                playbook=run.playbook,
                severity=severity,
                title=run.title,
                target_rto_seconds=float(run.target_rto_seconds or LEVELS[severity].response_seconds),
                actor=self.actor,
            )
        except DrconsoleError:
            return None
        return incident.id

    def _finish(self, run: Run, outcomes: list[StepOutcome], status: str, partial: bool, message: str) -> RunResult:
        journal, incident, options = run.log_journal(), run.incident, run.options
        accounting = account(run.history)
        lost, recovered = accounting.lost, accounting.recovered
        checks_passed = status == "succeeded" and not partial
        journal.write("run_finished", status=status, partial=partial, message=message, lost=lost, recovered=recovered)
        verified = None
        severity = None
        if incident is not None:
            severity = self.incidents.record_run_finished(
                incident,
                run.target,
                run_id=run.run_id,
                playbook=run.playbook,
                status=status,
                partial=partial,
                message=message,
                lost=lost,
                recovered=recovered,
                ready_url=run.ready_url,
                actor=self.actor,
            ).severity
            verified = self._verify(run, incident, checks_passed)
        webhook = options.webhook or os.environ.get("DRCONSOLE_WEBHOOK_URL")
        if webhook and not run.sandboxed_from:
            tag = (incident, severity) if incident is not None and severity is not None else None
            sent = send_webhook(
                webhook,
                run_message(run.playbook, run.run_id, status, partial, run.target, tag),
                extra={"incident": incident, "severity": severity} if tag else None,
            )
            self._log(run, None, f"notification: {sent.detail}", "info" if sent.sent else "warning")
        escalation = escalation_path(options.escalation) if status == "failed" else None
        self._emit(
            "run_finished",
            run,
            status=status,
            message=message,
            data={
                "partial": partial,
                "escalation": escalation,
                "lost": lost,
                "checks_passed": checks_passed,
                "incident": incident,
                "verified": verified,
            },
        )
        return RunResult(
            run.run_id,
            run.playbook,
            status,
            outcomes,
            str(run.data_dir),
            run.backend,
            partial=partial,
            message=message,
            journal=str(journal.path),
            incident=incident,
            escalation=escalation,
            sandboxed_from=run.sandboxed_from,
            lost=lost,
            recovered=recovered,
            verified=verified,
            verified_ready_at=run.verified_ready_at if verified else None,
        )

    def _verify(self, run: Run, incident: str, checks_passed: bool) -> str | None:
        """Resolve the incident when the target is verified serving; the evidence, or None (it stays open)."""
        if not checks_passed:
            self._log(run, None, f"incident {incident} stays open: the run did not pass all its checks", "warning")
            return None
        if run.ready_url:
            self._log(run, None, f"incident {incident} resolves when {run.ready_url}/ready answers 200")
            return None
        opens, evidence = engine_opens(str(run.data_dir))
        if not opens:
            self._log(run, None, f"incident {incident} stays open: {evidence}", "warning")
            return None
        evidence = f"{evidence}; run {run.run_id} ({run.playbook}) passed its checks"
        # One moment for the incident's resolution and the run's result: the RTO clock and the screen agree.
        run.verified_ready_at = moment = time.time()
        self.incidents.record_verified(run.target, evidence=evidence, at=moment, run_id=run.run_id, actor=self.actor)
        self._log(run, None, f"incident {incident} resolved: {evidence}")
        return evidence
