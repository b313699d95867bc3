"""kill -9 the primary: Prometheus' node-down rule fires, Alertmanager has it, and the console shows it.

The package's stack is used in order: the kill happens once (``killed``), then the snapshot, the
probes, the alert strip and triage (Pilot), the silence refused in read-only and dashboard modes,
and last the silence made from the console (it hides the alert, so nothing after it may need it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import promstack
import pytest
from console_testkit import screen_text
from promsource_kit import Stack
from support import run_cli_in_process
from textual.widgets import Input

from console.cli.main import main
from console.config import load_config
from console.tui.app import DrConsoleApp
from console.tui.launch import build_app
from console.tui.screens.silence import SilenceForm, SilenceScreen, silence_alert
from console.tui.widgets.alert_strip import AlertStrip
from fleet import Alert, FleetSnapshot, fleet_source
from playbooks.audit import AuditLog
from playbooks.probes import PROBES, ProbeContext

AM_EVIDENCE = "Alertmanager: DrconsoleNodeDown firing on orders-a since "


def _node_down_in_alertmanager(stack: Stack) -> list[dict[str, Any]]:
    return [
        alert
        for alert in promstack.alertmanager_alerts(stack.alertmanager.url)
        if alert["labels"].get("alertname") == "DrconsoleNodeDown"
        and alert["labels"].get("instance") == stack.primary.instance
    ]


@pytest.fixture(scope="module")
def killed(stack: Stack) -> Iterator[Stack]:
    """The stack with its primary killed until the node-down alert reached Alertmanager; restarted after."""
    stack.primary.kill()
    try:
        promstack.wait_for(lambda: _node_down_in_alertmanager(stack), 40, "DrconsoleNodeDown reaching Alertmanager")
        yield stack
    finally:
        stack.primary.start()  # the package's other tests need it (the stack is shared)
        stack.scraped()


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Triage records (incidents, audit) go to the test's directory, never the user's state dir."""
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))


def silences(stack: Stack) -> list[dict[str, Any]]:
    answer = httpx.get(f"{stack.alertmanager.url}/api/v2/silences", timeout=5)
    answer.raise_for_status()
    return [item for item in answer.json() if item["status"]["state"] == "active"]


def app_for(stack: Stack, tmp_path: Path, *, mode: str = "interactive", read_only: bool = False) -> DrConsoleApp:
    config = load_config(stack.config(tmp_path / "drconsole.toml"))
    return build_app(mode=mode, theme=None, read_only=read_only, config=config, watch_terminal=False)


