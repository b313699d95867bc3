"""The console uses Textual's own mechanisms (issue 22): screens from ``SCREENS``, keys and
``check_action`` from the one command table (console.tui.commands), and a theme's ``.tcss`` switched
with the theme, so choosing "wall" in the palette changes the layout, not only the colours."""

from __future__ import annotations

import asyncio

from console_testkit import fixture_app
from textual.command import CommandPalette

from console.tui.app import DrConsoleApp
from console.tui.commands import COMMANDS, action_name
from console.tui.screens.run import RunScreen
from console.tui.screens.timeline import TimelineScreen
from console.tui.screens.triage import TriageScreen
from console.tui.widgets.node_card import NodeCard


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


async def until(pilot, predicate, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def test_every_bound_key_comes_from_the_command_table() -> None:
    table = {(command.keys, action_name(command.action)) for command in COMMANDS if command.keys}
    for owner in (DrConsoleApp, TriageScreen, RunScreen, TimelineScreen):
        bound = {(binding.key, action_name(binding.action)) for binding in owner.BINDINGS if binding.key != "escape"}
        assert bound and bound <= table, (owner.__name__, bound - table)


def test_read_only_and_the_wall_refuse_writes_by_the_same_table() -> None:
    async def main() -> dict[str, dict[str, bool | None]]:
        found: dict[str, dict[str, bool | None]] = {}
        for label, options in (
            ("responder", {}),
            ("read-only", {"read_only": True}),
            ("wall", {"mode": "dashboard"}),
        ):
            app = fixture_app(**options)  # type: ignore[arg-type]
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                found[label] = {
                    action: app.check_action(action, ())
                    for action in ("start_run", "export_report", "plan_run", "show_screen", "help", "quit")
                }
        return found

    found = run(main())
    assert all(found["responder"].values())
    assert found["read-only"] == {
        "start_run": False,
        "export_report": False,
        "plan_run": True,
        "show_screen": True,
        "help": True,
        "quit": True,
    }
    assert [action for action, ok in found["wall"].items() if ok] == ["help", "quit"]


def test_screens_are_installed_on_first_use_from_textual_screens() -> None:
    async def main() -> tuple[bool, bool, str]:
        app = fixture_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            before = app.is_screen_installed("timeline") and isinstance(
                app._installed_screens["timeline"], TimelineScreen
            )
            await pilot.press("4")
            await until(pilot, lambda: isinstance(app.screen, TimelineScreen), "the Timeline")
            after = isinstance(app._installed_screens["timeline"], TimelineScreen)
            await pilot.press("1")
            await pilot.pause()
            return before, after, type(app.screen).__name__

    before, after, back = run(main())
    assert not before and after  # a factory until first shown, then the one instance
    assert back == "OverviewScreen"


def test_choosing_wall_in_the_palette_brings_its_stylesheet_and_leaving_it_takes_it_away() -> None:
    async def main() -> list[tuple[str, str, str]]:
        app = fixture_app(theme="dark")
        seen: list[tuple[str, str, str]] = []
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            card = next(card for card in app.screen.query(NodeCard) if not card.has_focus and card.node is not None)
            if card.node.health.value != "ok":  # an OK card: its border is the plain one, not a status's
                card = next(c for c in app.screen.query(NodeCard) if not c.has_focus and c.node.health.value == "ok")

            def look() -> tuple[str, str, str]:
                return app.theme, card.styles.border_top[0], str(app.screen.styles.text_style)

            seen.append(look())
            for choice in ("wall", "dark"):
                await pilot.press("ctrl+p")
                await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
                await pilot.press(*"Theme")
                await pilot.pause(0.3)
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the theme list")
                await pilot.press(*f"drconsole-{choice}")
                await pilot.pause(0.3)
                await pilot.press("enter")
                wanted = f"drconsole-{choice}"
                await until(pilot, lambda wanted=wanted: app.theme == wanted, f"the {choice} theme")
                await pilot.pause()
                seen.append(look())
        return seen

    seen = run(main())
    assert seen[0] == ("drconsole-dark", "round", "none"), seen
    assert seen[1] == ("drconsole-wall", "heavy", "bold"), seen  # themes/wall.tcss: heavy borders, bold text
    assert seen[2] == seen[0], seen
