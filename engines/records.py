"""Plain dataclass records spelled like the pydantic models they were.

Every command that opens an engine (``backup create`` takes its checkpoint through one) used to
import pydantic for the engine's options and reports and built them: ~110 ms of a short command's
start-up on a 2-core machine, more than packing a small data dir. The records an engine open touches are
therefore dataclasses; ``Record`` gives them the few pydantic methods their callers use
(``model_dump``, ``model_dump_json``, ``model_copy``), and ``check_int``/``check_bool``/``check_choice``
validate input much as pydantic's lax mode did (whole numbers as text or floats, boolean words; a
bool is no number here), with one-line messages that name the field.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, replace
from typing import Any, Self

__all__ = ["Record", "check_bool", "check_choice", "check_int"]


class Record:
    """``model_dump``/``model_dump_json``/``model_copy`` for a dataclass (nested records included)."""

    __slots__ = ()

    def model_dump(self, *, mode: str = "python", exclude: Collection[str] = ()) -> dict[str, Any]:
        data: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        for name in exclude:
            data.pop(name, None)
        # "json": only JSON types, as pydantic gives them (tuples become lists).
        return json.loads(json.dumps(data)) if mode == "json" else data

    def model_dump_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.model_dump(), indent=indent)

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        return replace(self, **(update or {}))  # type: ignore[type-var]


def check_int(name: str, value: object, *, ge: int | None = None, le: int | None = None) -> int:
    """``value`` as an int: an int, a whole float or a decimal string; bounds inclusive."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value)
    if number is None:
        raise ValueError(f"{name}: should be a whole number, not {value!r}")
    if ge is not None and number < ge:
        raise ValueError(f"{name}: should be >= {ge}, not {number}")
    if le is not None and number > le:
        raise ValueError(f"{name}: should be <= {le}, not {number}")
    return number


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def check_bool(name: str, value: object) -> bool:
    """``value`` as a bool: a bool, 0 or 1, or a word such as "true"/"no"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name}: should be true or false, not {value!r}")


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: should be one of {', '.join(sorted(choices))}, not {value!r}")
    return value
