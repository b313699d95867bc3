"""The interface the Triage screen renders: StaticTriage and the playbooks' tree on a snapshot."""

from __future__ import annotations

import pytest
from console_testkit import fixture_ticks

from console.adapters.triage_adapter import PlaybookTriage
from console.adapters.triage_view import ProbeAnswer, Recommendation, StaticTriage, TreeNode, TriageView
from fleet import Thresholds

TREE = {
    node.id: node
    for node in (
        TreeNode("q", "Is it broken?", yes="fix", no="ok"),
        TreeNode("fix", conclusion="Fix it", recommend=("repair",)),
        TreeNode("ok", conclusion="Nothing to do"),
    )
}


def test_a_walk_records_answers_overrides_and_undo() -> None:
    view = StaticTriage(
        "n1",
        "q",
        TREE,
        {"q": ProbeAnswer(True, "it is on fire")},
        {"repair": Recommendation("repair", "Repair", "P0", destructive=True)},
    )
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


def accept_all(view: PlaybookTriage) -> list[tuple[str, bool | None]]:
    """Accept every probe's answer down the tree; stop at the first it cannot give (as the screen does)."""
    walked: list[tuple[str, bool | None]] = []
    while not view.current().is_leaf:
        node = view.current()
        found = view.probe(node.id)
        walked.append((node.id, found.answer))
        if found.answer is None:
            break
        view.answer(found.answer)
    return walked


def test_the_playbooks_tree_answers_a_remote_node_from_the_snapshot() -> None:
    """No data dir, no config: the fixture fleet's nodes are triaged from what they report."""
    snapshot = fixture_ticks()[-1]
    ledger = PlaybookTriage("ledger", snapshot=snapshot, thresholds=Thresholds())
    walked = accept_all(ledger)
    assert walked[:4] == [("fleet", True), ("in-group", False), ("data-here", False), ("answers", True)]
    disk = ledger.probe("running-disk")
    assert disk.answer is True and "disk 91 % used on node ledger on /srv" in disk.evidence
    assert [r.playbook_id for r in ledger.recommended()] == ["disk-space"]
    assert (ledger.fault(), ledger.severity(), ledger.run_on()) == ("disk-nearly-full", "P1", "ledger")
    assert all(r.severity == "P1" for r in ledger.recommended())  # the diagnosis's, not the playbook's default
    cache = PlaybookTriage("cache", snapshot=snapshot, thresholds=Thresholds())
    walked = accept_all(cache)
    assert walked[-2:] == [("answers", False), ("remote-crashed", None)]  # why it is down cannot be read here
    assert "cannot be read from here" in cache.probe("remote-crashed").evidence
    assert cache.recommended() == () and cache.fault() is None
