"""DRCONSOLE_ROLE=viewer makes the console the read-only dashboard whatever its arguments (console.tui.launch)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from serve_kit import make_fleet

from console.config import load_config
from console.tui.launch import build_app
from console.tui.safety import ReadOnlyRefusal


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))
    return make_fleet(tmp_path)


def test_a_viewer_gets_the_dashboard_even_when_asked_for_the_interactive_console(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCONSOLE_ROLE", "viewer")
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False)
    assert app.dashboard and app.capabilities.read_only and not app.capabilities.can_write
    assert app.launcher is None  # nothing can start a run, whatever asks
    with pytest.raises(ReadOnlyRefusal):
        app.capabilities.require_write("start a run")
    with pytest.raises(ReadOnlyRefusal):
        app.capabilities.require_interactive("show triage")


def test_a_responder_or_no_role_keeps_what_was_asked(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for role in ("responder", None):
        if role is None:
            monkeypatch.delenv("DRCONSOLE_ROLE", raising=False)
        else:
            monkeypatch.setenv("DRCONSOLE_ROLE", role)
        app = build_app(
            mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False
        )
        assert not app.dashboard and app.capabilities.can_write and app.launcher is not None


def test_the_viewer_app_refuses_every_action_by_key_or_direct_call(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCONSOLE_ROLE", "viewer")
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False)

    async def main() -> list[str]:
        seen = []
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            seen.append(app.screen.SCREEN_LABEL)  # type: ignore[attr-defined]
            for action in ("show_screen('triage')", "start_run", "resume_run", "export_report"):
                await app.run_action(action)
            await pilot.press("2", "3", "s", "e", "i")
            await pilot.pause()
            seen.append(app.screen.SCREEN_LABEL)  # type: ignore[attr-defined]
        return seen

    assert asyncio.run(main()) == ["Dashboard", "Dashboard"]
    assert app.incident is None and app.run_session is None
    state = tmp_path / "state"
    assert not state.exists() or list(state.iterdir()) == []
    assert list((tmp_path / "reports").iterdir()) == []
