"""The users file of ``drconsole serve ssh``: who may connect, with which keys, in which role.

    [[user]]
    name = "alice"
    role = "responder"            # or "viewer": the read-only dashboard and no action at all
    keys = ["ssh-ed25519 AAAA... alice@laptop"]

Every problem is a ``UsersFileError`` (exit code 2) naming file, line and field, and nothing is
started. A key may belong to one user only: the key, not the name typed, says who connected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncssh
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from console.config import ConfigError, read_toml
from playbooks.toml_locate import field_name, locate

__all__ = ["ROLES", "User", "Users", "UsersFileError", "load_users"]

ROLES = ("responder", "viewer")
_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


class UsersFileError(ConfigError):
    """A users file that cannot be used (exit code 2): ``path``, ``line`` and ``field`` say where."""


class _UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    role: Literal["responder", "viewer"]
    keys: list[str] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"name {value!r} must be a login-like name (a-z, 0-9, _ . -, at most 32)")
        return value


class _UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: list[_UserEntry] = Field(min_length=1)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    keys: tuple[asyncssh.SSHKey, ...]


class Users:
    """The users by name; ``authenticate`` says whether a key is one of that user's."""

    def __init__(self, users: list[User], path: Path) -> None:
        self.path = path
        self.by_name = {user.name: user for user in users}

    def __len__(self) -> int:
        return len(self.by_name)

    def get(self, name: str) -> User | None:
        return self.by_name.get(name)

    def authenticate(self, name: str, key: asyncssh.SSHKey) -> User | None:
        user = self.by_name.get(name)
        if user is None:
            return None
        wanted = key.public_data
        return user if any(candidate.public_data == wanted for candidate in user.keys) else None


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (a typo?)"
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "literal_error":
        return f"unknown role {error.get('input')!r} (use one of {', '.join(ROLES)})"
    if error["type"] == "too_short":
        return "must not be empty"
    return str(error["msg"]).removeprefix("Value error, ")


def load_users(path: str | Path) -> Users:
    """Read and validate ``path``; raises ``UsersFileError`` (file, line, field) on any problem."""
    path = Path(path)
    text, data = read_toml(path, UsersFileError, missing="the users file does not exist", hint="check --users")
    try:
        parsed = _UsersFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = tuple(error["loc"])
        raise UsersFileError(
            _message(error), path=path, line=locate(text, where) or 1, field=field_name(where)
        ) from exc
    users: list[User] = []
    owners: dict[bytes, str] = {}
    for index, entry in enumerate(parsed.user):
        loc: tuple[str | int, ...] = ("user", index)
        if any(user.name == entry.name for user in users):
            loc = ("user", index, "name")
            raise UsersFileError(
                f"user {entry.name!r} is listed twice", path=path, line=locate(text, loc), field=field_name(loc)
            )
        keys = []
        for number, line in enumerate(entry.keys):
            loc = ("user", index, "keys", number)
            try:
                key = asyncssh.import_public_key(line)
            except (asyncssh.KeyImportError, ValueError) as exc:
                raise UsersFileError(
                    f"not an OpenSSH public key ({exc})",
                    path=path,
                    line=locate(text, loc),
                    field=field_name(loc),
                    hint='paste one line of a .pub file, e.g. "ssh-ed25519 AAAA... alice@laptop"',
                ) from exc
            owner = owners.setdefault(key.public_data, entry.name)
            if owner != entry.name:
                raise UsersFileError(
                    f"this key is already {owner!r}'s: a key must say who connected",
                    path=path,
                    line=locate(text, loc),
                    field=field_name(loc),
                )
            keys.append(key)
        users.append(User(entry.name, entry.role, tuple(keys)))
    return Users(users, path)
