"""The interface the Triage screen renders: StaticTriage and the stand-in tree."""

from __future__ import annotations

import pytest

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
