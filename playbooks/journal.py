"""The journal of one run: a JSONL file written as the run goes, so that a cut-off run can resume.

    {"type": "run_started", "run_id", "playbook", "plan": [...steps...], "data_dir", "backend", "params", ...}
    {"type": "step_started", "step", "index", "attempt", "time"}
    {"type": "log", "step", "message", "level", "time"}
    {"type": "step_finished", "step", "status", "duration_seconds", "result", "time"}
    {"type": "run_finished", "status", "time"}

Every line is fsynced before the work it announces starts, so after a ``kill -9`` the journal
says exactly which step was in progress. A torn last line (the kill hit mid-write) is ignored.
The header holds the expanded plan itself, so a resume runs the same steps even if the library
changed meanwhile.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import map_os_error
from playbooks.errors import UnknownPlaybookError

__all__ = ["Journal", "JournalState", "read_journal", "list_journals"]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, record_type: str, **fields: Any) -> None:
        record = {"type": record_type, "time": time.time(), **fields}
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise map_os_error(exc, f"writing the run journal {self.path}") from exc


@dataclass
class JournalState:
    """What a journal says about its run."""

    path: Path
    header: dict[str, Any]
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> its step_finished record
    started: list[str] = field(default_factory=list)  # step ids in the order they started
    status: str | None = None  # from run_finished; None: the run was cut off
    logs: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    resumes: int = 0

    @property
    def run_id(self) -> str:
        return str(self.header["run_id"])

    @property
    def interrupted_step(self) -> str | None:
        """The step that started and never finished (where a resume picks up)."""
        for step in reversed(self.started):
            if step not in self.finished:
                return step
        return None

    def summary_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "playbook": self.header.get("playbook"),
            "status": self.status or "interrupted",
            "data_dir": self.header.get("data_dir"),
            "started": self.header.get("time"),
            "interrupted_step": self.interrupted_step,
        }


def read_journal(path: Path) -> JournalState:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise UnknownPlaybookError(f"no run journal {path}", hint="see `drconsole playbook runs`") from None
    except OSError as exc:
        raise map_os_error(exc, f"reading the run journal {path}") from exc
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the torn last line of a killed run
    if not records or records[0].get("type") != "run_started":
        raise UnknownPlaybookError(f"{path} is not a run journal (no run_started record)")
    state = JournalState(path=path, header=records[0], records=records)
    for record in records[1:]:
        kind = record.get("type")
        if kind == "step_started":
            state.started.append(record["step"])
            state.finished.pop(record["step"], None)  # a retry or a resume starts it again
        elif kind == "step_finished":
            state.finished[record["step"]] = record
        elif kind == "run_finished":
            state.status = record.get("status")
        elif kind == "run_resumed":
            state.status = None
            state.resumes += 1
        elif kind == "log":
            state.logs.append(record)
    return state


def list_journals(runs_dir: Path) -> list[JournalState]:
    if not runs_dir.is_dir():
        return []
    found = []
    for path in sorted(runs_dir.glob("*.jsonl")):
        try:
            found.append(read_journal(path))
        except UnknownPlaybookError:
            continue
    return sorted(found, key=lambda state: (float(state.header.get("time") or 0), state.run_id))
