"""The node side of the agent: runs playbooks of the library against the node's own data dir.

``Agent`` is an extension of the node's app (``engines.node.drain``): it owns the runs started
through its routes (``api.py``), runs each on a thread with the local ``Runner`` (journal and
audit in the node's state dir), and coordinates the node with the run through ``AgentRegistry``
(``steps.py``): drain and release the data dir before a step that needs its files, serve again
before a step that asks the nodes over HTTP.

A run that released the data dir ends only when the node has reopened its engine (WAL replay)
and answered ``/ready`` over HTTP: the runner's ``run_finished`` event is held back until then
and sent with ``verified_ready_at``; a node that does not come back turns a succeeded run into a
failed one, with the reason. The journal gets ``agent_released``, ``agent_reopened`` and
``agent_verified`` records beside the runner's own.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from engines.errors import DrconsoleError, EngineError, LockedError
from engines.node.drain import NodeControl
from playbooks.actions.node_process import serve_here
from playbooks.agent.marker import remove_marker, write_marker
from playbooks.agent.protocol import PREFIX, StartRequest
from playbooks.agent.runs import AgentRun, EventLog, events_exist, saved_result
from playbooks.agent.steps import AgentRegistry
from playbooks.audit import AuditLog
from playbooks.events import RunEvent
from playbooks.journal import Journal, list_journals, read_journal
from playbooks.loader import Library
from playbooks.runner import Runner, RunResult
from playbooks.state import Actor, StateDir

__all__ = ["Agent", "agent_extension"]

READY_TIMEOUT = 30.0
_RUN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")


def _check_id(run_id: str) -> str:
    from playbooks.errors import UnknownPlaybookError

    if not _RUN_ID.match(run_id):
        raise UnknownPlaybookError(f"{run_id!r} is not a run id", hint="see GET /agent/runs")
    return run_id


class _RunSide:
    """``steps.NodeSide`` for one run: what the registry asks of the node, told in the run's events."""

    def __init__(self, agent: Agent, run: AgentRun) -> None:
        self.agent = agent
        self.run = run
        self.data_dir = agent.data_dir

    def release(self, why: str) -> None:
        self.agent.release(self.run, why)

    def reopen(self, why: str) -> None:
        self.agent.reopen(self.run, why)

    def serving(self) -> bool:
        return not self.agent.control.released

    def hot_backup(self, repo: str | None, incremental: bool) -> dict[str, Any]:
        from engines.backup import create_backup
        from engines.node.errors import NodeBadRequestError

        node = self.agent.node
        target = repo or (str(node.config.backup_source) if node.config.backup_source else None)
        if not target:
            raise NodeBadRequestError("backup.create needs repo=PATH, or a node started with --backup-repo")
        return create_backup(target, engine=node.engine, incremental=incremental).to_json()


