"""Copies of an audit log's head kept where whoever can rewrite the log cannot (issue 18, item 4).

``audit.head`` sits beside the log, so cutting the last lines and fixing the head used to pass.
Each append now also leaves the head, MACed with the audit key, in places outside the log's
directory:

- the **anchor file** ``drconsole-audit-anchors/<log id>.json`` beside the key (0600 in a 0700
  directory made for it): the newest head, and the first sequence number that was keyed;
- **syslog** (``authpriv.info``, tag ``drconsole-audit``) through ``/dev/log`` (or
  ``$DRCONSOLE_AUDIT_SYSLOG``), where journald or rsyslog keep it out of the user's reach.
  ``audit verify`` reads it back with ``journalctl -t drconsole-audit``, or from a syslog file
  given with ``--syslog FILE``;
- for a node, its **peers** (``playbooks/agent``: the node's audit hook posts each head to them).

A line anyone could forge (syslog accepts every local sender) counts only when its MAC is right.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from engines.errors import map_os_error
from engines.fsutil import atomic_write_text
from playbooks.audit_key import AuditKey, anchor_dir_for

__all__ = ["Head", "AnchorRecord", "AnchorFile", "SyslogAnchor", "log_id", "head_mac", "SYSLOG_ENV", "SYSLOG_TAG"]

SYSLOG_ENV = "DRCONSOLE_AUDIT_SYSLOG"
SYSLOG_TAG = "drconsole-audit"
_AUTHPRIV_INFO = 10 * 8 + 6
_LINE = re.compile(
    r"drconsole-audit(?:\[\d+\])?: head log_id=(?P<log>[0-9a-f]{16}) seq=(?P<seq>\d{1,15}) "
    r"hash=(?P<hash>[0-9a-f]{64}) mac=(?P<mac>[0-9a-f]{64})"
)


def log_id(log_path: Path) -> str:
    """A short stable name of one audit log (its absolute path, hashed)."""
    return hashlib.sha256(str(Path(log_path).absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


def head_mac(key: AuditKey, identity: str, head: Head, first_keyed: int | None = None) -> str:
    extra = "" if first_keyed is None else f"|{first_keyed}"
    return key.mac(f"{identity}|{head.seq}|{head.hash}{extra}".encode())


@dataclass(frozen=True)
class AnchorRecord:
    head: Head
    first_keyed: int
    genuine: bool  # its MAC is right


class AnchorFile:
    """The newest head of one log, beside the key."""

    def __init__(self, key: AuditKey, log_path: Path) -> None:
        self.key = key
        self.identity = log_id(log_path)
        self.log_path = Path(log_path).absolute()
        self.path = anchor_dir_for(key.path) / f"{self.identity}.json"

    def write(self, head: Head, first_keyed: int) -> None:
        record = {
            "log": str(self.log_path),
            "log_id": self.identity,
            "seq": head.seq,
            "hash": head.hash,
            "first_keyed": first_keyed,
            "mac": head_mac(self.key, self.identity, head, first_keyed),
        }
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(record) + "\n")
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise map_os_error(exc, f"writing the audit anchor {self.path}") from exc

    def read(self) -> AnchorRecord | None:
        """The anchor; None when there is none. A damaged one reads as not genuine."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            head = Head(int(data["seq"]), str(data["hash"]))
            first_keyed = int(data["first_keyed"])
            genuine = data.get("mac") == head_mac(self.key, self.identity, head, first_keyed)
            return AnchorRecord(head, first_keyed, genuine)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return AnchorRecord(Head(0, ""), 0, False)


class SyslogAnchor:
    """Heads sent to syslog, and read back from the journal or a syslog file."""

    def __init__(self, key: AuditKey, log_path: Path) -> None:
        self.key = key
        self.identity = log_id(log_path)
        self.socket_path = os.environ.get(SYSLOG_ENV) or "/dev/log"

    def message(self, head: Head) -> str:
        return (
            f"head log_id={self.identity} seq={head.seq} hash={head.hash} mac={head_mac(self.key, self.identity, head)}"
        )

    def send(self, head: Head) -> bool:
        """Best effort: False when no syslog listens here (the anchor file still holds the head)."""
        datagram = f"<{_AUTHPRIV_INFO}>{SYSLOG_TAG}[{os.getpid()}]: {self.message(head)}".encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                sender.settimeout(1.0)
                sender.sendto(datagram, self.socket_path)
            return True
        except OSError:
            return False

    def heads(self, source: Path | None = None) -> tuple[list[Head], str]:
        """Genuine heads of this log found in ``source`` (a syslog file) or the journal, and where from.

        Returns ``([], why)`` when neither can be read here.
        """
        if source is not None:
            try:
                text = source.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                return [], f"cannot read {source}: {exc.strerror or exc}"
            where = str(source)
        else:
            import subprocess  # only reading heads back runs a program: not every command's start-up

            journalctl = shutil.which("journalctl")
            if journalctl is None:
                return [], "no journalctl here"
            try:
                done = subprocess.run(
                    [journalctl, "-t", SYSLOG_TAG, "-o", "cat", "--no-pager", "-q"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return [], f"journalctl failed: {exc}"
            if done.returncode != 0:
                return [], f"journalctl failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:120]}"
            text = "\n".join(f"{SYSLOG_TAG}: {line}" for line in done.stdout.splitlines())
            where = "the journal"
        found = []
        for match in _LINE.finditer(text):
            if match["log"] != self.identity:
                continue
            head = Head(int(match["seq"]), match["hash"])
            if match["mac"] == head_mac(self.key, self.identity, head):
                found.append(head)
        return found, where
