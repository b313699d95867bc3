"""Helpers of the promsource tests (importable as ``promsource_kit``): a real fleet behind a real
Prometheus and Alertmanager, on loopback (see ``promstack``).

``Stack``: ``orders-a`` (primary) and ``orders-b`` (its standby), two ``drconsole node serve``
processes; a Prometheus scraping both every second with the shipped alert rules; an Alertmanager
receiving its alerts. ``start_stack`` starts one and stops whatever it started if a part fails; the conftest gives each
test module its own (module scope: starting one costs a few seconds) and stops it at the end.

The rules are a copy of deploy/prometheus/drconsole-alerts.yml with ``DrconsoleNodeDown``'s
``for: 30s`` cut to ``for: 2s``: the shipped 30 s hold would make each node-down test wait half
a minute for what the hold only delays; the expression, labels and annotations are the shipped ones.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import promstack

from fleet import NodeSpec

ROOT = Path(__file__).resolve().parents[3]
SHIPPED_RULES = ROOT / "deploy" / "prometheus" / "drconsole-alerts.yml"
NODE_DOWN_FOR = "2s"


def shortened_rules(dest: Path) -> Path:
    """The shipped rules with the node-down hold time cut to ``NODE_DOWN_FOR`` (see the module docstring)."""
    text = SHIPPED_RULES.read_text(encoding="utf-8")
    head, marker, tail = text.partition("- alert: DrconsoleNodeDown")
    assert marker, "the shipped rules have no DrconsoleNodeDown"
    rule, sep, rest = tail.partition("- alert:")
    assert "for: 30s" in rule, "DrconsoleNodeDown's hold time changed: update NODE_DOWN_FOR's reasoning"
    dest.write_text(head + marker + rule.replace("for: 30s", f"for: {NODE_DOWN_FOR}") + sep + rest, encoding="utf-8")
    return dest


@dataclass
class Node:
    name: str
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *extra: str) -> Node:
        log = open(self.data_dir.parent / f"{self.name}.log", "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "console",
                "node",
                "serve",
                "--engine",
                "lsm",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--name",
                self.name,
                "--log-level",
                "warning",
                *extra,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        log.close()
        promstack.wait_for(
            lambda: httpx.get(f"{self.url}/health", timeout=0.5).status_code in (200, 503),
            30,
            f"{self.name} answering /health",
        )
        return self

    def kill(self) -> None:
        """``kill -9``: the node vanishes without a word, as a crashed host does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Stack:
    workdir: Path
    primary: Node
    standby: Node
    prometheus: promstack.PromProcess
    alertmanager: promstack.AmProcess

    def stop(self) -> None:
        for process in (self.prometheus, self.alertmanager, self.standby, self.primary):
            process.stop()

    def config(
        self,
        path: Path,
        *,
        refresh_seconds: float = 0.3,
        prometheus_url: str | None = None,
        alertmanager_url: str | None = None,
    ) -> Path:
        """A drconsole.toml for this fleet (the two nodes with their URLs and data dirs)."""
        path.write_text(
            f"""
[console]
refresh_seconds = {refresh_seconds}

[prometheus]
url = "{prometheus_url or self.prometheus.url}"
timeout_seconds = 1.0

[alertmanager]
url = "{alertmanager_url or self.alertmanager.url}"
timeout_seconds = 1.0

[[node]]
name = "orders-a"
url = "{self.primary.url}"
data_dir = "{self.primary.data_dir}"

[[node]]
name = "orders-b"
url = "{self.standby.url}"
data_dir = "{self.standby.data_dir}"
role = "standby"
upstream = "orders-a"
""",
            encoding="utf-8",
        )
        return path

    def specs(self) -> list[NodeSpec]:
        return [
            NodeSpec(name="orders-a", url=self.primary.url, data_dir=self.primary.data_dir),
            NodeSpec(
                name="orders-b",
                url=self.standby.url,
                data_dir=self.standby.data_dir,
                role="standby",
                upstream="orders-a",
            ),
        ]

    def scraped(self) -> None:
        """Until Prometheus' last scrape of both nodes worked."""
        promstack.wait_for(
            lambda: len(promstack.query(self.prometheus.url, "up == 1")) == 2, 30, "Prometheus scraping both nodes"
        )


class Junk:
    """A loopback HTTP server that answers every request with ``mode``: "html", "error-json",
    "wrong-json" (valid JSON, not the API's shape) or "hang" (never answers in time)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        junk = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                junk.requests += 1
                if junk.mode == "hang":
                    time.sleep(3)
                    return
                if junk.mode == "html":
                    status, body, kind = 200, b"<html><body>502 upstream gone</body></html>", "text/html"
                elif junk.mode == "error-json":
                    status, body, kind = 500, b'{"error": "storage is read-only"}', "application/json"
                else:
                    status, body, kind = 200, b'{"status": "success", "data": [1, 2, 3]}', "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_stack(workdir: Path) -> Stack:
    """Two nodes, an Alertmanager and a Prometheus scraping the nodes; all stopped again if one fails."""
    promstack.ensure_installed()
    primary = Node("orders-a", workdir / "orders-a", promstack.free_port())
    standby = Node("orders-b", workdir / "orders-b", promstack.free_port())
    started: list[Node | promstack.PromProcess | promstack.AmProcess] = []
    try:
        started.append(primary.start())
        started.append(standby.start("--follow", primary.url))
        alertmanager = promstack.start_alertmanager(workdir / "am")
        started.append(alertmanager)
        prometheus = promstack.start_prometheus(
            workdir / "prom",
            targets=[primary.url, standby.url],
            rule_files=[shortened_rules(workdir / "rules.yml")],
            alertmanager_url=alertmanager.url,
        )
        started.append(prometheus)
        stack = Stack(workdir, primary, standby, prometheus, alertmanager)
        stack.scraped()
    except BaseException:
        for process in reversed(started):
            process.stop()
        raise
    return stack
