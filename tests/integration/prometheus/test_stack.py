"""End to end: a real Prometheus scrapes a real ``drconsole node serve`` with the shipped rules and
sends to a real Alertmanager; ``kill -9`` on the node makes DrconsoleNodeDown reach Alertmanager's
/api/v2/alerts, with the labels and the triage link the console reads."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import promstack
import pytest
from integration.prometheus.rules_support import RULES, alert_rules, rules_with_changes, seconds

import drills.node as drill_node
from drills.node import NodeProcess

FIRST_SCRAPE = 20.0  # Prometheus's first scrape of a new target comes within about 5 s


def _scraping(
    prometheus: Callable[..., promstack.PromProcess], node: NodeProcess, rules: Path, alertmanager: promstack.AmProcess
) -> tuple[promstack.PromProcess, str]:
    instance = f"127.0.0.1:{node.port}"
    prom = prometheus(targets=[instance], rule_files=[rules], alertmanager_url=alertmanager.url)
    promstack.wait_for(
        lambda: promstack.query(prom.url, f'up{{job="drconsole",instance="{instance}"}} == 1'),
        FIRST_SCRAPE,
        "first successful scrape of the node",
    )
    # The node's own metrics arrived, not only Prometheus's `up`.
    (role,) = promstack.query(prom.url, f'drconsole_role{{instance="{instance}",role="primary"}}')
    assert role["value"][1] == "1"
    return prom, instance


def _node_down(alertmanager: promstack.AmProcess, instance: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in promstack.alertmanager_alerts(alertmanager.url)
        if alert["labels"].get("alertname") == "DrconsoleNodeDown" and alert["labels"].get("instance") == instance
    ]


def _assert_shipped_labels(alert: dict[str, Any], instance: str) -> None:
    shipped = alert_rules()["DrconsoleNodeDown"]
    assert alert["labels"] == {
        "alertname": "DrconsoleNodeDown",
        "job": "drconsole",
        "instance": instance,
        **shipped["labels"],
    }
    assert alert["annotations"]["triage"] == "primary-down"
    assert alert["annotations"]["summary"] == f"drconsole node {instance} is down"
    assert alert["status"]["state"] == "active"


def _kill(node: NodeProcess) -> float:
    assert node.process is not None
    node.process.send_signal(signal.SIGKILL)
    assert node.reap() == -signal.SIGKILL
    return time.monotonic()


def test_killed_node_reaches_alertmanager_and_resolves_when_back(
    tmp_path: Path,
    node: Callable[[str], NodeProcess],
    alertmanager: promstack.AmProcess,
    prometheus: Callable[..., promstack.PromProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wiring, fast: the shipped rules with only DrconsoleNodeDown's `for` cut from 30 s to 2 s.

    The 30 s hold itself is proven by the promtool unit tests (drconsole-alerts.test.yml) and by the
    slow test below against a real Prometheus; this one proves, in seconds, that the scrape job, the
    `up` expression, the labels and the triage annotation reach Alertmanager and clear again."""
    rules = rules_with_changes(tmp_path / "rules", "DrconsoleNodeDown", **{"for": "2s"})
    started = node("n1")
    prom, instance = _scraping(prometheus, started, rules, alertmanager)
    assert _node_down(alertmanager, instance) == []

    _kill(started)
    (alert,) = promstack.wait_for(lambda: _node_down(alertmanager, instance), 30, "DrconsoleNodeDown in Alertmanager")
    _assert_shipped_labels(alert, instance)

    # The node comes back on the same port (and data dir): the alert resolves and leaves the list.
    monkeypatch.setattr(drill_node, "free_port", lambda: started.port)
    started.start()
    promstack.wait_for(
        lambda: promstack.query(prom.url, f'up{{instance="{instance}"}} == 1'),
        FIRST_SCRAPE,
        "the restarted node scraped",
    )
    promstack.wait_for(lambda: _node_down(alertmanager, instance) == [], 30, "DrconsoleNodeDown resolved")


@pytest.mark.slow
def test_killed_node_fires_the_shipped_rule_after_30_seconds(
    node: Callable[[str], NodeProcess],
    alertmanager: promstack.AmProcess,
    prometheus: Callable[..., promstack.PromProcess],
) -> None:
    """The shipped rules unchanged: pending at once, in Alertmanager only after the 30 s `for`."""
    hold = seconds(alert_rules()["DrconsoleNodeDown"]["for"])
    started = node("n1")
    prom, instance = _scraping(prometheus, started, RULES, alertmanager)

    killed = _kill(started)

    def pending() -> bool:
        return any(
            alert["labels"]["alertname"] == "DrconsoleNodeDown" and alert["state"] == "pending"
            for alert in promstack.prometheus_alerts(prom.url)
        )

    promstack.wait_for(pending, 10, "DrconsoleNodeDown pending in Prometheus")
    assert _node_down(alertmanager, instance) == []  # pending alerts are not sent

    (alert,) = promstack.wait_for(
        lambda: _node_down(alertmanager, instance), hold + 30, "DrconsoleNodeDown in Alertmanager"
    )
    arrived = time.monotonic() - killed
    print(f"DrconsoleNodeDown reached Alertmanager {arrived:.1f} s after kill -9 (for: {hold:g} s)")
    _assert_shipped_labels(alert, instance)
    # Not before the hold; within a few 1 s scrape/evaluation rounds after it.
    assert hold <= arrived < hold + 10, arrived
