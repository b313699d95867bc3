"""The interfaces the Triage and Run screens render: StaticTriage, the stand-in tree, simulated runs."""

from __future__ import annotations

import asyncio

import pytest

from console.run_stub import PLANS, SimulatedLauncher
from console.run_view import NeedsConfirmation, RunFinished, StepFinished
from console.triage_stub import snapshot_triage
from console.triage_view import ProbeAnswer, Recommendation, StaticTriage, TreeNode, TriageView
from console_testkit import fixture_ticks
from playbooks.fleet import Thresholds

TREE = {node.id: node for node in (
    TreeNode("q", "Is it broken?", yes="fix", no="ok"),
    TreeNode("fix", conclusion="Fix it", recommend=("repair",)),
    TreeNode("ok", conclusion="Nothing to do"),
)}


def test_a_walk_records_answers_overrides_and_undo() -> None:
    view = StaticTriage("n1", "q", TREE, {"q": ProbeAnswer(True, "it is on fire")},
                        {"repair": Recommendation("repair", "Repair", "P0", destructive=True)})
    assert isinstance(view, TriageView)
    assert view.current().id == "q" and view.recommended() == ()
    step = view.answer(False)
    assert step.overridden and step.probe.evidence == "it is on fire"
    assert view.current().id == "ok" and view.recommended() == ()
    assert view.undo() == step
    assert not view.answer(True).overridden
    assert [r.playbook_id for r in view.recommended()] == ["repair"]
    with pytest.raises(ValueError, match="leaf"):
        view.answer(True)


def test_a_tree_pointing_nowhere_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the tree"):
        StaticTriage("n", "q", {"q": TreeNode("q", "?", yes="gone")}, {})


def test_the_stand_in_tree_answers_from_the_snapshot() -> None:
    snapshot = fixture_ticks()[-1]
    ledger = snapshot_triage(snapshot, "ledger", Thresholds())
    assert ledger.probe("can-start").answer is True
    assert ledger.probe("corruption").answer is None  # a snapshot cannot tell: the responder decides
    disk = ledger.probe("disk-pressure")
    assert disk.answer is True and disk.evidence == "disk 91% used on /srv, threshold 85%"
    ledger.answer(True)
    ledger.answer(False)
    ledger.answer(True)
    assert [r.playbook_id for r in ledger.recommended()] == ["free-disk-space"]
    cache = snapshot_triage(snapshot, "cache", Thresholds())
    assert cache.probe("can-start").answer is False
    assert "unreachable" in cache.probe("disk-full").evidence


async def collect(launcher: SimulatedLauncher, answer: str | None, cancel_after: int | None = None) -> list[object]:
    run = launcher.start(Recommendation("free-disk-space", "Free disk"), "ledger")
    events = []
    async for event in run.events():
        events.append(event)
        if isinstance(event, NeedsConfirmation):
            if answer is None:
                run.decline(event.step_id)
            else:
                assert not run.confirm(event.step_id, "not-the-node")  # checked at the action layer
                assert run.confirm(event.step_id, answer)
        if cancel_after is not None and len(events) == cancel_after:
            run.cancel()
    return events


def test_a_simulated_run_asks_before_its_destructive_step() -> None:
    events = asyncio.run(collect(SimulatedLauncher(step_seconds=0), "ledger"))
    asks = [event for event in events if isinstance(event, NeedsConfirmation)]
    assert [event.step_id for event in asks] == ["recycle-wal"]
    finished = [event.step_id for event in events if isinstance(event, StepFinished) and event.status == "succeeded"]
    assert finished == [step.id for step in PLANS["free-disk-space"]]
    assert events[-1] == RunFinished("succeeded", "every step succeeded (simulated)")


def test_declining_stops_the_run_and_cancel_stops_it_too() -> None:
    events = asyncio.run(collect(SimulatedLauncher(step_seconds=0), None))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "cancelled"
    events = asyncio.run(collect(SimulatedLauncher(step_seconds=0), "ledger", cancel_after=3))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "cancelled"
    assert not any(isinstance(event, NeedsConfirmation) for event in events)


def test_nothing_to_resume_for_simulated_runs() -> None:
    launcher = SimulatedLauncher()
    assert launcher.resumable() == ()
    with pytest.raises(LookupError):
        launcher.resume("x")