class Agent:
    """The playbook agent of one node. ``routes`` go on the node's app under ``/agent``."""

    prefix = PREFIX

    def __init__(
        self,
        control: NodeControl,
        *,
        state: StateDir | None = None,
        library: Library | None = None,
        drain_seconds: float = 10.0,
    ) -> None:
        from playbooks.agent.api import agent_routes

        self.control = control
        self.node = control.node
        self.state = state or StateDir()
        self.library = library if library is not None else Library.load()
        self.data_dir = Path(self.node.config.data_dir).absolute()
        self.drain_seconds = drain_seconds
        self.audit = AuditLog(self.state.audit_log)
        self.runs: dict[str, AgentRun] = {}
        self.held_for: str | None = None  # a cut-off run that left the data dir released
        self._lock = threading.Lock()
        self.on_close: list[Callable[[], None]] = []
        self.routes = agent_routes(self)
        serve_here(self.data_dir, self._cmdline())  # node actions of a run here see this node's URL and peers
        self.on_close.append(lambda: serve_here(self.data_dir, None))
        self._hold_for_cut_off_run()

    def _cmdline(self) -> tuple[str, ...]:
        """The ``node serve`` command line this node answers to (host, port, peers, upstream)."""
        config = self.node.config
        line = [
            "drconsole",
            "node",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            config.host,
            "--port",
            str(config.port),
            "--name",
            config.name,
        ]
        for peer in config.peers:
            line += ["--peer", peer]
        if config.follow:
            line += ["--follow", config.follow]
        return tuple(line)

    def _hold_for_cut_off_run(self) -> None:
        """A run killed with the node while it held the data dir: do not serve it half-recovered.

        The node starts released ("recovering", 503) until that run is resumed (and reopens it at
        its end) or cancelled; the journal is what says so.
        """
        for journal in list_journals(self.state.runs):
            if journal.status is not None:
                continue
            marks = [
                record["type"]
                for record in journal.records
                if record.get("type") in ("agent_released", "agent_reopened")
            ]
            if marks and marks[-1] == "agent_released":
                why = (
                    f"run {journal.run_id} ({journal.header.get('playbook')}) was cut off while it held the data "
                    f"dir; resume it (drconsole playbook resume {journal.run_id} --node ...) or cancel it"
                )
                self.control.release(why, drain_seconds=0.0)
                self.held_for = journal.run_id
                return

    # ------------------------------------------------------------------ starting, resuming
    def start(self, request: StartRequest, actor: Actor) -> dict[str, Any]:
        if request.dry_run:
            runner = Runner(self.library, state=self.state)
            runner.actor = actor
            result = runner.run(request.playbook, self.data_dir, self._options(request, None))
            return {"result": self._stamp(result.to_json())}
        self._refuse_if_busy()
        run = AgentRun(self.state, None, request.playbook, request.node or self.node.config.name)
        self._launch(run, request, actor, resume_id=None)
        self._audit(actor, "agent.run", "started", f"playbook {request.playbook}", run.run_id)
        return self._answer(run, after=0, attached=False)

    def resume(self, run_id: str, request: StartRequest, actor: Actor) -> dict[str, Any]:
        live = self.runs.get(_check_id(run_id))
        if live is not None and live.live:
            if request.assume_yes and live.pending is not None:
                live.answer(str(live.pending["step"]), live.node)
            self._audit(actor, "agent.resume", "attached", f"run {run_id}", run_id)
            return self._answer(live, after=0, attached=True)
        header = read_journal(self.state.journal(run_id)).header  # UnknownPlaybookError (exit 2) when none
        self._refuse_if_busy(resuming=run_id)
        run = AgentRun(
            self.state, run_id, str(header.get("playbook", "")), str(header.get("node") or self.node.config.name)
        )
        after = run.log.last_seq if run.log is not None else 0
        self._launch(run, request, actor, resume_id=run_id)
        self._audit(actor, "agent.resume", "resumed", f"run {run_id}", run_id)
        return self._answer(run, after=after, attached=False)

    def _refuse_if_busy(self, resuming: str | None = None) -> None:
        with self._lock:
            busy = [run.run_id for run in self.runs.values() if run.live]
        if busy:
            raise LockedError(
                f"run {busy[0]} is still working on {self.data_dir}",
                hint=f"wait for it, follow it (`drconsole playbook resume {busy[0]} --node ...`) or cancel it",
            )
        if self.held_for is not None and resuming != self.held_for:
            raise LockedError(
                f"run {self.held_for} was cut off while it held {self.data_dir}; the node does not "
                "start another on a data dir that may be half-recovered",
                hint=f"resume it (`drconsole playbook resume {self.held_for} --node ...`) or cancel it "
                "(`drconsole playbook cancel ...`), then start a new run",
            )

    def _launch(self, run: AgentRun, request: StartRequest, actor: Actor, *, resume_id: str | None) -> None:
        first = threading.Event()
        run.thread = threading.Thread(
            target=self._work,
            args=(run, request, actor, resume_id, first),
            name=f"agent-run-{resume_id or request.playbook}",
            daemon=True,
        )
        run.thread.start()
        first.wait(timeout=120)
        if run.run_id is None or not run.began:
            raise run.error or EngineError(f"the run of {run.playbook} did not start within 120 s")
        with self._lock:
            self.runs[run.run_id] = run

    def _answer(self, run: AgentRun, *, after: int, attached: bool) -> dict[str, Any]:
        return {
            "run_id": run.run_id,
            "playbook": run.playbook,
            "status": run.status,
            "after": after,
            "attached": attached,
            "plan": self._plan(run.run_id),
        }

    def _plan(self, run_id: str | None) -> list[dict[str, Any]]:
        if run_id is None:
            return []
        try:
            return list(read_journal(self.state.journal(run_id)).header.get("plan", []))
        except DrconsoleError:
            return []

    def _options(self, request: StartRequest, run: AgentRun | None) -> Any:
        options = request.options()
        options.node = run.node if run is not None else (request.node or self.node.config.name)
        options.open_incident = False  # the responder's side keeps the incident (client.py)
        source = self.node.config.backup_source
        if source is not None:
            options.param_defaults = {"repo": str(source), **options.param_defaults}
        return options

    # ------------------------------------------------------------------ the run's thread
    def _work(
        self, run: AgentRun, request: StartRequest, actor: Actor, resume_id: str | None, first: threading.Event
    ) -> None:
        def listen(event: RunEvent) -> None:
            run.began = True
            if event.kind == "run_finished":
                run.identify(event.run_id)
                run.held_finish = event  # sent once the node is verified (_conclude)
            else:
                run.emit(event)
            first.set()

        runner = Runner(
            self.library,
            state=self.state,
            registry=AgentRegistry(run.cancelled, _RunSide(self, run)),
            listeners=[listen],
        )
        runner.actor = actor
        options = self._options(request, run)
        options.confirm = run.ask if request.interactive else None
        result: RunResult | None = None
        try:
            if resume_id is not None:
                result = runner.resume(resume_id, options)
            else:
                result = runner.run(request.playbook, self.data_dir, options)
        except BaseException as exc:  # noqa: BLE001 - reported in the run's result and events
            run.error = exc
        try:
            if run.began:
                run.finish(self._conclude(run, result))
            else:  # refused before it began (bad parameters, nothing to resume): nothing changed
                run.live = False
                run.status = "failed"
        finally:
            first.set()

    def _conclude(self, run: AgentRun, result: RunResult | None) -> dict[str, Any]:
        """Reopen the node if the run released it, check ``/ready``, send the held ``run_finished``."""
        assert run.run_id is not None
        journal = Journal(self.state.journal(run.run_id))
        drained = self.control.released
        if run.run_id == self.held_for:
            self.held_for = None
        problem = ""
        if drained:
            try:
                self.reopen(run, "the run is over")
            except DrconsoleError as exc:
                problem = f"the node did not reopen its data dir: {exc}"
        succeeded = result is not None and result.status == "succeeded"
        if succeeded and not problem:
            self._clear_corruption(run)
        ready, detail = (False, problem) if problem else self._ready() if (drained or succeeded) else (False, "")
        now = time.time()
        if result is None:
            payload: dict[str, Any] = {
                "run_id": run.run_id,
                "playbook": run.playbook,
                "status": "failed",
                "steps": [],
                "message": f"the run stopped: {run.error}",
            }
        else:
            payload = result.to_json()
        status, message = payload["status"], payload.get("message", "")
        verified = None
        if status == "succeeded" and ready:
            verified = now
        elif status == "succeeded" and drained:
            status, message = "failed", f"every step succeeded, but the node is not serving again: {detail}"
        payload.update(status=status, message=message, node_url=self.node.url)
        if verified is not None:
            payload["verified_ready_at"] = verified
        journal.write("agent_verified", ready=ready, detail=detail, verified_ready_at=verified, status=status)
        if result is not None and status != result.status:  # the journal now says failed: a resume retries
            journal.write("run_finished", status=status, message=message, partial=result.partial, lost=result.lost)
        if detail:
            self._log(
                run,
                None,
                f"/ready: {detail}" if ready else f"the node is not ready: {detail}",
                "info" if ready else ("error" if drained else "warning"),
            )
        held = run.held_finish or RunEvent("run_finished", run.run_id, run.playbook)
        run.emit(
            replace(
                held,
                status=status,
                message=message,
                time=time.time(),
                data={**held.data, "verified_ready_at": verified, "ready": ready, "node_url": self.node.url},
            )
        )
        return self._stamp(payload)

    def _clear_corruption(self, run: AgentRun) -> None:
        """A node marked corrupt stays so (and not ready) until a full verify of the reopened engine is clean."""
        tracker = self.node.vitals.tracker
        if tracker.corruption is None or self.control.released:
            return
        try:
            report = self.node.engine.verify()
        except DrconsoleError as exc:
            self._log(run, None, f"the verify of the reopened engine failed: {exc}; the node stays corrupt", "error")
            return
        if not report.ok:
            self._log(
                run,
                None,
                f"the reopened engine still has {len(report.problems)} problem(s); the node stays corrupt",
                "error",
            )
            return
        self.node.clear_corruption(
            f"run {run.run_id} ({run.playbook}) passed its checks and a full verify of the reopened engine is clean"
        )
        self._log(run, None, "corrupt state cleared: a full verify of the reopened engine is clean")

    def _ready(self) -> tuple[bool, str]:
        """Ask the node's own ``/ready`` over HTTP, as a client would; retried for ``READY_TIMEOUT``."""
        host, port = self.node.config.host, self.node.config.port
        host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
        url = f"http://[{host}]:{port}/ready" if ":" in host else f"http://{host}:{port}/ready"
        deadline = time.monotonic() + READY_TIMEOUT
        detail = ""
        while True:
            try:
                response = httpx.get(url, timeout=5.0)
                body = response.json()
                if response.status_code == 200 and body.get("ready"):
                    return True, f"ready ({body.get('probe', 'probe')} ok, role {body.get('role')})"
                detail = f"HTTP {response.status_code}: {body.get('error') or body}"
            except (httpx.HTTPError, ValueError) as exc:
                detail = f"{url}: {exc or type(exc).__name__}"
            if time.monotonic() >= deadline:
                return False, detail
            time.sleep(0.2)

    def _stamp(self, payload: dict[str, Any]) -> dict[str, Any]:
        payload["node_url"] = self.node.url
        return payload

    # ------------------------------------------------------------------ the node, from a run's thread
    def release(self, run: AgentRun, why: str) -> None:
        if self.control.released:
            return
        self._log(run, None, f"draining {self.node.config.name}: {why}")
        info = self.control.release(why, drain_seconds=self.drain_seconds)
        cut = info.get("requests_cut_off") or 0
        self._journal(run, "agent_released", why=why, **info)
        self._log(
            run,
            None,
            f"engine closed, data dir released (drained in {info.get('drain_seconds')} s"
            + (f"; {cut} request(s) still in flight were cut off" if cut else "")
            + "); "
            "clients get 503 recovering",
            "warning" if cut else "info",
        )

    def reopen(self, run: AgentRun, why: str) -> None:
        if not self.control.released:
            return
        self._log(run, None, f"reopening {self.node.config.name}: {why}")
        try:
            info = self.control.reopen()
        except DrconsoleError as exc:
            self._journal(run, "agent_reopen_failed", why=why, error=str(exc))
            self._log(run, None, f"the engine does not open: {exc}; the node stays in recovering", "error")
            raise
        self._journal(run, "agent_reopened", why=why, **info)
        self._log(
            run,
            None,
            f"engine reopened in {info.get('open_seconds')} s (WAL replayed, LSN "
            f"{info.get('last_lsn')}, {info.get('role')}); serving again",
        )

    def _journal(self, run: AgentRun, kind: str, **fields: Any) -> None:
        if run.run_id is not None:
            Journal(self.state.journal(run.run_id)).write(kind, **fields)

    def _log(self, run: AgentRun, step: str | None, message: str, level: str = "info") -> None:
        if run.run_id is None:
            return
        self._journal(run, "log", step=step, message=message, level=level)
        run.emit(RunEvent("log", run.run_id, run.playbook, step_id=step, message=message, level=level))

    # ------------------------------------------------------------------ reading
    def find(self, run_id: str) -> tuple[AgentRun | None, EventLog]:
        """The live run (or None) and the event log of ``run_id``; UnknownPlaybookError if no such run."""
        run = self.runs.get(_check_id(run_id))
        if run is not None and run.log is not None:
            return run, run.log
        read_journal(self.state.journal(run_id))  # raises when there is no such run
        return None, EventLog(self.state.run_dir(run_id) / "agent-events.jsonl")

    def info(self, run_id: str) -> dict[str, Any]:
        run, log = self.find(run_id)
        if run is not None:
            return {
                "run_id": run_id,
                "playbook": run.playbook,
                "status": run.status,
                "live": run.live,
                "pending_confirmation": run.pending,
                "events": log.last_seq,
                "plan": self._plan(run_id),
                "result": run.result if not run.live else None,
            }
        journal = read_journal(self.state.journal(run_id))
        result = saved_result(self.state, run_id)
        status = result.get("status") if result else (journal.status or "interrupted")
        return {
            "run_id": run_id,
            "playbook": journal.header.get("playbook"),
            "status": status,
            "live": False,
            "pending_confirmation": None,
            "events": log.last_seq,
            "plan": list(journal.header.get("plan", [])),
            "result": result,
            "interrupted_step": journal.interrupted_step if result is None else None,
            "agent_events": events_exist(self.state, run_id),
        }

    def list(self) -> list[dict[str, Any]]:
        rows = []
        for journal in list_journals(self.state.runs):
            row = journal.summary_json()
            live = self.runs.get(journal.run_id)
            if live is not None and live.live:
                row["status"] = live.status
                row["live"] = True
            rows.append(row)
        return rows

    # ------------------------------------------------------------------ the responder's answers
    def confirm(self, run_id: str, step: str, typed: str | None, actor: Actor) -> dict[str, Any]:
        run = self.runs.get(run_id)
        if run is None or not run.live:
            return {"accepted": False, "reason": f"run {run_id} is not running here"}
        accepted, reason = run.answer(step, typed)
        self._audit(
            actor, "agent.confirm", reason if accepted else "refused", f"{step} of run {run_id}: {reason}", run_id
        )
        return {"accepted": accepted, "reason": reason}

    def cancel(self, run_id: str, actor: Actor) -> dict[str, Any]:
        run = self.runs.get(_check_id(run_id))
        if (run is None or not run.live) and run_id == self.held_for:
            return self._abandon(run_id, actor)
        if run is None or not run.live:
            self.find(run_id)
            return {"cancelled": False, "reason": f"run {run_id} is not running"}
        run.cancel()
        self._audit(actor, "agent.cancel", "requested", f"run {run_id}", run_id)
        return {"cancelled": True, "status": run.status}

    def _abandon(self, run_id: str, actor: Actor) -> dict[str, Any]:
        """Cancel a cut-off run that left the data dir released: it ends refused, the node serves again."""
        journal = Journal(self.state.journal(run_id))
        journal.write(
            "run_finished",
            status="refused",
            message="cancelled by the responder after it was cut off",
            who=actor.to_json(),
        )
        info = self.control.reopen()
        journal.write("agent_reopened", why="the cut-off run was cancelled", **info)
        self.held_for = None
        self._audit(
            actor, "agent.cancel", "abandoned", f"run {run_id} (cut off); the node reopened its data dir", run_id
        )
        return {"cancelled": True, "status": "refused", "reopened": True}

    def _audit(self, actor: Actor, action: str, outcome: str, detail: str, run_id: str | None) -> None:
        self.audit.append(
            actor=actor, action=action, target=str(self.data_dir), outcome=outcome, detail=detail, run_id=run_id
        )

    def close(self) -> None:
        """The node stops: live runs are cancelled (they stop at the next step, resumable) and awaited."""
        with self._lock:
            live = [run for run in self.runs.values() if run.live]
        for run in live:
            run.cancel()
        for run in live:
            if run.thread is not None:
                run.thread.join(timeout=15)
        for callback in self.on_close:
            callback()


def agent_extension(
    *, state: StateDir | None = None, library: Library | None = None, token_file: Path | None = None
) -> Any:
    """The factory ``engines.node`` mounts (``serve(config, extensions=[agent_extension()])``).

    It also leaves ``node-agent.json`` in the data dir (``marker.py``: the node's URL and
    ``token_file``), so that ``backup create`` on this host finds the node; removed at shutdown.
    """

    def build(control: NodeControl) -> Agent:
        agent = Agent(control, state=state, library=library)
        config = control.node.config
        write_marker(config.data_dir, url=config.url, name=config.name, token_file=token_file)
        agent.on_close.append(lambda: remove_marker(config.data_dir))
        return agent

    return build
