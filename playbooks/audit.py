"""The audit log: every action that changes something, append-only, keyed and anchored.

Each line is one JSON object: when, who (user and ``SSH_CLIENT``), what action on which target,
the outcome, and the run it belongs to, plus ``prev_hash`` (the hash of the line before; 64 zeros
for the first), ``key_id`` (which audit key made it) and ``hash``: HMAC-SHA256, under the audit
key (``audit_key.py``), of the line's canonical JSON without ``hash``. Editing, deleting or
reordering a line breaks the chain at that line, and recomputing the chain needs the key, which
lives outside the log's directory and only its owner can read.

``audit.head`` beside the log records the newest sequence number and hash; the same head, MACed,
is anchored where the log's writer cannot reach (``audit_anchor.py``: a file beside the key,
syslog, a node's peers), so that cutting lines off the end, or deleting the log and its head,
shows: so does a missing log while run journals exist.

Logs written before the chain was keyed (no ``key_id``) still verify, and are reported as
unkeyed; an unkeyed line after the key existed is a rewrite.

Appends hold an exclusive lock on the log and are fsynced: concurrent runs interleave whole lines.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import map_os_error
from engines.fsutil import atomic_write_text
from playbooks.audit_anchor import AnchorFile, Head, SyslogAnchor
from playbooks.audit_key import AuditKey, key_path_for
from playbooks.state import Actor

__all__ = ["AuditLog", "AuditVerification", "GENESIS", "anchor_elsewhere"]

GENESIS = "0" * 64

ExtraAnchor = Callable[[AuditKey, Path, Head], None]
_EXTRA_ANCHORS: dict[Path, list[ExtraAnchor]] = {}


def anchor_elsewhere(log_path: Path, anchor: ExtraAnchor) -> Callable[[], None]:
    """Also give each new head of the log at ``log_path`` to ``anchor`` (a node's peers); returns the undo.

    Whoever appends to that log in this process (the admin hook, the agent's runs) anchors there too.
    """
    path = Path(log_path).absolute()
    _EXTRA_ANCHORS.setdefault(path, []).append(anchor)

    def undo() -> None:
        anchors = _EXTRA_ANCHORS.get(path, [])
        if anchor in anchors:
            anchors.remove(anchor)

    return undo


def _canonical(entry: dict[str, Any]) -> bytes:
    body = {key: value for key, value in entry.items() if key != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _digest(entry: dict[str, Any], key: AuditKey | None = None) -> str:
    """The entry's hash: HMAC under ``key`` for a keyed entry, plain SHA-256 for an old one."""
    if key is None:
        return hashlib.sha256(_canonical(entry)).hexdigest()
    return key.mac(_canonical(entry))


def _text_safe(value: Any) -> Any:
    """``value`` with every string made valid UTF-8 (bytes the shell passed undecoded as ``\\xff``)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape" if _escapable(value) else "backslashreplace").decode(
                "utf-8", "backslashreplace"
            )
    if isinstance(value, dict):
        return {str(_text_safe(key)): _text_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_text_safe(item) for item in value]
    return value


def _escapable(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
        return True
    except UnicodeEncodeError:
        return False


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


@dataclass
class AuditVerification:
    ok: bool
    entries: int
    problems: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""
    keyed_entries: int = 0
    unkeyed_entries: int = 0
    key: str = ""
    anchors: list[dict[str, Any]] = field(default_factory=list)  # {where, seq} of each head found outside

    @property
    def unkeyed(self) -> bool:
        """Every entry is an old, unkeyed one: the chain proves order, not who could rewrite it."""
        return self.entries > 0 and self.keyed_entries == 0

    def problem(self, line: int | None, reason: str) -> None:
        self.problems.append({"line": line, "reason": reason})

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "problems": self.problems,
            "path": self.path,
            "keyed_entries": self.keyed_entries,
            "unkeyed_entries": self.unkeyed_entries,
            "unkeyed": self.unkeyed,
            "key": self.key,
            "anchors": self.anchors,
        }


class AuditLog:
    def __init__(self, path: Path, *, key_path: Path | None = None) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.stem + ".head")
        self.key_path = key_path or key_path_for(self.path)
        self.journals = self.path.parent / "runs"  # the state dir's layout (playbooks.state)

    def append(
        self, *, actor: Actor, action: str, target: str, outcome: str, detail: str = "", **extra: Any
    ) -> dict[str, Any]:
        """Append one keyed entry and anchor the new head; return the entry (with its hash)."""
        key = AuditKey.load_or_create(self.key_path)
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
                "time": _now(),
                "who": actor.to_json(),
                "action": action,
                "target": target,
                "outcome": outcome,
                "detail": detail,
                **{name: value for name, value in extra.items() if value not in (None, "", {})},
                "key_id": key.key_id,
                "prev_hash": previous,
            }
            entry = _text_safe(entry)
            entry["hash"] = _digest(entry, key)
            os.write(fd, (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
            os.fsync(fd)
            head = Head(entry["seq"], entry["hash"])
            atomic_write_text(self.head_path, json.dumps({"seq": head.seq, "hash": head.hash}) + "\n")
            self._anchor(key, head)
        except OSError as exc:
            raise map_os_error(exc, f"writing the audit log {self.path}") from exc
        finally:
            os.close(fd)
        return entry

    def _anchor(self, key: AuditKey, head: Head) -> None:
        anchor = AnchorFile(key, self.path)
        known = anchor.read()
        if known is not None and known.genuine:
            first_keyed = known.first_keyed
        elif head.seq == 1 or known is None and not self._has_keyed_entries_before(head.seq):
            first_keyed = head.seq  # the first keyed entry of this log: nothing to lose track of
        else:
            first_keyed = 0  # the anchor vanished or was forged under keyed entries: verify keeps saying so
        anchor.write(head, first_keyed)
        SyslogAnchor(key, self.path).send(head)
        for extra in list(_EXTRA_ANCHORS.get(self.path.absolute(), [])):
            extra(key, self.path, head)

    def _has_keyed_entries_before(self, sequence: int) -> bool:
        return any("key_id" in entry for entry in self.entries() if entry.get("seq") != sequence)

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
                    row = json.loads(line)
                    rows.append(row if isinstance(row, dict) else {"unreadable": line})
                except json.JSONDecodeError:
                    rows.append({"unreadable": line})
        return rows

    def verify(
        self, *, syslog: Path | None = None, journal: bool = True, peer_heads: list[tuple[str, Head]] | None = None
    ) -> AuditVerification:
        """Re-check every MAC and link, the head, and every anchor outside the log's directory.

        ``syslog``: a syslog file to read anchored heads from (else the journal, when ``journal``).
        ``peer_heads``: (where, head) that a node's peers hold for this log (``audit_peers.peer_heads``).

        Raises:
            StorageIOError: the audit key exists but cannot be read (run as its owner).
        """
        key = AuditKey.load(self.key_path)
        result = AuditVerification(ok=True, entries=0, path=str(self.path), key=str(self.key_path))
        heads = self._outside_heads(key, result, syslog=syslog, journal=journal, peer_heads=peer_heads or [])
        anchor = AnchorFile(key, self.path).read() if key is not None else None
        if not self.path.exists():
            self._verify_missing(result, heads)
            result.ok = not result.problems
            return result
        by_seq = self._verify_chain(result, key, anchor)
        last_seq, last_hash = max(by_seq.items()) if by_seq else (0, GENESIS)
        self._verify_head(result, last_seq, last_hash)
        if key is not None and result.keyed_entries and anchor is None:
            result.problem(
                None,
                f"the anchor of this log beside the audit key ({AnchorFile(key, self.path).path}) "
                "is missing: it was deleted",
            )
        elif anchor is not None and not anchor.genuine:
            result.problem(None, "the anchor beside the audit key does not carry the key's MAC: it was forged")
        elif anchor is not None and anchor.first_keyed == 0:
            result.problem(
                None,
                "the anchor beside the audit key was missing or forged once, and made again: "
                "entries may have been cut off before that",
            )
        for where, head in heads:
            if head.seq > last_seq:
                result.problem(
                    None,
                    f"the log ends at entry {last_seq} but {where} holds entry {head.seq}: lines were cut off the end",
                )
            elif by_seq.get(head.seq) != head.hash:
                result.problem(head.seq, f"entry {head.seq} differs from the one {where} recorded: it was rewritten")
        result.ok = not result.problems
        return result

    def _outside_heads(
        self,
        key: AuditKey | None,
        result: AuditVerification,
        *,
        syslog: Path | None,
        journal: bool,
        peer_heads: list[tuple[str, Head]],
    ) -> list[tuple[str, Head]]:
        """The newest head each anchor outside the directory holds (only MAC-checked ones)."""
        if key is None:
            return []
        found: list[tuple[str, Head]] = []
        anchor = AnchorFile(key, self.path)
        record = anchor.read()
        if record is not None and record.genuine:
            found.append((f"the anchor {anchor.path}", record.head))
        if syslog is not None or journal:
            heads, where = SyslogAnchor(key, self.path).heads(syslog)
            if heads:
                found.append((f"syslog ({where})", max(heads, key=lambda head: head.seq)))
            elif syslog is not None:
                result.problem(None, f"no head of this log in {where}")
        found.extend(peer_heads)
        result.anchors = [{"where": where, "seq": head.seq} for where, head in found]
        return found

    def _verify_missing(self, result: AuditVerification, heads: list[tuple[str, Head]]) -> None:
        if self.head_path.exists():
            result.problem(None, "the audit log is missing but its head file exists")
        for where, head in heads:
            result.problem(None, f"the audit log is missing but {where} says it held {head.seq} entries")
        journals = sorted(self.journals.glob("*.jsonl")) if self.journals.is_dir() else []
        if journals:
            result.problem(
                None,
                f"the audit log is missing but {len(journals)} run journal(s) exist in {self.journals}: it was deleted",
            )

    def _verify_chain(self, result: AuditVerification, key: AuditKey | None, anchor: Any) -> dict[int, str]:
        """Check each line; return seq -> recorded hash of the lines read."""
        previous = GENESIS
        sequence = 0
        by_seq: dict[int, str] = {}
        first_keyed = anchor.first_keyed if anchor is not None and anchor.genuine and anchor.first_keyed else None
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                result.entries += 1
                try:
                    entry = json.loads(line)
                    recorded = str(entry["hash"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    result.problem(number, "not a valid audit entry")
                    previous = ""
                    continue
                self._verify_entry(result, number, entry, key, first_keyed)
                if entry.get("prev_hash") != previous and previous != "":
                    result.problem(number, "the chain is broken here: a line before it was removed, inserted or edited")
                if entry.get("seq") != sequence + 1:
                    result.problem(number, f"sequence {entry.get('seq')} follows {sequence}")
                sequence = entry["seq"] if isinstance(entry.get("seq"), int) else sequence + 1
                by_seq[sequence] = recorded
                previous = recorded
        return by_seq

    @staticmethod
    def _verify_entry(
        result: AuditVerification, number: int, entry: dict[str, Any], key: AuditKey | None, first_keyed: int | None
    ) -> None:
        recorded = str(entry.get("hash"))
        if "key_id" not in entry:
            result.unkeyed_entries += 1
            if result.keyed_entries:
                result.problem(number, "an unkeyed entry after keyed ones: the chain was rewritten without the key")
            elif first_keyed is not None and isinstance(entry.get("seq"), int) and entry["seq"] >= first_keyed:
                result.problem(
                    number,
                    f"entry {entry['seq']} is unkeyed, but entries from {first_keyed} on were "
                    "keyed: the chain was rewritten without the key",
                )
            elif key is not None and str(entry.get("time", "")) >= key.created:
                result.problem(
                    number,
                    "an unkeyed entry written after the audit key existed: the chain was rewritten without the key",
                )
            if not hmac.compare_digest(_digest(entry), recorded):
                result.problem(number, "the line was edited: its hash does not match")
            return
        result.keyed_entries += 1
        if key is None:
            result.problem(number, "the entry is keyed but the audit key is missing: it cannot be checked")
        elif entry["key_id"] != key.key_id:
            result.problem(
                number,
                f"the entry names the key {str(entry['key_id'])[:16]}, not this one "
                f"({key.key_id}): made with another key",
            )
        elif not hmac.compare_digest(_digest(entry, key), recorded):
            result.problem(number, "the line was edited: its MAC does not match")

    def _verify_head(self, result: AuditVerification, last_seq: int, last_hash: str) -> None:
        if self.head_path.exists():
            try:
                head = json.loads(self.head_path.read_text(encoding="utf-8"))
                if head.get("hash") != last_hash or head.get("seq") != last_seq:
                    result.problem(
                        None,
                        f"the log ends at entry {last_seq} but the head says {head.get('seq')}: "
                        "lines were cut off the end",
                    )
            except (json.JSONDecodeError, AttributeError):
                result.problem(None, f"{self.head_path} is damaged")
        elif result.entries:
            result.problem(None, f"{self.head_path} is missing")
