"""A real ``drconsole node serve``'s /metrics passes ``promtool check metrics`` with no lint finding,
and exposes every metric the shipped rules read."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from integration.prometheus.rules_support import alert_rules, promtool

from drills.node import NodeProcess
from engines.node.metrics import METRIC_NAMES

pytestmark = pytest.mark.usefixtures("prom_tools")


@pytest.fixture(scope="module")
def metrics_text(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bytes]:
    """/metrics of a real node after traffic (one node for the module: starting one costs a second)."""
    workdir = tmp_path_factory.mktemp("node")
    node = NodeProcess(workdir / "n1", "lsm", workdir / "n1.log").start()
    try:
        with httpx.Client(base_url=node.url, timeout=10) as client:
            # Writes, reads, a miss and a refused admin action: every histogram and counter has samples.
            for number in range(5):
                client.put(f"/kv/k{number}", content=b"v" * 64).raise_for_status()
                client.get(f"/kv/k{number}").raise_for_status()
            assert client.get("/kv/missing").status_code == 404
            client.post("/admin/no-such-action")
            response = client.get("/metrics")
    finally:
        node.stop()
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    yield response.content


def test_node_metrics_pass_promtool_lint(metrics_text: bytes) -> None:
    text = metrics_text
    result = promtool("check", "metrics", stdin=text)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # promtool reads these metrics, not an empty page: the DESIGN.md names are all there.
    exposed = set(re.findall(rb"^# TYPE (\S+)", text, re.MULTILINE))
    assert {name.encode() for name in METRIC_NAMES} <= exposed


def test_promtool_lint_does_flag_a_badly_named_metric() -> None:
    """The check above can fail: the same promtool flags a counter without _total and a non-base unit."""
    bad = (
        b"# HELP drconsole_errors Errors.\n# TYPE drconsole_errors counter\ndrconsole_errors 1\n"
        b"# HELP drconsole_latency_milliseconds Latency.\n# TYPE drconsole_latency_milliseconds gauge\n"
        b"drconsole_latency_milliseconds 3\n"
    )
    result = promtool("check", "metrics", stdin=bad)
    assert result.returncode != 0
    assert '"_total" suffix' in result.stdout + result.stderr
    assert 'base unit "seconds"' in result.stdout + result.stderr


def test_every_metric_the_rules_read_is_exposed_by_a_node(metrics_text: bytes) -> None:
    text = metrics_text.decode()
    samples = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.MULTILINE))
    read = {name for rule in alert_rules().values() for name in re.findall(r"\bdrconsole_[a-z_]+", rule["expr"])}
    assert read, "the rules read no drconsole_ metric"
    assert read <= samples, f"rules read metrics no node exposes: {sorted(read - samples)}"
