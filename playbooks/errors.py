"""Errors of the playbook layer, as members of the one engine hierarchy (so the CLI maps exit codes once).

    EngineError                          engines/errors.py
    ├── InvalidArgumentError             -> 2
    │   ├── PlaybookFileError            a library file is malformed: file, line and field
    │   ├── UnknownPlaybookError         no playbook (or run, or incident) with that id
    │   ├── PlaybookNotAvailableError    the playbook needs actions another issue brings
    │   ├── ParameterError               a missing, unknown or bad --param
    │   └── NotApplicableError           the playbook does not apply to the target's backend
    └── SafetyRefusal                    -> 4
        ├── ConfirmationRequired         a destructive step was not confirmed (--yes)
        └── ReadOnlyRefusal              a writing action in read-only mode
"""

from __future__ import annotations

from engines.errors import InvalidArgumentError, SafetyRefusal

__all__ = [
    "PlaybookFileError",
    "UnknownPlaybookError",
    "PlaybookNotAvailableError",
    "ParameterError",
    "NotApplicableError",
    "ConfirmationRequired",
    "ReadOnlyRefusal",
]


class PlaybookFileError(InvalidArgumentError):
    """A playbook or tree file that does not load. ``file``, ``line`` and ``field`` locate the fault."""

    def __init__(self, file: str, line: int | None, field: str | None, problem: str) -> None:
        where = file if line is None else f"{file}, line {line}"
        if field:
            where += f", field {field}"
        super().__init__(f"{where}: {problem}", hint="fix the file; nothing was run")
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem


class UnknownPlaybookError(InvalidArgumentError):
    pass


class PlaybookNotAvailableError(InvalidArgumentError):
    pass


class ParameterError(InvalidArgumentError):
    pass


class NotApplicableError(InvalidArgumentError):
    pass


class ConfirmationRequired(SafetyRefusal):
    pass


class ReadOnlyRefusal(SafetyRefusal):
    pass