async def wait_until(pilot: Any, predicate: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        await pilot.pause(0.1)
    raise AssertionError(f"{what}: not within {timeout} s; the screen:\n{screen_text(pilot.app)}")


def node_down_alert(app: DrConsoleApp) -> Alert | None:
    snapshot = app.snapshot
    found = [
        alert
        for alert in (snapshot.alerts if snapshot else ())
        if alert.source == "alertmanager" and alert.node == "orders-a" and alert.rule == "node-down"
    ]
    return found[0] if found else None


def test_the_alert_is_in_the_snapshot_and_the_probes_evidence(killed: Stack) -> None:
    async def main() -> FleetSnapshot:
        source = fleet_source(
            killed.specs(), prometheus_url=killed.prometheus.url, alertmanager_url=killed.alertmanager.url
        )
        try:
            return await source.collect()
        finally:
            await source.aclose()

    snapshot = asyncio.run(main())
    a = snapshot.node("orders-a")
    assert a is not None and not a.reachable and "Prometheus cannot scrape" in a.health_reason
    (alert,) = [alert for alert in a.alerts if alert.rule == "node-down"]  # one line for the fault, not two
    assert (alert.source, alert.severity, alert.triage) == ("alertmanager", "critical", "primary-down")
    assert alert.message.startswith("DrconsoleNodeDown (Alertmanager): drconsole node ")
    assert ("instance", killed.primary.instance) in alert.labels and alert.since is not None
    context = ProbeContext(snapshot=snapshot, node="orders-a")
    primary_down = PROBES["replication.primary_down"](context)
    assert primary_down.answer is True
    assert primary_down.evidence.startswith("primary orders-a unreachable; standby orders-b healthy")
    assert AM_EVIDENCE in primary_down.evidence
    down = PROBES["node.down"](context)
    assert down.answer is True and AM_EVIDENCE in down.evidence


def test_the_cli_triage_reads_alertmanager_too(
    killed: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`drconsole triage --node` builds its snapshot from the same config sections as the console."""
    config = killed.config(tmp_path / "drconsole.toml")
    result = run_cli_in_process(capsys, main, "--config", config, "triage", "--node", "orders-a", "--json")
    report = json.loads(result.out)
    evidence = [step["evidence"] for step in report["path"]]
    assert any(AM_EVIDENCE in text for text in evidence), evidence


def test_the_console_shows_it_in_the_strip_and_enter_triages_from_its_question(killed: Stack, tmp_path: Path) -> None:
    async def main() -> None:
        app = app_for(killed, tmp_path)
        async with app.run_test(size=(150, 45)) as pilot:
            await wait_until(
                pilot, lambda: "DrconsoleNodeDown (Alertmanager)" in screen_text(app), "the alert in the strip"
            )
            alert = node_down_alert(app)
            assert alert is not None
            await pilot.press("exclamation_mark")
            strip = app.screen.query_one(AlertStrip)
            assert strip.has_focus
            for _ in range(100):  # bounded: a missing alert fails, never hangs
                if not (strip.highlighted != alert):
                    break
                await pilot.press("down")
            else:
                raise AssertionError("the alert was never highlighted")
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.screen.__class__.__name__ == "TriageScreen", "the Triage screen")
            view = app.triage("orders-a")
            assert view.root == "primary-down" and view.current().id == "primary-down"
            evidence = view.probe("primary-down")
            assert evidence.answer is True and AM_EVIDENCE in evidence.evidence
            text = screen_text(app)
            assert "Triage of orders-a" in text and "Is the group's primary down while a standby is healthy?" in text
            assert "Alertmanager: DrconsoleNodeDown" in " ".join(text.split())
            await pilot.press("a")  # accept the probe's answer: the path records the alert as evidence
            # then: is the down primary hung on this host? (its data dir is not here: no) -> primary lost
            await wait_until(pilot, lambda: view.current().is_leaf or view.probed(view.current().id), "the evidence")
            await pilot.press("a")
            incident = await wait_until(pilot, lambda: app.incident, "the incident the diagnosis opens")
            assert [item.playbook_id for item in view.recommended()][0] == "failover"
            # primary lost with a standby to take over: the severity table's P1 (part of the service out)
            assert incident.target == "orders-a" and incident.severity == "P1"
            assert any(AM_EVIDENCE in answer.evidence for answer in incident.answers())

    asyncio.run(main())


def test_silencing_is_refused_in_read_only_and_dashboard_modes(
    killed: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))
    before = silences(killed)

    async def read_only() -> None:
        app = app_for(killed, tmp_path, read_only=True)
        async with app.run_test(size=(150, 45)) as pilot:
            alert = await wait_until(pilot, lambda: node_down_alert(app), "the alert in read-only mode")
            await pilot.press("exclamation_mark", "m")  # the key route
            await pilot.pause(0.2)
            assert not isinstance(app.screen, SilenceScreen)
            app.action_silence_alert(alert)  # a direct call: the action itself refuses
            assert await silence_alert(app, alert, SilenceForm(3600, "no"), "ops") is None
            await pilot.pause(0.2)
            refusals = [note for note in app._notifications if note.title == "refused"]
            assert refusals and all("read-only" in note.message for note in refusals)

    async def dashboard() -> None:
        app = app_for(killed, tmp_path, mode="dashboard")
        async with app.run_test(size=(150, 45)) as pilot:
            alert = await wait_until(pilot, lambda: node_down_alert(app), "the alert on the dashboard")
            strip = app.screen.query_one(AlertStrip)
            assert not strip.take_focus() and not strip.has_focus and "DrconsoleNodeDown" in screen_text(app)
            assert await silence_alert(app, alert, SilenceForm(3600, "no"), "ops") is None

    asyncio.run(read_only())
    asyncio.run(dashboard())
    assert silences(killed) == before
    assert not (tmp_path / "state" / "audit.jsonl").exists()


def test_a_silence_from_the_console_reaches_alertmanager_and_the_audit_log(
    killed: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))

    async def main() -> None:
        app = app_for(killed, tmp_path)
        async with app.run_test(size=(150, 45)) as pilot:
            alert = await wait_until(pilot, lambda: node_down_alert(app), "the alert in the strip")
            await pilot.press("exclamation_mark")
            strip = app.screen.query_one(AlertStrip)
            for _ in range(100):  # bounded: a missing alert fails, never hangs
                if not (strip.highlighted != alert):
                    break
                await pilot.press("down")
            else:
                raise AssertionError("the alert was never highlighted")
            await pilot.press("m")
            dialog = await wait_until(
                pilot, lambda: isinstance(app.screen, SilenceScreen) and app.screen, "the silence dialog"
            )
            dialog.query_one("#silence-duration", Input).value = "30m"
            await pilot.press("enter")  # no comment yet: refused by the dialog, nothing sent
            assert isinstance(app.screen, SilenceScreen) and silences(killed) == []
            dialog.query_one("#silence-comment", Input).value = "orders-a host lost; failing over"
            await pilot.press("enter")
            await wait_until(pilot, lambda: silences(killed), "the silence in Alertmanager")
            await wait_until(
                pilot, lambda: "DrconsoleNodeDown" not in screen_text(app), "the silenced alert leaving the strip"
            )

    asyncio.run(main())
    (silence,) = silences(killed)
    assert silence["comment"] == "orders-a host lost; failing over"
    matchers = {matcher["name"]: matcher["value"] for matcher in silence["matchers"]}
    assert matchers["alertname"] == "DrconsoleNodeDown" and matchers["instance"] == killed.primary.instance
    assert all(not matcher["isRegex"] and matcher["isEqual"] for matcher in silence["matchers"])
    log = AuditLog(tmp_path / "state" / "audit.jsonl")
    (entry,) = log.entries()
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "alertmanager.silence",
        "orders-a/DrconsoleNodeDown",
        "ok",
    )
    assert silence["id"] in entry["detail"] and entry["duration_seconds"] == 1800
    assert log.verify().ok
