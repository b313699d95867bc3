"""A real Prometheus and Alertmanager for tests (Debian's ``prometheus`` and ``prometheus-alertmanager``).

Importable as ``promstack`` (``tests`` is on pytest's path). Every process starts on a free
127.0.0.1 port with its own storage under the caller's work dir, is polled for readiness with a
deadline, and is stopped by ``.stop()`` (terminate, then kill) or by leaving its ``with`` block.

API (kept stable; other test packages use it):
  ensure_installed()                      binaries present, installing them as root if missing
  start_prometheus(workdir, targets=[...], rule_files=[...], alertmanager_url=None,
                   scrape_interval="1s", evaluation_interval="1s") -> PromProcess
  start_alertmanager(workdir) -> AmProcess
  wait_for(predicate, timeout, what)      poll until truthy; AssertionError naming ``what``
  query(url, promql) -> list[dict]        /api/v1/query result vector
  targets(url) -> list[dict]              /api/v1/targets active targets
  prometheus_alerts(url) -> list[dict]    /api/v1/alerts (pending and firing, as Prometheus sees them)
  alertmanager_alerts(url) -> list[dict]  /api/v2/alerts (what reached Alertmanager)
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from drills.node import free_port

__all__ = [
    "AmProcess",
    "PromProcess",
    "alertmanager_alerts",
    "ensure_installed",
    "free_port",
    "prometheus_alerts",
    "query",
    "start_alertmanager",
    "start_prometheus",
    "targets",
    "wait_for",
]

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
PROMTOOL = "promtool"
BINARIES = (PROMTOOL, PROMETHEUS, ALERTMANAGER)
APT_PACKAGES = ("prometheus", "prometheus-alertmanager")
INSTALL_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "install-system-deps.sh"
INSTALL_LOCK = Path("/tmp/drconsole-system-deps.lock")
READY_TIMEOUT = 30.0

_installed = False


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except (httpx.HTTPError, OSError) as error:  # the server is not up yet, or went away
            last = error
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last value: {last!r})")
        time.sleep(interval)


# --- installing ------------------------------------------------------------------------------


def _missing() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def _install() -> None:
    # The same script as `make system-deps`: it keeps the packages from starting their daemons.
    result = subprocess.run(["sh", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        pytest.fail(
            f"{INSTALL_SCRIPT.name} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}",
            pytrace=False,
        )


def ensure_installed() -> None:
    """Make promtool, prometheus and prometheus-alertmanager available, or fail the test saying why."""
    global _installed
    if _installed:
        return
    missing = _missing()
    if missing:
        if os.geteuid() != 0:
            pytest.fail(
                f"{', '.join(missing)} not installed and not root: run `make system-deps` as root "
                f"(apt-get install --no-install-recommends {' '.join(APT_PACKAGES)})",
                pytrace=False,
            )
        # pytest-xdist workers each get here: one installs, the others wait and find it done.
        with INSTALL_LOCK.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _missing():
                _install()
        missing = _missing()
        if missing:
            pytest.fail(f"still missing after apt-get install: {', '.join(missing)}", pytrace=False)
    _installed = True


# --- processes -------------------------------------------------------------------------------


class _Server:
    """A server binary in its own session, with its output in ``log_path``."""

    name = "server"

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _start(self, timeout: float) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(self._ready, timeout, f"{self.name} on {self.url} ready")
        except AssertionError as error:
            self.stop()
            raise AssertionError(f"{error}\n--- {self.log_path} ---\n{self.log()[-3000:]}") from None

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
        return httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def __enter__(self) -> _Server:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class PromProcess(_Server):
    name = "prometheus"

    def __init__(self, workdir: Path, port: int, config_path: Path) -> None:
        super().__init__(workdir, port)
        self.config_path = config_path

    def _command(self) -> list[str]:
        return [
            PROMETHEUS,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]

    def __enter__(self) -> PromProcess:
        return self


class AmProcess(_Server):
    name = "alertmanager"

    def __init__(self, workdir: Path, port: int, config_path: Path) -> None:
        super().__init__(workdir, port)
        self.config_path = config_path

    def _command(self) -> list[str]:
        # --cluster.listen-address= turns off gossip, which would otherwise bind 9094 on all interfaces.
        return [
            ALERTMANAGER,
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def __enter__(self) -> AmProcess:
        return self


def _host_port(url: str) -> str:
    return httpx.URL(url).netloc.decode()


def _prometheus_config(
    targets: Iterable[str],
    rule_files: Iterable[Path],
    alertmanager_url: str | None,
    scrape_interval: str,
    evaluation_interval: str,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "scrape_timeout": scrape_interval,
        },
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "drconsole",
                "static_configs": [
                    {"targets": [_host_port(target) if "://" in target else target for target in targets]}
                ],
            }
        ],
    }
    if alertmanager_url is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [_host_port(alertmanager_url)]}]}]}
    return config


def _start_with_retry(make: Callable[[int], _Server], timeout: float) -> Any:
    """Start on a free port; retry on a new port if another process took it between probe and bind."""
    for attempt in range(3):
        server = make(free_port())
        try:
            server._start(timeout)
            return server
        except AssertionError as error:
            if "address already in use" not in str(error) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def start_prometheus(
    workdir: Path,
    *,
    targets: list[str],
    rule_files: list[Path] = [],  # noqa: B006 - read only
    alertmanager_url: str | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    timeout: float = READY_TIMEOUT,
) -> PromProcess:
    """A Prometheus scraping ``targets`` (``host:port`` or URLs) as job ``drconsole``.

    JSON is YAML, so the config is written with ``json`` (no YAML dependency)."""
    ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(
        json.dumps(
            _prometheus_config(targets, rule_files, alertmanager_url, scrape_interval, evaluation_interval), indent=2
        )
    )
    process: PromProcess = _start_with_retry(lambda port: PromProcess(workdir, port, config_path), timeout)
    return process


# Alertmanager groups alerts before notifying; these are short so a test sees them at once.
# /api/v2/alerts lists an alert as soon as it is received, whatever the route.
_ALERTMANAGER_CONFIG = {
    "route": {
        "receiver": "tests",
        "group_by": ["alertname", "instance"],
        "group_wait": "0s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    },
    "receivers": [{"name": "tests"}],
}


def start_alertmanager(workdir: Path, *, timeout: float = READY_TIMEOUT) -> AmProcess:
    ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(json.dumps(_ALERTMANAGER_CONFIG, indent=2))
    process: AmProcess = _start_with_retry(lambda port: AmProcess(workdir, port, config_path), timeout)
    return process


# --- HTTP API helpers ------------------------------------------------------------------------


def _get_json(url: str, params: dict[str, str] | None = None) -> Any:
    response = httpx.get(url, params=params, timeout=5.0)
    response.raise_for_status()
    return response.json()


def _data(url: str, params: dict[str, str] | None = None) -> Any:
    body = _get_json(url, params)
    if body.get("status") != "success":
        raise AssertionError(f"{url}: {body}")
    return body["data"]


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """Instant query; the result vector (each ``{"metric": {...}, "value": [ts, "v"]}``)."""
    data = _data(f"{url}/api/v1/query", {"query": promql})
    result: list[dict[str, Any]] = data["result"]
    return result


def targets(url: str) -> list[dict[str, Any]]:
    active: list[dict[str, Any]] = _data(f"{url}/api/v1/targets")["activeTargets"]
    return active


def prometheus_alerts(url: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = _data(f"{url}/api/v1/alerts")["alerts"]
    return alerts


def alertmanager_alerts(url: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = _get_json(f"{url}/api/v2/alerts")
    return alerts
