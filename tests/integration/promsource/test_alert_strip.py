"""The alert strip on the recorded fleet (no Prometheus needed): notices, picking an alert, triage from it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from console_testkit import fixture_app, fixture_ticks, screen_text
from textual.widgets import Input

from console.tui.screens.silence import SilenceScreen
from console.tui.widgets.alert_strip import AlertStrip
from console.tui.widgets.node_card import NodeCard
from fleet import Alert, AlertingSource, AlertmanagerClient, AlertSeverity, FleetSnapshot, MixedSource
from playbooks.audit import AuditLog

NOTICE = "Prometheus unreachable since 12:03:41 UTC — polling nodes directly (connection refused)"


def ticks_with(alert: Alert | None = None, notices: tuple[str, ...] = ()) -> tuple[FleetSnapshot, ...]:
    ticks = fixture_ticks()
    last = ticks[-1]
    nodes = tuple(
        node.model_copy(update={"alerts": (alert, *node.alerts)}) if alert and node.name == alert.node else node
        for node in last.nodes
    )
    return (*ticks[:-1], last.model_copy(update={"nodes": nodes, "notices": notices}))


def am_alert(node: str, triage: str) -> Alert:
    return Alert(
        rule="disk-usage",
        severity=AlertSeverity.CRITICAL,
        node=node,
        source="alertmanager",
        message="DrconsoleDiskSpaceLow (Alertmanager): Disk space critically low",
        triage=triage,
        since=datetime(2024, 5, 14, 12, 0, tzinfo=UTC),
        labels=(("alertname", "DrconsoleDiskSpaceLow"), ("instance", "10.0.0.3:8081")),
    )


def test_the_notice_of_a_degraded_source_heads_the_strip_on_both_screens() -> None:
    async def main(mode: str) -> str:
        app = fixture_app(mode=mode, ticks=ticks_with(notices=(NOTICE,)))
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.pause()
            return screen_text(app)

    for mode in ("interactive", "dashboard"):
        text = asyncio.run(main(mode))
        assert f"⚠ DEGRADED {NOTICE}" in text
        assert "cache" in text and "unreachable since" in text  # the alerts are still there, below it


def test_the_strip_takes_focus_only_when_asked_and_enter_triages_from_the_alerts_question() -> None:
    alert = am_alert("ledger", "disk-full")  # a question of the built-in flowchart the fixture app uses

    async def main() -> None:
        app = fixture_app(ticks=ticks_with(alert))
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.pause()
            strip = app.screen.query_one(AlertStrip)
            assert not strip.has_focus  # the screen's first focus is where it was before the strip could take it
            await pilot.press("tab", "tab", "tab")
            assert not strip.has_focus and isinstance(app.focused, NodeCard)  # tab goes between the cards
            await pilot.press("exclamation_mark")
            assert strip.has_focus and "▶" in screen_text(app)
            for _ in range(100):  # bounded: a missing alert fails, never hangs
                if not (strip.highlighted != alert):
                    break
                await pilot.press("down")
            else:
                raise AssertionError("the alert was never highlighted")
            await pilot.press("enter")
            for _ in range(50):
                await pilot.pause(0.05)
                if app.screen.__class__.__name__ == "TriageScreen":
                    break
            view = app.triage("ledger")
            assert app.selected_node == "ledger" and view.root == "disk-full" and view.current().id == "disk-full"
            assert "Is the disk full?" in screen_text(app)
            assert any("triage starts at 'disk-full'" in event.message for event in app.events)

    asyncio.run(main())


def test_an_alert_naming_a_question_the_tree_lacks_starts_at_the_root_and_says_so() -> None:
    alert = am_alert("ledger", "no-such-question")

    async def main() -> None:
        app = fixture_app(ticks=ticks_with(alert))
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.pause()
            await pilot.press("exclamation_mark")
            strip = app.screen.query_one(AlertStrip)
            for _ in range(100):  # bounded: a missing alert fails, never hangs
                if not (strip.highlighted != alert):
                    break
                await pilot.press("down")
            else:
                raise AssertionError("the alert was never highlighted")
            await pilot.press("enter")
            for _ in range(50):
                await pilot.pause(0.05)
                if app.screen.__class__.__name__ == "TriageScreen":
                    break
            view = app.triage("ledger")
            assert view.root == view.tree.root == "fleet"  # type: ignore[attr-defined]  # the playbooks' tree
            assert any("no question 'no-such-question'" in note.message for note in app._notifications)

    asyncio.run(main())


def test_silencing_the_consoles_own_rule_or_without_alertmanager_explains_why_not() -> None:
    async def main() -> list[str]:
        app = fixture_app(ticks=ticks_with(am_alert("ledger", "disk-full")))
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.pause()
            await pilot.press("exclamation_mark", "m")  # the first alert: cache's node-down, the console's own rule
            await pilot.pause()
            own = [note.message for note in app._notifications]
            strip = app.screen.query_one(AlertStrip)
            for _ in range(100):  # bounded: a missing alert fails, never hangs
                if not (strip.highlighted is None or strip.highlighted.source != "alertmanager"):
                    break
                await pilot.press("down")
            else:
                raise AssertionError("the alert was never highlighted")
            await pilot.press("m")
            await pilot.pause()
            return own + [note.message for note in app._notifications]

    messages = asyncio.run(main())
    assert any("the console's own rule" in message for message in messages)
    assert any("no [alertmanager] url in the configuration" in message for message in messages)


def test_an_alertmanager_api_error_on_silencing_is_a_clear_notice_and_an_audited_failure(
    junk: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))
    server = junk("error-json")  # every answer: HTTP 500 {"error": "storage is read-only"}
    alert = am_alert("ledger", "disk-full")

    async def main() -> list[str]:
        source = AlertingSource(MixedSource([]), AlertmanagerClient(server.url, timeout_seconds=1.0), [])
        app = fixture_app(ticks=ticks_with(alert), source=source)
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.pause()
            await pilot.press("exclamation_mark")
            strip = app.screen.query_one(AlertStrip)
            for _ in range(100):  # bounded: a missing alert fails, never hangs
                if not (strip.highlighted != alert):
                    break
                await pilot.press("down")
            else:
                raise AssertionError("the alert was never highlighted")
            await pilot.press("m")
            await pilot.pause()
            assert isinstance(app.screen, SilenceScreen)
            app.screen.query_one("#silence-comment", Input).value = "disk on ledger: freeing space"
            await pilot.press("enter")
            for _ in range(60):
                await pilot.pause(0.05)
                if any(note.title == "silence failed" for note in app._notifications):
                    break
            return [note.message for note in app._notifications if note.title == "silence failed"]

    assert asyncio.run(main()) == ["Alertmanager /api/v2/silences: HTTP 500 (storage is read-only)"]
    (entry,) = AuditLog(tmp_path / "state" / "audit.jsonl").entries()
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "alertmanager.silence",
        "ledger/DrconsoleDiskSpaceLow",
        "failed",
    )
    assert entry["detail"] == "Alertmanager /api/v2/silences: HTTP 500 (storage is read-only)"
