"""How the CLI speaks: results on stdout (text, or exactly one JSON object), errors as one line on stderr.

An error is always rendered as ``drconsole: error: <what, where> (<what to do next>)``; in
``--json`` mode the same error is also printed on stdout as ``{"error": ..., "exit_code": N, ...}``
so that a script reading stdout always gets one object.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = [
    "Output",
    "output_for",
    "one_line",
    "EXIT_OK",
    "EXIT_PROBLEM",
    "EXIT_USAGE",
    "EXIT_UNREACHABLE",
    "EXIT_REFUSED",
]

EXIT_OK = 0
EXIT_PROBLEM = 1  # a check ran and found a problem
EXIT_USAGE = 2  # bad usage or bad input; nothing changed
EXIT_UNREACHABLE = 3  # target unreachable or cannot be opened
EXIT_REFUSED = 4  # refused for safety: read-only, fenced, not confirmed, would lose data


def one_line(text: str) -> str:
    """``text`` folded onto one line, so a message never spills over several."""
    return " ".join(str(text).split())


class Output:
    """The only way command handlers write to the terminal.

    Streams are looked up at each write, so a test that swaps ``sys.stdout`` sees everything.
    """

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.emitted = False  # one JSON object per command, never two
        self.last_error: str | None = None  # the last error reported (the audit records it)

    def result(self, payload: dict[str, Any], text: str | None = None) -> None:
        """Print a command's result: ``payload`` as JSON in ``--json`` mode, else ``text`` (if any)."""
        if self.json_mode:
            if self.emitted:
                raise RuntimeError("a command printed two JSON results")
            self.emitted = True
            sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")
        elif text is not None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def raw(self, data: bytes) -> None:
        """Write bytes as they are (a value that is not UTF-8 text), followed by a newline."""
        sys.stdout.flush()
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            sys.stdout.write(data.decode("utf-8", errors="backslashreplace") + "\n")
        else:
            buffer.write(data + b"\n")
            buffer.flush()

    def note(self, text: str) -> None:
        """One informational line on stderr (never on stdout, which may be JSON)."""
        sys.stderr.write(f"drconsole: {one_line(text)}\n")
        sys.stderr.flush()

    def error(self, message: str, *, hint: str | None, exit_code: int, kind: str = "error", **extra: Any) -> int:
        """Report a failure the documented way and return its exit code."""
        message = one_line(message)
        self.last_error = message
        line = f"drconsole: error: {message}"
        if hint:
            line += f" ({one_line(hint)})"
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        if self.json_mode and not self.emitted:
            self.emitted = True
            payload = {"error": message, "exit_code": exit_code, "kind": kind, "hint": hint, **extra}
            sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
        return exit_code


def output_for(args: argparse.Namespace, output: Output | None) -> Output:
    """The ``Output`` a handler writes to: ``main``'s, or (a handler called directly) one of its own."""
    return output if output is not None else Output(json_mode=bool(getattr(args, "json", False)))
