"""One run on the agent: its numbered event log, its pending confirmation, its cancel flag.

Events are appended to ``<state>/runs/<run_id>/agent-events.jsonl`` as ``{"seq", "event"}`` lines
(numbered from 1, across resumes), so a client that reconnects with ``after=<last seq>`` misses
nothing, even after the node restarted. The final result goes beside them
(``agent-result.json``) for ``GET /agent/runs/{id}`` once the run is over.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from engines.fsutil import atomic_write_text
from playbooks.events import RunEvent
from playbooks.plan import PlannedStep
from playbooks.state import StateDir

__all__ = ["EventLog", "AgentRun", "EVENTS_NAME", "RESULT_NAME", "CONFIRM_TIMEOUT"]

EVENTS_NAME = "agent-events.jsonl"
RESULT_NAME = "agent-result.json"
CONFIRM_TIMEOUT = 3600.0  # a destructive step nobody answers for an hour is declined (the run stops, resumable)


class EventLog:
    """The numbered events of one run, on disk and in memory; readers wait on ``condition``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.condition = threading.Condition()
        self.lines: list[dict[str, Any]] = []
        if path.exists():
            for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    self.lines.append(json.loads(text))
                except ValueError:
                    continue  # a torn last line of a killed node

    @property
    def last_seq(self) -> int:
        return int(self.lines[-1]["seq"]) if self.lines else 0

    def append(self, event: RunEvent) -> int:
        with self.condition:
            seq = self.last_seq + 1
            line: dict[str, Any] = {"seq": seq, "event": event.to_json()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, default=str) + "\n")
            self.lines.append(line)
            self.condition.notify_all()
            return seq

    def after(self, seq: int) -> list[dict[str, Any]]:
        with self.condition:
            return [line for line in self.lines if int(line["seq"]) > seq]

    def wake(self) -> None:
        with self.condition:
            self.condition.notify_all()


class AgentRun:
    """A run the agent started or resumed in this process (``live`` while its thread works)."""

    def __init__(self, state: StateDir, run_id: str | None, playbook: str, node: str) -> None:
        self.state = state
        self.run_id = run_id
        self.playbook = playbook
        self.node = node  # what a confirmation must type
        self.cancelled = threading.Event()
        self.known = threading.Event()  # run_id is known (or the run ended before having one)
        self.began = False  # the runner emitted its first event (something is in the journal)
        self.live = True
        self.status = "running"
        self.error: BaseException | None = None
        self.result: dict[str, Any] | None = None
        self.held_finish: RunEvent | None = None
        self.pending: dict[str, Any] | None = None
        self._decision: concurrent.futures.Future[bool] | None = None
        self._lock = threading.Lock()
        self.log: EventLog | None = EventLog(self._events_path()) if run_id else None
        self.thread: threading.Thread | None = None

    def _events_path(self) -> Path:
        assert self.run_id is not None
        return self.state.run_dir(self.run_id) / EVENTS_NAME

    def identify(self, run_id: str) -> None:
        if self.run_id is None:
            self.run_id = run_id
            self.log = EventLog(self._events_path())
        self.known.set()

    def emit(self, event: RunEvent) -> None:
        if self.log is None:
            self.identify(event.run_id)
        assert self.log is not None
        self.log.append(event)

    # ------------------------------------------------------------------ confirmation
    def ask(self, planned: PlannedStep, target: str) -> bool:
        """The runner's ``confirm``: wait for ``answer`` (the client's), a cancel, or the timeout."""
        decision: concurrent.futures.Future[bool] = concurrent.futures.Future()
        with self._lock:
            if self.cancelled.is_set():
                return False
            self._decision = decision
            self.pending = {
                "step": planned.id,
                "target": target,
                "action": planned.step.action,
                "title": planned.step.title,
                "since": time.time(),
            }
            self.status = "waiting"
        try:
            return bool(decision.result(timeout=CONFIRM_TIMEOUT))
        except concurrent.futures.TimeoutError:
            return False
        finally:
            with self._lock:
                self.pending, self._decision = None, None
                if self.live:
                    self.status = "running"

    def answer(self, step: str, typed: str | None) -> tuple[bool, str]:
        """A client's answer: ``typed`` must be the node's name (None declines)."""
        with self._lock:
            if self.pending is None or self._decision is None or self._decision.done():
                return False, "no step of this run waits for a confirmation"
            if self.pending["step"] != step:
                return False, f"the step waiting for a confirmation is {self.pending['step']}, not {step}"
            if typed is None:
                self._decision.set_result(False)
                return True, "declined"
            if typed.strip() != self.node:
                return False, f"type the node name ({self.node}) to confirm {step}"
            self._decision.set_result(True)
            return True, "confirmed"

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            if self._decision is not None and not self._decision.done():
                self._decision.set_result(False)

    # ------------------------------------------------------------------ the end
    def finish(self, result: dict[str, Any]) -> None:
        self.result = result
        self.status = str(result.get("status", "failed"))
        if self.run_id is not None:
            atomic_write_text(self.state.run_dir(self.run_id) / RESULT_NAME, json.dumps(result, default=str) + "\n")
        self.live = False
        if self.log is not None:
            self.log.wake()
        self.known.set()


def saved_result(state: StateDir, run_id: str) -> dict[str, Any] | None:
    path = state.run_dir(run_id) / RESULT_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def events_exist(state: StateDir, run_id: str) -> bool:
    return os.path.exists(state.run_dir(run_id) / EVENTS_NAME)
