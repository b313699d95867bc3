"""drconsole.toml: the console's configuration, validated; a bad field names file, line and field.

    [console]      refresh_seconds, theme, source ("auto" | "local" | "http"), report_dir
    [thresholds]   the reference alert rules (fleet.alerts.Thresholds)
    [[node]]       name, engine, url, token_file, data_dir, backup_repo, backup_copies, role, upstream, group, log_file
    [notify]       webhook
    [escalation]   path
    [prometheus]   url, timeout_seconds, rate_window   (the fleet from PromQL; direct polling is the fallback)
    [alertmanager] url, timeout_seconds                (firing alerts merged in; silences)

Relative paths (data_dir, token_file, backup_repo, log_file, report_dir) are relative to the file's directory.
A ``token_file`` is only named here; it is read when a request to the node needs the token.
``ConfigError`` is a ``DrconsoleError`` with exit code 2 (bad input, not an engine failure), so the
CLI renders it like every other bad input: one line, no traceback.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engines.errors import DrconsoleError
from fleet import NodeSpec, Thresholds
from playbooks.toml_locate import field_name, locate

__all__ = ["ConfigError", "ConsoleConfig", "ConsoleSection", "load_config", "locate"]


class ConfigError(DrconsoleError, ValueError):
    """A configuration file that cannot be used: ``path``, ``line`` and ``field`` say where."""

    exit_code = 2

    def __init__(
        self, message: str, *, path: Path, line: int | None, field: str | None, hint: str | None = None
    ) -> None:
        where = f"{path}:{line}" if line else str(path)
        text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        super().__init__(text, hint=hint or "fix that line and run again")
        self.path = path
        self.line = line
        self.field = field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsoleSection(_Section):
    refresh_seconds: float = Field(default=1.0, gt=0, le=3600)
    theme: str = "dark"
    source: str = "auto"
    report_dir: Path | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value not in ("auto", "local", "http"):
            raise ValueError(f"source must be auto, local or http, not {value!r}")
        return value


_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _service_url(value: str | None) -> str | None:
    """An http(s) base URL with a host; the trailing slash dropped (paths are appended to it)."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f'url must be http:// or https:// with a host, e.g. "http://127.0.0.1:9090", not {value!r}')
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0..65535
    except ValueError as exc:
        raise ValueError(f"url has a bad port: {value!r}") from exc
    if parts.query or parts.fragment:
        raise ValueError(f"url must not carry a query or fragment: {value!r}")
    return value.rstrip("/")


