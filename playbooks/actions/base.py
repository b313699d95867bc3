"""The action registry: what a playbook step can do, and the one gate every action passes through.

An action is a function ``f(context, **args) -> ActionResult`` registered under a dotted name
(``engine.repair``). Its keyword-only parameters are its arguments, so a playbook that passes an
unknown argument or misses a required one fails at load time. ``writes=True`` marks every action
that changes anything (the data dir, a backup repository, a file it writes): ``Registry.invoke``
refuses those in read-only mode and appends each one to the audit log, before and after, with its
outcome. That is the action layer of DESIGN's safety rule 5: hiding a key is not enough.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engines.errors import DrconsoleError, InvalidArgumentError
from engines.fsutil import QUARANTINE_DIR
from playbooks.errors import ReadOnlyRefusal
from playbooks.state import Actor, StateDir, current_actor

if TYPE_CHECKING:
    from playbooks.audit import AuditLog

__all__ = ["Action", "ActionContext", "ActionResult", "Registry", "REGISTRY", "action", "ProgressSink", "LogSink"]


@dataclass
class ActionResult:
    """What an action did. ``ok`` False means it ran and found a problem (a check that failed)."""

    ok: bool = True
    summary: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)  # paths it created or changed

    def namespace(self) -> dict[str, Any]:
        """What ``when`` conditions see as ``steps.<id>`` / ``previous``."""
        return {**self.data, "ok": self.ok, "summary": self.summary}


class ProgressSink(Protocol):
    def __call__(self, done: int, total: int, unit: str = "bytes", phase: str = "") -> None: ...


class LogSink(Protocol):
    def __call__(self, message: str, level: str = "info") -> None: ...


def _no_progress(done: int, total: int, unit: str = "bytes", phase: str = "") -> None:
    return None


def _no_log(message: str, level: str = "info") -> None:
    return None


@dataclass
class ActionContext:
    """Everything an action may use: the target, the run's places, and the ways to report."""

    data_dir: Path | None
    backend: str | None = None
    run_id: str = "adhoc"
    playbook: str = ""
    step: str = ""
    state: StateDir = field(default_factory=StateDir)
    read_only: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    node: str | None = None
    actor: Actor = field(default_factory=current_actor)
    audit: AuditLog | None = None
    log: LogSink = _no_log
    progress: ProgressSink = _no_progress
    resuming: bool = False  # the step was cut off once and runs again
    dry_run: bool = False
    history: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> its result, this run
    started_at: float = field(default_factory=time.time)  # when the run started (RTO clocks)

    @property
    def run_dir(self) -> Path:
        return self.state.run_dir(self.run_id)

    @property
    def quarantine_path(self) -> Path | None:
        """This run's quarantine folder (``<data-dir>/.quarantine/run-<run_id>``), not created."""
        if self.data_dir is None:
            return None
        return self.data_dir / QUARANTINE_DIR / f"run-{self.run_id}"

    def quarantine(self) -> Path:
        """This run's quarantine folder, created on first use; a resumed run finds the same one."""
        path = self.quarantine_path
        if path is None:
            raise InvalidArgumentError("this action needs a data dir")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def require_data_dir(self) -> Path:
        if self.data_dir is None:
            raise InvalidArgumentError("this action needs a data dir", hint="pass --data-dir or --node")
        return self.data_dir

    def target(self) -> str:
        return str(self.data_dir) if self.data_dir is not None else "-"


ActionFunction = Callable[..., ActionResult]
Describer = Callable[..., list[str]]


@dataclass(frozen=True)
class Action:
    name: str
    function: ActionFunction
    writes: bool
    summary: str
    describe: Describer | None = None

    @property
    def arguments(self) -> dict[str, bool]:
        """Argument name -> required."""
        found = {}
        for name, parameter in inspect.signature(self.function).parameters.items():
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                found[name] = parameter.default is inspect.Parameter.empty
        return found

    def check_arguments(self, args: dict[str, Any]) -> list[str]:
        """Problems with ``args`` (unknown names, missing required ones)."""
        accepted = self.arguments
        problems = [
            f"unknown argument {name!r} of {self.name} (it takes: {', '.join(accepted) or 'none'})"
            for name in args
            if name not in accepted
        ]
        problems += [
            f"{self.name} needs the argument {name!r}"
            for name, required in accepted.items()
            if required and name not in args
        ]
        return problems

    def touches(self, context: ActionContext, args: dict[str, Any]) -> list[str]:
        """What the action would read or change, for ``--dry-run``."""
        if self.describe is not None:
            try:
                return self.describe(context, **args)
            except (DrconsoleError, OSError, KeyError, TypeError, ValueError) as exc:
                return [f"(cannot tell yet: {exc})"]
        where = context.target()
        return [f"changes {where}"] if self.writes else [f"reads {where}"]


class Registry:
    """Name -> action. ``invoke`` is the only way the runner calls one."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}

    def register(self, entry: Action) -> None:
        if entry.name in self._actions:
            raise ValueError(f"action {entry.name} registered twice")
        self._actions[entry.name] = entry

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __iter__(self) -> Iterator[Action]:
        return iter(sorted(self._actions.values(), key=lambda entry: entry.name))

    def get(self, name: str) -> Action:
        try:
            return self._actions[name]
        except KeyError:
            raise InvalidArgumentError(
                f"unknown action {name!r}", hint="see playbooks/actions/ for the registered actions"
            ) from None

    def invoke(self, name: str, context: ActionContext, args: dict[str, Any]) -> ActionResult:
        entry = self.get(name)
        problems = entry.check_arguments(args)
        if problems:
            raise InvalidArgumentError("; ".join(problems))
        if not entry.writes:
            return entry.function(context, **args)
        if context.read_only or context.dry_run:
            mode = "read-only" if context.read_only else "a dry run"
            self._audit(context, entry, args, "refused", f"{mode}: writing actions are refused")
            raise ReadOnlyRefusal(
                f"{entry.name} changes {context.target()} and this is {mode}",
                hint="nothing was changed; run without --read-only to act",
            )
        self._audit(context, entry, args, "started", "")
        clock = time.monotonic()
        try:
            result = entry.function(context, **args)
        except BaseException as exc:
            outcome = "refused" if getattr(exc, "exit_code", None) == 4 else "failed"
            self._audit(context, entry, args, outcome, str(exc), time.monotonic() - clock)
            raise
        self._audit(
            context, entry, args, "succeeded" if result.ok else "failed", result.summary, time.monotonic() - clock
        )
        return result

    @staticmethod
    def _audit(
        context: ActionContext,
        entry: Action,
        args: dict[str, Any],
        outcome: str,
        detail: str,
        duration: float | None = None,
    ) -> None:
        if context.audit is None:
            return
        context.audit.append(
            actor=context.actor,
            action=entry.name,
            target=context.target(),
            outcome=outcome,
            detail=detail,
            run_id=context.run_id,
            playbook=context.playbook,
            step=context.step,
            args={key: str(value) for key, value in args.items()},
            duration_seconds=None if duration is None else round(duration, 3),
        )


REGISTRY = Registry()


def action(
    name: str, *, writes: bool, describe: Describer | None = None, registry: Registry = REGISTRY
) -> Callable[[ActionFunction], ActionFunction]:
    """Register the decorated function as action ``name``; its docstring's first line is the summary."""

    def register(function: ActionFunction) -> ActionFunction:
        summary = (inspect.getdoc(function) or name).splitlines()[0]
        registry.register(Action(name=name, function=function, writes=writes, summary=summary, describe=describe))
        return function

    return register
