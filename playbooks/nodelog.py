"""A node's log as evidence: how did its last process end (OOM kill, panic, SIGSEGV, clean exit, SIGKILL)?

``drconsole node serve`` writes one line when it starts and one when it ends (to stderr, so
systemd's journal has them, and to ``--log-file`` when given, with the rest of its stderr)::

    2026-12-06T05:46:26+00:00 drconsole-node start name=orders pid=4242 data_dir=/srv/orders url=http://127.0.0.1:8081
    2026-12-06T05:49:02+00:00 drconsole-node exit name=orders pid=4242 how=clean code=0
    2026-12-06T05:49:02+00:00 drconsole-node exit name=orders pid=4242 how=panic code=1 error="KeyError: 'x'"

``classify`` reads the lines after the last start: an exit line says clean, error or panic (with
the traceback above it); Python's faulthandler names a fatal signal (SIGSEGV, SIGABRT, SIGBUS);
a kernel OOM-kill line naming the pid says OOM; a log that simply stops, for a process that is
gone, is a SIGKILL (someone's, or the host lost power): nothing in the process could write.
``kernel_oom_kills`` reads the kernel's log where this user may (``dmesg``, else ``journalctl -k``)
and returns nothing, quietly, where it may not.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "Ending",
    "START",
    "EXIT",
    "start_line",
    "exit_line",
    "classify",
    "kernel_oom_kills",
    "read_log_tail",
    "journal_lines",
]

START = "drconsole-node start"
EXIT = "drconsole-node exit"
_FIELDS = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_FATAL = re.compile(
    r"Fatal Python error: (Segmentation fault|Aborted|Bus error|Floating[- ]point exception|"
    r"Illegal instruction)"
)
_SIGNALS = {
    "Segmentation fault": "SIGSEGV",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Floating point exception": "SIGFPE",
    "Floating-point exception": "SIGFPE",
    "Illegal instruction": "SIGILL",
}
_OOM = re.compile(
    r"(?:Out of memory|Memory cgroup out of memory): Killed process (\d+) \(([^)]*)\)"
    r"|oom-kill:.*?\bpid=(\d+)"
)
_DMESG_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]\s?(.*)$")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b")
TAIL_BYTES = 256 * 1024  # the end of a log is where a death is written


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fields(**values: object) -> str:
    return " ".join(f'{key}="{value}"' if " " in str(value) else f"{key}={value}" for key, value in values.items())


def start_line(*, name: str, pid: int, data_dir: str, url: str) -> str:
    return f"{_now()} {START} {_fields(name=name, pid=pid, data_dir=data_dir, url=url)}"


def exit_line(*, name: str, pid: int, how: str, code: int, error: str = "") -> str:
    values: dict[str, object] = {"name": name, "pid": pid, "how": how, "code": code}
    line = f"{_now()} {EXIT} {_fields(**values)}"
    return line + (f' error="{error.replace(chr(34), chr(39))}"' if error else "")


def _parse(line: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in _FIELDS.findall(line)}


@dataclass
class Ending:
    """How the last process in a log ended; ``lines`` are the log lines that say so."""

    kind: str  # "running" | "clean-exit" | "error-exit" | "panic" | "SIGSEGV" | ... | "oom-kill" | "killed" | "unknown"
    pid: int | None
    sentence: str
    lines: list[str] = field(default_factory=list)

    @property
    def crashed(self) -> bool:
        return self.kind not in ("running", "clean-exit", "unknown")


def classify(
    lines: Sequence[str], *, alive: bool | None = None, kernel: Sequence[str] = (), kernel_note: str = ""
) -> Ending:
    """How the last run in ``lines`` ended. ``alive``: whether its pid still runs (None: not known here)."""
    starts = [index for index, line in enumerate(lines) if START in line]
    if not starts:
        return Ending("unknown", None, "the log has no start line of drconsole node serve")
    run = list(lines[starts[-1] :])
    pid_text = _parse(run[0]).get("pid", "")
    pid = int(pid_text) if pid_text.isdigit() else None
    shown = [run[0]]
    for index, line in enumerate(run):
        if EXIT in line:
            values = _parse(line)
            how = values.get("how", "?")
            if how == "clean":
                return Ending(
                    "clean-exit",
                    pid,
                    f"pid {pid} stopped cleanly (exit {values.get('code', '0')}) at {line.split(' ', 1)[0]}",
                    shown + [line],
                )
            context = [text for text in run[max(1, index - 12) : index] if text.strip()]
            kind = "panic" if how == "panic" else "error-exit"
            what = "panicked (an unexpected exception)" if kind == "panic" else "exited on an error"
            return Ending(
                kind,
                pid,
                f"pid {pid} {what}: {values.get('error', '?')} (exit {values.get('code', '?')})",
                shown + context + [line],
            )
        fatal = _FATAL.search(line)
        if fatal:
            signal = _SIGNALS.get(fatal.group(1), fatal.group(1))
            return Ending(
                signal,
                pid,
                f"pid {pid} died of {signal} (Python's faulthandler: {line.strip()})",
                shown + run[index : index + 6],
            )
    tracebacks = [index for index, line in enumerate(run) if line.startswith("Traceback (most recent call last)")]
    if alive:
        return Ending("running", pid, f"pid {pid} is still running", shown)
    started = _when(run[0])
    said = [
        line.strip()
        for line in kernel
        if (match := _OOM.search(line))
        and pid is not None
        and int(match.group(1) or match.group(3)) == pid
        and not (started is not None and (at := _when(line)) is not None and at < started)
    ]  # a reused pid
    if said:
        return Ending("oom-kill", pid, f"the kernel killed pid {pid} for want of memory (OOM kill)", shown + said)
    ending = [text for text in run if text.strip()][-1:]
    if tracebacks and alive is False and ending and _EXCEPTION.match(ending[0]) and len(run) - tracebacks[-1] < 60:
        # A traceback at the very end, the process gone: it died of it (a handled one is followed by more log).
        tail = [text for text in run[tracebacks[-1] :] if text.strip()][-14:]
        return Ending("panic", pid, f"pid {pid} died after a traceback: {ending[0].strip()}", shown + tail)
    if alive is False:
        kernel_said = kernel_note or "the kernel log names no OOM kill of it"
        last = [text for text in run[-3:] if text.strip() and text not in shown]
        return Ending(
            "killed",
            pid,
            f"pid {pid} is gone and its log ends without an exit line, a traceback or a "
            f"fatal signal; {kernel_said}: it was killed with SIGKILL (or the host lost "
            "power)",
            shown + last,
        )
    return Ending(
        "unknown", pid, f"the log of pid {pid} has no exit line; whether it still runs is not known here", shown
    )


def _when(line: str) -> datetime | None:
    """The ISO time a log line (``2026-12-06T05:46:26+00:00 ...``) or a kernel line (``...T08:03:35,97+00:00``)
    starts with."""
    head = line.split(" ", 1)[0].replace(",", ".")
    try:
        moment = datetime.fromisoformat(head)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def read_log_tail(path: Path, limit: int = TAIL_BYTES) -> list[str]:
    """The last ``limit`` bytes of ``path`` as lines (the first, partial line dropped)."""
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - limit))
        data = handle.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if size > limit and lines else lines


def _run(command: list[str]) -> list[str] | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.splitlines() if done.returncode == 0 else None


def journal_lines(unit: str, count: int = 400) -> list[str] | None:
    """The last ``count`` lines systemd's journal holds for ``unit`` (None: no journal readable here)."""
    return _run(["journalctl", "--no-pager", "-q", "-o", "cat", "-n", str(count), "-u", unit])


