"""``NodeSpec``: one node of the fleet as configured (the ``[[node]]`` tables of drconsole.toml).

A node is read over HTTP when it has a ``url`` and from its data directory when it has a
``data_dir`` (both may be given: the panes prefer the URL). Playbooks run on the node's own agent
whenever it has a ``url`` (``playbooks.agent.runner_for``), else on the local ``data_dir``.
``token_file`` names the file holding the node's bearer token; it is read when a request needs
it, never stored in the spec and never logged.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from engines.system_paths import system_directory

__all__ = ["NodeSpec", "ENGINES", "ROLES"]

ENGINES = ("cow", "lsm", "rocksdb")
ROLES = ("primary", "standby")


class NodeSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    engine: str | None = None
    url: str | None = None
    data_dir: Path | None = None
    token_file: Path | None = None  # the node's bearer token (admin API and agent), read when needed
    backup_repo: Path | None = None
    backup_copies: list[str] = []  # repositories that also get every backup and WAL segment (engines/backup/copies.py)
    role: str = "primary"
    upstream: str | None = None  # the name of the node a standby follows
    group: str | None = None  # replication group; default: from upstream and the nodes' /replication and /peers
    log_file: Path | None = None  # its `node serve --log-file`: evidence of how its process ended

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or not value.strip() or any(char.isspace() for char in value):
            raise ValueError('a node name is one word, e.g. "orders-a"')
        return value

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str | None) -> str | None:
        if value is not None and value not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {value!r}")
        return value

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {value!r}")
        return value

    @field_validator("data_dir", "backup_repo")
    @classmethod
    def _not_a_system_directory(cls, value: Path | None) -> Path | None:
        why = None if value is None else system_directory(value)
        if why is not None:
            raise ValueError(
                f"{why}: a data dir or repository must be a directory of its own (a restore moves what is there aside)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, not {value!r}")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _somewhere(self) -> NodeSpec:
        if self.url is None and self.data_dir is None:
            raise ValueError(f"node {self.name!r} needs a url or a data_dir (or both)")
        if self.upstream == self.name:
            raise ValueError(f"node {self.name!r} cannot follow itself")
        return self
