"""From a playbook to the steps a run executes: includes expanded, parameters checked and typed.

``data-recovery`` includes ``recover-{backend}``: the plan holds the included playbook's steps,
named ``recover-rocksdb/repair``, in the place of the include. Inside them, ``steps.<id>`` in a
``when`` condition means the step of the same include.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.errors import EngineError
from playbooks.conditions import ROOTS, parse_condition
from playbooks.errors import NotApplicableError, ParameterError
from playbooks.loader import Library
from playbooks.models import Param, Playbook, Step

__all__ = ["PlannedStep", "build_plan", "resolve_params", "static_condition", "plan_from_json"]


@dataclass(frozen=True)
class PlannedStep:
    id: str
    step: Step
    scope: str = ""  # "recover-rocksdb/" inside an include
    source: str = ""  # the playbook the step comes from

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "source": self.source, "step": self.step.model_dump()}


def plan_from_json(rows: list[dict[str, Any]]) -> list[PlannedStep]:
    return [
        PlannedStep(row["id"], Step.model_validate(row["step"]), row.get("scope", ""), row.get("source", ""))
        for row in rows
    ]


def build_plan(library: Library, playbook: Playbook, backend: str | None) -> list[PlannedStep]:
    plan: list[PlannedStep] = []
    for step in playbook.steps:
        if step.include is None:
            plan.append(PlannedStep(step.id, step, "", playbook.id))
            continue
        if "{backend}" in step.include and backend is None:
            raise NotApplicableError(
                f"{playbook.id} chooses its steps by backend, and the target's backend is unknown (no data dir?)",
                hint="restore the data dir first (playbook `restore`)",
            )
        included = library.get(step.include.replace("{backend}", backend or ""))
        scope = f"{included.id}/"
        for inner in included.steps:
            merged = inner
            if step.when:
                when = f"{step.when} and {inner.when}" if inner.when else step.when
                merged = inner.model_copy(update={"when": when})
            plan.append(PlannedStep(scope + inner.id, merged, scope, included.id))
    return plan


_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def _convert(name: str, spec: Param, value: Any) -> Any:
    if value is None:
        return None
    text = str(value)
    if spec.type == "int":
        try:
            return int(text)
        except ValueError:
            raise ParameterError(f"--param {name}={text}: expected a whole number") from None
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ParameterError(f"--param {name}={text}: expected yes or no")
    if spec.type == "path":
        if "://" in text:  # a repository on another host (sftp://USER@HOST/PATH) is a place too, kept as a URL
            from engines.backup.location import location_text

            try:
                return location_text(text)
            except EngineError as exc:
                raise ParameterError(f"--param {name}={text}: {exc.message}", hint=exc.hint) from None
        return str(Path(text).expanduser().absolute())
    if spec.type == "time":
        from engines.backup import parse_iso_utc

        try:
            parse_iso_utc(text)
        except EngineError as exc:
            raise ParameterError(
                f"--param {name}={text}: {exc.message}", hint="use ISO 8601, e.g. 2026-11-23T14:30:00Z"
            ) from None
        return text
    if spec.choices and text not in spec.choices:
        raise ParameterError(f"--param {name}={text}: choose one of {', '.join(spec.choices)}")
    return text


def resolve_params(playbook: Playbook, given: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Typed values of every parameter of ``playbook`` (None for an optional one not given)."""
    unknown = sorted(set(given) - set(playbook.params))
    if unknown:
        accepted = ", ".join(sorted(playbook.params)) or "none"
        raise ParameterError(f"{playbook.id} takes no parameter {unknown[0]!r}", hint=f"it takes: {accepted}")
    values: dict[str, Any] = {}
    for name, spec in playbook.params.items():
        raw = given.get(name)
        if raw is None and defaults and defaults.get(name) is not None:
            raw = defaults[name]
        if raw is None:
            raw = spec.default
        if raw is None and spec.required:
            help_text = f" ({spec.help})" if spec.help else ""
            raise ParameterError(f"{playbook.id} needs --param {name}=...{help_text}")
        values[name] = _convert(name, spec, raw)
    return values


def static_condition(text: str | None, params: dict[str, Any], backend: str | None) -> bool | None:
    """The value of a condition that depends only on parameters and the backend; None when it needs results."""
    if text is None:
        return True
    condition = parse_condition(text)
    if any(reference[0] not in ("params", "backend") for reference in condition.references()):
        return None
    assert set(ROOTS) >= {"params", "backend"}
    return condition.evaluate({"params": params, "backend": backend})