def kernel_oom_kills() -> tuple[list[str], str]:
    """(the kernel's OOM-kill lines, each led by its ISO wall time; how they were read or why not); never raises."""
    lines = _run(["dmesg"])
    if lines is not None:
        return [_wall_stamped(line) for line in lines if _OOM.search(line)], "dmesg read"
    lines = _run(["journalctl", "-k", "--no-pager", "-q", "-o", "short-iso", "-n", "5000"])
    if lines is not None:
        return [line for line in lines if _OOM.search(line)], "journalctl read"
    return [], "the kernel log is not readable here (dmesg and journalctl -k refused)"


def _wall_stamped(line: str) -> str:
    """A ``[seconds since boot] message`` dmesg line led by its wall time.

    The kernel stamps its log with its monotonic clock; ``dmesg --time-format=iso`` turns that into
    wall time from an estimate of the boot moment that was seen here 0.7 s early, which made an OOM
    kill a second after a node's start look older than the node (and so a reused pid's). The offset
    between the wall clock and CLOCK_MONOTONIC, read now, converts it exactly (both exclude suspend).
    """
    match = _DMESG_STAMP.match(line)
    if match is None:
        return line
    offset = time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)
    moment = datetime.fromtimestamp(offset + float(match.group(1)), UTC)
    return f"{moment.isoformat()} {match.group(2)}"