class PrometheusSection(_Section):
    """Where the fleet snapshot comes from when set: PromQL instead of polling every node."""

    url: str | None = None
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    rate_window: str = "1m"  # the window of rate() for p95 latencies and error rates

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _service_url(value)

    @field_validator("rate_window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f'rate_window must be a Prometheus duration such as "1m" or "30s", not {value!r}')
        return value


class AlertmanagerSection(_Section):
    """Where firing alerts are read and silences made."""

    url: str | None = None
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _service_url(value)


class NotifySection(_Section):
    webhook: str | None = None


class EscalationSection(_Section):
    path: list[str] = Field(default_factory=list)


class ConsoleConfig(_Section):
    console: ConsoleSection = Field(default_factory=ConsoleSection)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    node: list[NodeSpec] = Field(default_factory=list)
    notify: NotifySection = Field(default_factory=NotifySection)
    escalation: EscalationSection = Field(default_factory=EscalationSection)
    prometheus: PrometheusSection = Field(default_factory=PrometheusSection)
    alertmanager: AlertmanagerSection = Field(default_factory=AlertmanagerSection)
    path: Path | None = Field(default=None, exclude=True)  # the file it came from

    @model_validator(mode="after")
    def _nodes_agree(self) -> ConsoleConfig:
        names = [spec.name for spec in self.node]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise _FieldError(("node", index, "name"), f"node name {name!r} is used twice")
        for index, spec in enumerate(self.node):
            if spec.upstream is not None and spec.upstream not in names:
                raise _FieldError(
                    ("node", index, "upstream"),
                    f"upstream {spec.upstream!r} is not a configured node ({', '.join(names)})",
                )
        by_name = {spec.name: spec for spec in self.node}
        for index, spec in enumerate(self.node):
            upstream = by_name.get(spec.upstream or "")
            if spec.group and upstream is not None and upstream.group and upstream.group != spec.group:
                raise _FieldError(
                    ("node", index, "group"),
                    f"group {spec.group!r} differs from the group {upstream.group!r} of its upstream "
                    f"{upstream.name!r}: a standby replicates within its primary's group",
                )
        return self

    @property
    def nodes(self) -> list[NodeSpec]:
        return self.node

    def source_options(self) -> dict[str, Any]:
        """The keyword arguments of ``fleet.fleet_source`` this config asks for.

        One place, so the console and the CLI's triage read the fleet the same way (Prometheus,
        Alertmanager, thresholds, the source preference).
        """
        return {
            "thresholds": self.thresholds,
            "prefer": self.console.source,
            "prometheus_url": self.prometheus.url,
            "alertmanager_url": self.alertmanager.url,
            "prometheus_timeout_seconds": self.prometheus.timeout_seconds,
            "alertmanager_timeout_seconds": self.alertmanager.timeout_seconds,
            "rate_window": self.prometheus.rate_window,
        }


class _FieldError(ValueError):
    """A cross-field problem with the exact location pydantic cannot know."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def absolute(value: Any) -> Any:
        if not isinstance(value, str) or not value or Path(value).is_absolute() or "://" in value:
            return value  # absolute, or a URL (backup_repo = "sftp://...")
        return str((base / value).resolve())

    nodes = data.get("node")
    if isinstance(nodes, list):
        for node in nodes:
            if isinstance(node, dict):
                for key in ("data_dir", "token_file", "backup_repo", "log_file"):
                    if key in node:
                        node[key] = absolute(node[key])
                if isinstance(node.get("backup_copies"), list):
                    node["backup_copies"] = [absolute(copy) for copy in node["backup_copies"]]
    console = data.get("console")
    if isinstance(console, dict) and "report_dir" in console:
        console["report_dir"] = absolute(console["report_dir"])
    return data


def read_toml(path: Path, error: type[ConfigError], *, missing: str, hint: str) -> tuple[str, dict[str, Any]]:
    """The text and the parsed tables of the TOML file ``path``; ``error`` (file, line) when it cannot be.

    The text is kept so that validation errors can be located by line (playbooks.toml_locate).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(missing, path=path, line=None, field=None, hint=hint) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot be read: {exc}", path=path, line=None, field=None) from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise error(
            f"not valid TOML: {exc}", path=path, line=int(match.group(1)) if match else None, field=None
        ) from exc


def load_config(path: str | Path) -> ConsoleConfig:
    """Read and validate ``path``; raises ``ConfigError`` (file, line, field) on any problem."""
    path = Path(path)
    text, data = read_toml(
        path,
        ConfigError,
        missing="the file does not exist",
        hint="check --config, or leave it out to use the default search",
    )
    data = _resolve_paths(data, path.parent.resolve())
    try:
        config = ConsoleConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _FieldError):
            loc, message = cause.loc, cause.message
        else:
            message = _message(error)
        raise ConfigError(message, path=path, line=locate(text, loc) or 1, field=field_name(loc)) from exc
    config = _with_running_demo(config, path)
    _book_tokens(config)
    return config.model_copy(update={"path": path})


def _with_running_demo(config: ConsoleConfig, path: Path) -> ConsoleConfig:
    """A demo workspace's config while its demo runs: its nodes at the URLs they serve, read as a fleet's are.

    The demo's file names no url (the ports change at every start) and reads the data dirs ("local"),
    which the serving nodes hold locked. Given it while the demo runs, a second console, ``status``
    or a playbook's ``--node`` would show a node without its live metrics and replication, and
    act on files it cannot have; through the URLs the running demo lists (config_lookup) they
    see and act on the nodes themselves. Any other config, or a demo that is not running: unchanged.
    """
    from console.config_lookup import demo_node_urls

    serving = demo_node_urls(path.parent)
    if not serving:
        return config
    nodes = [
        spec.model_copy(update={"url": serving[spec.name]}) if spec.url is None and spec.name in serving else spec
        for spec in config.node
    ]
    console = config.console.model_copy(update={"source": "auto"})
    return config.model_copy(update={"node": nodes, "console": console})


def _book_tokens(config: ConsoleConfig) -> None:
    """Each node's token file, for calls that name its URL only: a local run's failover fences and
    promotes the group's nodes (engines/node/tokens.py). Files are read when a request needs them."""
    from engines.node.tokens import book_token_file

    for node in config.node:
        if node.url and node.token_file:
            book_token_file(node.url, node.token_file)


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown field (a typo?)"
    if error["type"] == "missing":
        return "required field is missing"
    scalar = isinstance(error.get("input"), (str, int, float, bool))
    if scalar and error["type"] != "value_error":
        return f"{message} (got {error['input']!r})"
    return message
