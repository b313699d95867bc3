"""The body of every ``POST /admin/<action>``, parsed strictly (issue 18, item 7).

JSON's types are loose for Python: ``true`` is an ``int`` to ``isinstance``, ``1e400`` is
``inf``, a 64 KiB body of ``[`` overflows the parser's recursion. Each action therefore has one
model with strict types and no unknown fields; anything else is a 400 naming the field. A query
string works as the body for the fields listed in ``_QUERY_FIELDS`` (``/admin/rejoin?primary=URL``),
converted from text explicitly.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engines.node.errors import NodeBadRequestError
from engines.node.handover import MAX_HOLD_SECONDS
from engines.node.state import MAX_EPOCH

__all__ = [
    "AdminBody",
    "PromoteBody",
    "ApplyBody",
    "ApplyRow",
    "FenceBody",
    "RejoinBody",
    "DemoteBody",
    "BackupBody",
    "CheckpointBody",
    "ReduceCacheBody",
    "WalArchiveBody",
    "ScrubBody",
    "parse_admin_body",
    "admin_body",
]

_MAX_TEXT = 4096  # a path, a URL or a reason; longer is not one
_MAX_KEY_B64 = 8 * 1024  # base64 of a key, with room (check_user_key bounds the key itself)


class AdminBody(BaseModel):
    """An action that takes no arguments: only ``{}`` (or no body)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def audit_args(self) -> dict[str, Any]:
        """What the admin audit log keeps of the call's arguments."""
        return self.model_dump(exclude_defaults=True)


class PromoteBody(AdminBody):
    hold_writes_seconds: float | None = Field(default=None, gt=0, le=MAX_HOLD_SECONDS, allow_inf_nan=False)


class ApplyRow(AdminBody):
    key: str = Field(max_length=_MAX_KEY_B64)
    value: str | None = None
    expect: str | None = None


class ApplyBody(AdminBody):
    rows: list[ApplyRow] = Field(max_length=1_000_000)

    def audit_args(self) -> dict[str, Any]:
        return {"rows": len(self.rows)}  # the values are the application's data: not the audit log's


class FenceBody(AdminBody):
    reason: str | None = Field(default=None, max_length=1024)
    epoch: int | None = Field(default=None, ge=0, le=MAX_EPOCH)
    force: bool = False


class DemoteBody(AdminBody):
    follow: str = Field(max_length=_MAX_TEXT)


class RejoinBody(AdminBody):
    primary: str = Field(max_length=_MAX_TEXT)
    dry_run: bool = False


class BackupBody(AdminBody):
    repo: str | None = Field(default=None, max_length=_MAX_TEXT)
    incremental: bool = False


class CheckpointBody(AdminBody):
    dest: str | None = Field(default=None, max_length=_MAX_TEXT)


class ReduceCacheBody(AdminBody):
    cache_bytes: int = Field(default=8 * 2**20, ge=0, le=2**50)


class WalArchiveBody(AdminBody):
    repo: str | None = Field(default=None, max_length=_MAX_TEXT)


class ScrubBody(AdminBody):
    rate: float | None = Field(default=None, ge=0, le=2**50, allow_inf_nan=False)


_MODELS: dict[str, type[AdminBody]] = {
    "promote": PromoteBody,
    "apply": ApplyBody,
    "fence": FenceBody,
    "demote": DemoteBody,
    "rejoin": RejoinBody,
    "backup": BackupBody,
    "checkpoint": CheckpointBody,
    "reduce-cache": ReduceCacheBody,
    "wal-archive": WalArchiveBody,
    "scrub": ScrubBody,
}
_QUERY_FIELDS: dict[str, dict[str, type]] = {"rejoin": {"primary": str, "dry_run": bool}}
_TRUTH = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def parse_admin_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of an admin request (empty: ``{}``)."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise NodeBadRequestError("the admin request body is not JSON (or nests too deep)") from None
    if not isinstance(body, dict):
        raise NodeBadRequestError("the admin request body must be a JSON object")
    return body


def admin_body(action: str, body: dict[str, Any], query: dict[str, str]) -> AdminBody:
    """Validate ``body`` (plus the query string, where allowed) for ``action``."""
    allowed = _QUERY_FIELDS.get(action, {})
    for name, text in query.items():
        kind = allowed.get(name)
        if kind is None:
            raise NodeBadRequestError(
                f"{action}: unexpected query parameter {name!r}", hint="send the arguments as a JSON object body"
            )
        if kind is bool:
            if text.lower() not in _TRUTH:
                raise NodeBadRequestError(f"{action}: {name} must be true or false, not {text[:40]!r}")
            body.setdefault(name, _TRUTH[text.lower()])
        else:
            body.setdefault(name, text)
    model = _MODELS.get(action, AdminBody)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        given = repr(error.get("input"))
        raise NodeBadRequestError(
            f"{action}: {field}: {error['msg'].lower()} (got {given[:60]})",
            hint=f"fields of {action}: {', '.join(model.model_fields) or 'none'}",
        ) from None
