"""The audit log: every action that changes something, append-only and hash-chained.

Each line is one JSON object: when, who (user and ``SSH_CLIENT``), what action on which target,
the outcome, and the run it belongs to, plus ``prev_hash`` (the hash of the line before; 64 zeros
for the first) and ``hash`` (SHA-256 of the line's canonical JSON without ``hash``). Editing,
deleting or reordering a line breaks the chain at that line. ``audit.head`` records the newest
sequence number and hash, so that cutting lines off the end shows too.

Appends hold an exclusive lock on the log and are fsynced: concurrent runs interleave whole lines.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import map_os_error
from engines.fsutil import atomic_write_text
from playbooks.state import Actor

__all__ = ["AuditLog", "AuditVerification", "GENESIS"]

GENESIS = "0" * 64


def _digest(entry: dict[str, Any]) -> str:
    body = {key: value for key, value in entry.items() if key != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class AuditVerification:
    ok: bool
    entries: int
    problems: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "problems": self.problems, "path": self.path}


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.stem + ".head")

    def append(self, *, actor: Actor, action: str, target: str, outcome: str, detail: str = "",
               **extra: Any) -> dict[str, Any]:
        """Append one entry and return it (with its hash)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise map_os_error(exc, f"opening the audit log {self.path}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            sequence, previous = self._last(fd)
            entry: dict[str, Any] = {
                "seq": sequence + 1,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
                "who": actor.to_json(),
                "action": action,
                "target": target,
                "outcome": outcome,
                "detail": detail,
                **{key: value for key, value in extra.items() if value not in (None, "", {})},
                "prev_hash": previous,
            }
            entry["hash"] = _digest(entry)
            os.write(fd, (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
            os.fsync(fd)
            atomic_write_text(self.head_path, json.dumps({"seq": entry["seq"], "hash": entry["hash"]}) + "\n")
        except OSError as exc:
            raise map_os_error(exc, f"writing the audit log {self.path}") from exc
        finally:
            os.close(fd)
        return entry

    def _last(self, fd: int) -> tuple[int, str]:
        """The sequence number and hash of the newest entry (read under the lock)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS
        start = max(0, size - 65536)
        tail = os.pread(fd, size - start, start).decode("utf-8", errors="replace")
        for line in reversed(tail.splitlines()):
            if line.strip():
                try:
                    entry = json.loads(line)
                    return int(entry["seq"]), str(entry["hash"])
                except (ValueError, KeyError, TypeError):
                    break  # a damaged last line: chain on from it anyway; verify will show it
        return 0, GENESIS

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    rows.append({"unreadable": line})
        return rows

    def verify(self) -> AuditVerification:
        """Re-check every hash and link; a problem names the line and what is wrong."""
        result = AuditVerification(ok=True, entries=0, path=str(self.path))
        if not self.path.exists():
            if self.head_path.exists():
                result.problems.append({"line": None, "reason": "the audit log is missing but its head file exists"})
                result.ok = False
            return result
        previous = GENESIS
        sequence = 0
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                result.entries += 1
                try:
                    entry = json.loads(line)
                    recorded = entry["hash"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    result.problems.append({"line": number, "reason": "not a valid audit entry"})
                    previous = ""
                    continue
                if entry.get("prev_hash") != previous and previous != "":
                    result.problems.append({"line": number, "reason": "the chain is broken here: a line before "
                                                                      "it was removed, inserted or edited"})
                if _digest(entry) != recorded:
                    result.problems.append({"line": number, "reason": "the line was edited: its hash does not match"})
                if entry.get("seq") != sequence + 1:
                    result.problems.append({"line": number, "reason": f"sequence {entry.get('seq')} follows {sequence}"})
                sequence = entry.get("seq", sequence + 1) if isinstance(entry.get("seq"), int) else sequence + 1
                previous = recorded
        if self.head_path.exists():
            try:
                head = json.loads(self.head_path.read_text(encoding="utf-8"))
                if head.get("hash") != previous or head.get("seq") != sequence:
                    result.problems.append({"line": None, "reason": f"the log ends at entry {sequence} but the head "
                                                                    f"says {head.get('seq')}: lines were cut off the end"})
            except (json.JSONDecodeError, AttributeError):
                result.problems.append({"line": None, "reason": f"{self.head_path} is damaged"})
        elif result.entries:
            result.problems.append({"line": None, "reason": f"{self.head_path} is missing"})
        result.ok = not result.problems
        return result
