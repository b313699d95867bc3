"""Errors of the playbook layer: beside the engines' errors under the one root (the CLI maps exit codes once).

DrconsoleError                       engines/errors.py
└── PlaybookError
    ├── PlaybookInputError           -> 2
    │   ├── PlaybookFileError        a library file is malformed: file, line and field
    │   ├── UnknownPlaybookError     no playbook (or run, or incident) with that id
    │   ├── PlaybookNotAvailableError  the tree names it as pending (with why), not runnable
    │   ├── ParameterError           a missing, unknown or bad --param
    │   └── NotApplicableError       the playbook does not apply to the target's backend
    └── PlaybookRefusal              -> 4
        ├── ConfirmationRequired     a destructive step was not confirmed (--yes)
        └── ReadOnlyRefusal          a writing action in read-only mode
"""

from __future__ import annotations

from engines.errors import DrconsoleError

__all__ = [
    "PlaybookError",
    "PlaybookInputError",
    "PlaybookRefusal",
    "PlaybookFileError",
    "UnknownPlaybookError",
    "PlaybookNotAvailableError",
    "ParameterError",
    "NotApplicableError",
    "ConfirmationRequired",
    "ReadOnlyRefusal",
]


class PlaybookError(DrconsoleError):
    """A playbook, its parameters or its run refused or malformed; never an engine failure."""


class PlaybookInputError(PlaybookError, ValueError):
    exit_code = 2


class PlaybookRefusal(PlaybookError):
    exit_code = 4


class PlaybookFileError(PlaybookInputError):
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


class UnknownPlaybookError(PlaybookInputError):
    pass


class PlaybookNotAvailableError(PlaybookInputError):
    pass


class ParameterError(PlaybookInputError):
    pass


class NotApplicableError(PlaybookInputError):
    pass


class ConfirmationRequired(PlaybookRefusal):
    pass


class ReadOnlyRefusal(PlaybookRefusal):
    pass
