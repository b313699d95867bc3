"""Triage probes run off the UI thread, and every answer reaches the playbooks' incident and audit log.

A probe held on a gate stands for a slow one (a verify of a large data dir): while it runs the
screen shows "probing…" with a moving spinner and answers keys; leaving the screen cancels it.
On a real corrupt data dir, the answers given with the keys (an override, an undo, accepts) are
written with question, answer, evidence, who and when to the incident (`drconsole incident show`,
`incident report`) and the hash-chained audit log, and the console's own export names them.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from console_testkit import fixture_app, screen_text
from support import run_cli_in_process
from test_real_playbooks import BACKENDS, corrupt_node, wait_for, write_config

from console.adapters.triage_adapter import PlaybookTriage
from console.adapters.triage_view import ProbeAnswer, Recommendation, StaticTriage, TreeNode
from console.cli.main import main as cli_main
from console.config import load_config
from console.tui.launch import build_app
from console.tui.screens.triage import PROBE_GROUP, TriageScreen
from playbooks.audit import AuditLog
from playbooks.incidents import IncidentStore
from playbooks.state import StateDir

# A two-question tree as data: what the screen renders does not depend on the playbooks' tree here.
TREE = {
    node.id: node
    for node in (
        TreeNode("can-start", "Can the service start?", "node.opens", yes="disk", no="crashed"),
        TreeNode("disk", "Is the disk nearly full?", "disk.full", yes="free-disk", no="healthy"),
        TreeNode("crashed", conclusion="Process crashed", recommend=("process-crash",)),
        TreeNode("free-disk", conclusion="Free disk space", recommend=("disk-space",)),
        TreeNode("healthy", conclusion="No fault found"),
    )
}
CATALOGUE = {
    "disk-space": Recommendation("disk-space", "Free disk space", "P1", destructive=True),
    "process-crash": Recommendation("process-crash", "Restart with WAL replay", "P1"),
}


@dataclass
class GatedTriage(StaticTriage):
    """A tree whose probes each wait for ``gate``: a probe as slow as the test wants."""

    gate: threading.Event = field(default_factory=threading.Event)
    done: dict[str, ProbeAnswer] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    def probe(self, node_id: str) -> ProbeAnswer:
        self.started.append(node_id)
        assert self.gate.wait(20), "the test never opened the gate"
        answer = super().probe(node_id)
        self.done[node_id] = answer
        return answer

    def probed(self, node_id: str) -> ProbeAnswer | None:
        return self.done.get(node_id)


def gated(node: str) -> GatedTriage:
    return GatedTriage(node, "can-start", TREE, {"can-start": ProbeAnswer(True, "ledger answers: serving")}, CATALOGUE)


def test_a_slow_probe_never_freezes_the_screen_and_leaving_cancels_it() -> None:
    views: dict[str, GatedTriage] = {}

    def factory(_snapshot: object, node: str) -> GatedTriage:
        return views.setdefault(node, gated(node))

    app = fixture_app(triage_factory=factory)

    async def main() -> tuple[str, str, str, list[str]]:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            node = app.selected_node
            assert node is not None
            await pilot.press("2")
            await wait_for(pilot, lambda: "probing…" in screen_text(app), 10)
            screen = app.screen
            assert isinstance(screen, TriageScreen)
            frames = screen._frame
            await pilot.pause(0.8)  # the UI thread is free: the spinner moves while the probe waits
            assert screen._frame >= frames + 2
            probing = screen_text(app)
            first = [worker for worker in app.workers if worker.group == PROBE_GROUP]
            await pilot.press("1")  # leave while the probe is still running
            await pilot.pause(0.1)
            assert first and all(worker.is_cancelled for worker in first)
            overview = screen_text(app)
            await pilot.press("2")
            await pilot.pause(0.1)
            views[node].gate.set()
            await wait_for(pilot, lambda: "probing…" not in screen_text(app), 10)
            await pilot.pause(0.1)
            answered = screen_text(app)
            await pilot.press("a")
            await pilot.pause(0.1)
            return probing, overview, answered, [step.question for step in views[node].path()]

    probing, overview, answered, questions = asyncio.run(main())
    assert "Can the service start?" in probing and "probing…" in probing
    assert "Triage of" not in overview  # the Overview was shown at once, the probe still running
    assert "probe says YES" in answered and "ledger answers: serving" in answered
    assert questions == ["Can the service start?"]


def test_an_answer_given_before_the_probe_finished_says_so() -> None:
    view = gated("ledger")
    app = fixture_app(triage_factory=lambda _snapshot, _node: view)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            app.selected_node = "ledger"
            await pilot.press("2")
            await wait_for(pilot, lambda: "probing…" in screen_text(app), 10)
            await pilot.press("a")  # no evidence yet: accepting is refused, answering is not
            await pilot.press("n")
            await pilot.pause(0.1)
            view.gate.set()
            await pilot.pause(0.2)

    asyncio.run(main())
    [step] = view.path()
    assert step.answer is False and not step.overridden
    assert step.probe.evidence == "answered before the probe finished"


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_answers_overrides_and_undo_reach_the_incident_and_the_audit_log(
    tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "alice-oncall")
    monkeypatch.setenv("SSH_CLIENT", "10.1.2.3 51000 22")
    corrupt_node(tmp_path, backend)
    config = load_config(write_config(tmp_path, backend, extra='[console]\nreport_dir = "reports"\n'))
    app = build_app(mode="interactive", theme=None, read_only=False, config=config, watch_terminal=False)

    async def main() -> tuple[Path | None, list[tuple[str, bool, bool]]]:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.selected_node == "orders")
            await pilot.press("2")
            await wait_for(pilot, lambda: "orders" in app.triage_sessions)
            view = app.triage_sessions["orders"]
            assert isinstance(view, PlaybookTriage)

            def evidence_in() -> bool:
                return view.probed(view.current().id) is not None

            await wait_for(pilot, evidence_in)
            first = view.probed(view.current().id)
            assert first is not None and first.answer is not None
            await pilot.press("n" if first.answer else "y")  # against the probe: an override
            await pilot.press("u")  # taken back
            while not view.current().is_leaf:
                await wait_for(pilot, evidence_in)
                probe = view.probed(view.current().id)
                await pilot.press("a" if probe is not None and probe.answer is not None else "n")
            assert isinstance(app.screen, TriageScreen) and app.desk.writable
            app.desk.flush(10)
            await wait_for(pilot, lambda: app.incident is not None)
            await pilot.press("4")
            await pilot.press("e")
            await pilot.pause(0.2)
            walked = [(step.question, step.answer, step.overridden) for step in view.path()]
            return next((tmp_path / "reports").glob("*.md"), None), walked

    exported, walked = asyncio.run(main())
    assert app.incident is not None
    incident_id = app.incident.id
    incident = IncidentStore().load(incident_id)  # what the CLI reads: the same incident the console showed
    assert incident.target == "orders" and incident.severity == app.incident.severity == "P0"
    rows = [event for event in incident.events if event.kind in ("answer", "override", "answer_undone")]
    kinds = [row.kind for row in rows]
    # Given before the walk found the fault, written when it did, in order and with their own times.
    assert kinds[:2] == ["override", "answer_undone"] and kinds[2:] == ["answer"] * len(walked)
    override = rows[0]
    assert override.who == {"user": "alice-oncall", "ssh_client": "10.1.2.3 51000 22"}
    assert override.data["question"] == walked[0][0] and override.data["probe_answer"] is not override.data["answer"]
    assert override.data["evidence"] and override.time <= incident.opened_at
    assert "override: the probe said" in override.message and "by alice-oncall from 10.1.2.3" in override.message
    assert [(row.data["question"], row.data["answer"]) for row in rows[2:]] == [(q, a) for q, a, _o in walked]
    assert [(answer.question, answer.answer) for answer in incident.answers()] == [(q, a) for q, a, _o in walked]

    audit = AuditLog(StateDir().audit_log)
    assert audit.verify().ok
    actions = [entry["action"] for entry in audit.entries() if entry["action"].startswith("triage.")]
    assert actions == ["triage.override", "triage.undo"] + ["triage.answer"] * len(walked)
    assert all(entry["who"]["user"] == "alice-oncall" for entry in audit.entries())

    shown = run_cli_in_process(capsys, cli_main, "incident", "show", incident_id)
    assert shown.code == 0
    kinds_shown = [line.split()[1] for line in shown.out.splitlines()[1:] if line.startswith("  20")]
    assert kinds_shown.count("override") == 1 and kinds_shown.count("answer") == len(walked)
    assert f"override        {walked[0][0]}" in shown.out and "by alice-oncall from 10.1.2.3" in shown.out
    report_path = tmp_path / "incident.md"
    reported = run_cli_in_process(capsys, cli_main, "incident", "report", incident_id, "--output", report_path)
    assert reported.code == 0
    report = report_path.read_text()
    assert "override: the probe said" in report and "(by alice-oncall from 10.1.2.3)" in report

    assert exported is not None
    text = exported.read_text()
    assert text.startswith(f"# Incident Report: {incident_id}") and "- **Responders**: alice-oncall" in text
    assert "- **Severity**: P0" in text
    assert f"{walked[-1][0]} **{'yes' if walked[-1][1] else 'no'}**" in text


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_read_only_triage_records_nothing(tmp_path: Path, backend: str) -> None:
    corrupt_node(tmp_path, backend)
    config = load_config(write_config(tmp_path, backend))
    app = build_app(mode="interactive", theme=None, read_only=True, config=config, watch_terminal=False)

    async def main() -> int:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.selected_node == "orders")
            await pilot.press("2")
            await wait_for(pilot, lambda: "orders" in app.triage_sessions)
            view = app.triage_sessions["orders"]
            await wait_for(pilot, lambda: view.probed(view.current().id) is not None)
            await pilot.press("y", "n")
            await pilot.pause(0.2)
            assert isinstance(app.screen, TriageScreen) and not app.desk.writable
            return len(view.path())

    assert asyncio.run(main()) == 2
    assert not StateDir().root.exists()
