"""The playbook models: a playbook is ordered steps, a step names an action from the registry.

A playbook is data (``playbooks/library/<id>.toml``); these models say what a valid one is. The
checks that need the action registry or the rest of the library (does the action exist, does an
include name a playbook) live in ``loader.py``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Severity", "OnFailure", "Param", "Step", "Playbook", "SEVERITIES", "ID_PATTERN"]

Severity = Literal["P0", "P1", "P2", "P3"]
OnFailure = Literal["stop", "retry", "continue", "rollback"]
SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")
ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
Backend = Literal["cow", "lsm", "rocksdb"]


class Param(BaseModel):
    """One parameter a playbook takes (``--param NAME=VALUE`` on the CLI)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["str", "int", "bool", "path", "time"] = "str"
    required: bool = False
    default: str | int | bool | None = None
    choices: list[str] | None = None
    help: str = ""


class Step(BaseModel):
    """One step: an ``action`` (or the steps of another playbook, ``include``) and how to treat it.

    ``include`` may contain ``{backend}``: ``data-recovery`` dispatches to ``recover-{backend}``.
    ``verify`` names a read-only action run after the step; if it reports a problem the step failed.
    ``when`` is a condition (see ``conditions.py``); a false condition skips the step.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    title: str = ""
    action: str | None = None
    include: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    destructive: bool = False
    # A check whose finding ("verify found a problem") is information for later steps, not a failure.
    diagnostic: bool = False
    verify: str | None = None
    verify_args: dict[str, Any] = Field(default_factory=dict)
    on_failure: OnFailure = "stop"
    retries: int = Field(2, ge=0, le=10)
    when: str | None = None
    rollback: str | None = None
    rollback_args: dict[str, Any] = Field(default_factory=dict)
    note: str = ""

    @model_validator(mode="after")
    def _one_of_action_or_include(self) -> Step:
        if (self.action is None) == (self.include is None):
            raise ValueError("a step names exactly one of `action` or `include`")
        return self


class Playbook(BaseModel):
    """A recovery procedure: who it is for (backends, severity, target RTO), its parameters, its steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    severity: Severity
    target_rto_seconds: int = Field(gt=0)
    backends: list[Backend] = Field(min_length=1)
    summary: str = ""
    guide: str = ""  # the reference-guide procedure this implements
    target_may_be_missing: bool = False  # restores may target a data dir that is gone
    incident: bool = True  # a run opens (or joins) an incident; routine ones (backups) do not
    params: dict[str, Param] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Playbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self

    @property
    def destructive(self) -> bool:
        return any(step.destructive for step in self.steps)

    def summary_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "destructive": self.destructive,
            "backends": list(self.backends),
        }
