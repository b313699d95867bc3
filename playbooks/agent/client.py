"""``RemoteRunner``: a playbook run on a node's own agent, with the interface of the local ``Runner``.

    runner = RemoteRunner("http://10.0.0.11:8081", token_file=Path("/etc/drconsole/orders-a.token"),
                          node="orders-a", listeners=[render])
    result = runner.run("data-recovery", None, RunOptions(assume_yes=True))   # -> RunResult
    result = runner.resume(run_id, RunOptions(assume_yes=True))                # attach, or resume a cut-off run
    runner.cancel()                                                            # from another thread

It is a drop-in for ``playbooks.runner.Runner`` (``runner_for`` in ``select.py`` picks one of the
two): ``run(playbook_id, data_dir, options) -> RunResult`` (``data_dir`` is the node's own and
may be None), ``resume(run_id, options) -> RunResult``, ``bus`` / ``listeners`` receiving the same
``playbooks.events.RunEvent`` objects in the same order, ``options.confirm(planned, target)``
asked at each destructive step (the target is the node name; answering True sends it as typed),
``assume_yes``, ``dry_run`` (the node plans against its data dir and changes nothing). The run's
journal lives on the node (its state dir), so a dropped connection only loses the view: the
runner reconnects with the last event's sequence number for ``reconnect_seconds``, then raises
``NodeUnreachableError`` naming the run; ``resume(run_id)`` follows it again.

The result is the node's ``RunResult``; a run that changed the data dir ends only when the node
reopened its engine and answered ``/ready`` (``result.verified_ready_at``). The responder
(``playbooks.state.current_actor``) travels with every request and is written in the audit log
here and on the node; the incident is kept here, where the responder triaged.

Errors: unreachable -> ``NodeUnreachableError`` (3); token missing or wrong -> ``NodeAuthError``
(4); what the agent refuses carries the exit code a local run would have had (``RemoteError``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from engines.errors import EngineError
from engines.node.client import json_object, read_token_file, send
from engines.node.errors import NodeAuthError, NodeError, NodeUnreachableError
from playbooks.agent.incident import open_remote_incident, record_remote_run
from playbooks.agent.protocol import (
    ACTOR_HEADER,
    DEFAULT_EVENT_WAIT,
    PREFIX,
    RemoteError,
    StartRequest,
    actor_header,
    event_from_json,
    result_from_json,
)
from playbooks.audit import AuditLog
from playbooks.events import EventBus, Listener, RunEvent
from playbooks.plan import PlannedStep, plan_from_json
from playbooks.runner import RunOptions, RunResult
from playbooks.state import Actor, StateDir, current_actor

__all__ = ["AgentClient", "RemoteRunner"]


class AgentClient:
    """The agent routes of one node over HTTP (``protocol.py`` lists them). Thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        actor: Actor | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {ACTOR_HEADER: actor_header(actor or current_actor())}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls
    def playbooks(self) -> list[dict[str, Any]]:
        return list(self._json("GET", f"{PREFIX}/playbooks").get("playbooks", []))

    def start(self, request: StartRequest) -> dict[str, Any]:
        return self._json("POST", f"{PREFIX}/runs", json=request.to_json(), ok=(200, 202))

    def runs(self) -> list[dict[str, Any]]:
        return list(self._json("GET", f"{PREFIX}/runs").get("runs", []))

    def run_info(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"{PREFIX}/runs/{run_id}")

    def confirm(self, run_id: str, step: str, typed: str) -> dict[str, Any]:
        return self._json("POST", f"{PREFIX}/runs/{run_id}/confirm", json={"step": step, "typed": typed})

    def decline(self, run_id: str, step: str) -> dict[str, Any]:
        return self._json("POST", f"{PREFIX}/runs/{run_id}/confirm", json={"step": step, "decline": True})

    def cancel(self, run_id: str) -> dict[str, Any]:
        return self._json("POST", f"{PREFIX}/runs/{run_id}/cancel", json={})

    def resume(self, run_id: str, request: StartRequest) -> dict[str, Any]:
        return self._json("POST", f"{PREFIX}/runs/{run_id}/resume", json=request.to_json(), ok=(200, 202))

    def events(self, run_id: str, *, after: int = 0, wait: float = DEFAULT_EVENT_WAIT) -> Iterator[dict[str, Any]]:
        """The event lines after ``after`` as they come (``{"seq", "event"}``, then ``{"end", ...}``).

        Raises:
            NodeUnreachableError: the connection failed or dropped (reconnect with the last seq).
        """
        import json

        path = f"{PREFIX}/runs/{run_id}/events"
        timeout = httpx.Timeout(self.timeout, read=wait + self.timeout)
        try:
            with self._http.stream("GET", path, params={"after": after, "wait": wait}, timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise _status_error(self.url, "GET", path, response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise NodeUnreachableError(
                f"the event stream of run {run_id} from {self.url} broke: {exc or type(exc).__name__}",
                hint="reconnect: the node keeps every event",
            ) from exc
        except ValueError as exc:
            raise NodeError(f"{self.url}{path} sent a line that is not JSON") from exc

    # ------------------------------------------------------------------ plumbing
    def _json(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> dict[str, Any]:
        response = send(self._http, self.url, method, path, ok=ok, status_error=_status_error, **kwargs)
        return json_object(response, self.url, path, hint="is this a drconsole node with its agent?")


def _status_error(url: str, method: str, path: str, response: httpx.Response) -> EngineError:
    try:
        body = response.json()
        message, hint = str(body.get("error") or response.reason_phrase), body.get("hint")
        exit_code, kind = body.get("exit_code"), str(body.get("kind") or "")
    except (ValueError, AttributeError):
        message, hint, exit_code, kind = response.text[:200] or response.reason_phrase, None, None, ""
    status = response.status_code
    if status in (401, 403):
        return NodeAuthError(
            f"{url}: {message}",
            hint="set token_file in the node's [[node]] table to a file "
            "holding its token (the one `node serve --token-file` reads)",
        )
    if status == 404 and exit_code is None:
        return NodeError(
            f"{method} {url}{path}: HTTP 404: {message}",
            hint="this node has no playbook agent (an older drconsole?); upgrade it",
        )
    if isinstance(exit_code, int):
        return RemoteError(f"{url}: {message}", hint=hint, exit_code=exit_code, kind=kind)
    if status in (502, 503):
        return NodeUnreachableError(f"{url}: {message}", hint=hint)
    return NodeError(f"{method} {url}{path}: HTTP {status}: {message}", hint=hint)


class RemoteRunner:
    """Runs playbooks on the node at ``url`` through its agent; the local ``Runner``'s interface.

    Args:
        url: the node's URL (its ``[[node]] url``).
        token: the bearer token; or ``token_file``, read at each run (never logged).
        node: the node's name in the config: the name a confirmation types, the incident's target.
        listeners: receive every ``RunEvent`` of the run, as the local runner's do.
        state: where this side's audit log and incidents live (default: ``StateDir()``).
        reconnect_seconds: how long a dropped event stream is retried before giving up.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_file: Path | None = None,
        node: str | None = None,
        listeners: list[Listener] | None = None,
        state: StateDir | None = None,
        library: Any | None = None,
        timeout: float = 10.0,
        reconnect_seconds: float = 60.0,
        event_wait: float = DEFAULT_EVENT_WAIT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.node = node
        self.bus = EventBus(listeners)
        self.state = state or StateDir()
        self.audit = AuditLog(self.state.audit_log)
        self.actor = current_actor()
        self.library = library
        self.run_id: str | None = None
        self.timeout = timeout
        self.reconnect_seconds = reconnect_seconds
        self.event_wait = event_wait
        self._token = token
        self._token_file = token_file
        self._transport = transport
        self._cancelled = threading.Event()
        self._plan: dict[str, PlannedStep] = {}
        self._incident: str | None = None

    @property
    def listeners(self) -> list[Listener]:
        return self.bus.listeners

    def client(self) -> AgentClient:
        token = self._token
        if token is None and self._token_file is not None:
            token = read_token_file(self._token_file)
        return AgentClient(self.url, token=token, actor=self.actor, timeout=self.timeout, transport=self._transport)

    # ------------------------------------------------------------------ the Runner interface
    def run(self, playbook_id: str, data_dir: Path | None = None, options: RunOptions | None = None) -> RunResult:
        """Start ``playbook_id`` on the node and follow it to its end (the node's own data dir).

        ``data_dir`` is accepted for the ``Runner`` signature and must be None: the agent acts on
        the data dir its node serves, nothing else.
        """
        options = options or RunOptions()
        if data_dir is not None:
            from engines.errors import InvalidArgumentError

            raise InvalidArgumentError(
                f"a run through the agent of {self.url} acts on the node's own data dir",
                hint="leave --data-dir out when the node has a url",
            )
        request = StartRequest.from_options(playbook_id, self._with_node(options))
        self._cancelled.clear()
        with self.client() as client:
            answer = client.start(request)
            if "result" in answer:  # a dry run: planned on the node, nothing changed
                return self._result(answer["result"])
            self.run_id = str(answer["run_id"])
            self._remember_plan(answer.get("plan") or [])
            self._audit(
                "agent.run",
                "started",
                f"{playbook_id} on {self._target()}",
                run_id=self.run_id,
                assume_yes=options.assume_yes or None,
            )
            if options.open_incident and not options.sandbox:
                self._incident = open_remote_incident(
                    self.state,
                    playbook_id,
                    node=self.node or self.url,
                    actor=self.actor,
                    run_id=self.run_id,
                    library=self.library,
                )
            return self._follow(client, self.run_id, int(answer.get("after", 0)), options)

    def resume(self, run_id: str, options: RunOptions | None = None) -> RunResult:
        """Follow ``run_id`` again: attach to it while it runs, else resume it from its journal on the node."""
        options = self._with_node(options or RunOptions())
        request = StartRequest.from_options("", options)
        self._cancelled.clear()
        with self.client() as client:
            answer = client.resume(run_id, request)
            self.run_id = run_id
            self._remember_plan(answer.get("plan") or [])
            how = "attached" if answer.get("attached") else "resumed"
            self._audit("agent.resume", how, f"run {run_id} on {self._target()}", run_id=run_id)
            playbook_id = str(answer.get("playbook") or "")
            if playbook_id and options.open_incident:
                self._incident = open_remote_incident(
                    self.state,
                    playbook_id,
                    node=self.node or self.url,
                    actor=self.actor,
                    run_id=run_id,
                    library=self.library,
                )
            return self._follow(client, run_id, int(answer.get("after", 0)), options)

    def cancel(self, run_id: str | None = None) -> None:
        """Ask the node to stop the run at the next step boundary (a step already running finishes)."""
        target = run_id or self.run_id
        self._cancelled.set()
        if target is None:
            return
        with self.client() as client:
            client.cancel(target)
        self._audit("agent.cancel", "requested", f"run {target} on {self._target()}", run_id=target)

    def runs(self) -> list[dict[str, Any]]:
        with self.client() as client:
            return client.runs()

    # ------------------------------------------------------------------ following a run
    def _follow(self, client: AgentClient, run_id: str, after: int, options: RunOptions) -> RunResult:
        seq = after
        lost_since: float | None = None
        while True:
            ended: dict[str, Any] | None = None
            try:
                for line in client.events(run_id, after=seq, wait=self.event_wait):
                    lost_since = None
                    if "seq" in line:
                        seq = int(line["seq"])
                        self._handle(client, run_id, event_from_json(line["event"]), options)
                    elif line.get("end"):
                        ended = line
                if ended is not None and not ended.get("live"):
                    info = client.run_info(run_id)
                    break
            except NodeUnreachableError as exc:
                now = time.monotonic()
                lost_since = lost_since or now
                if now - lost_since > self.reconnect_seconds:
                    raise NodeUnreachableError(
                        f"lost the node {self.url} while following run {run_id}: {exc.message}",
                        hint=f"the run goes on on the node (its journal is there); follow it again with "
                        f"`drconsole playbook resume {run_id} --node {self.node or '<name>'}`",
                    ) from exc
                time.sleep(0.5)
        result_json = info.get("result")
        if result_json is None:
            status = info.get("status", "interrupted")
            raise RemoteError(
                f"run {run_id} on {self.url} was cut off ({status}) before it finished",
                hint=f"resume it: `drconsole playbook resume {run_id} --node {self.node or '<name>'}`",
                exit_code=1,
                kind="Interrupted",
            )
        result = self._result(result_json)
        self._audit(
            "agent.run",
            result.status,
            f"{result.playbook} on {self._target()}: {result.message}",
            run_id=run_id,
            verified_ready_at=result.verified_ready_at,
        )
        self._record_incident(result)
        return result

    def _handle(self, client: AgentClient, run_id: str, event: RunEvent, options: RunOptions) -> None:
        self.bus.emit(event)
        if event.kind != "needs_confirmation" or options.confirm is None or not event.step_id:
            return
        pending = client.run_info(run_id).get("pending_confirmation") or {}
        if pending.get("step") != event.step_id:
            return  # answered already (a replayed event after a reconnect or an attach)
        target = str(pending.get("target") or event.data.get("target") or self.node or "")
        planned = self._plan.get(event.step_id) or _bare_step(event, run_id)
        if self._cancelled.is_set():
            client.decline(run_id, event.step_id)
            return
        if options.confirm(planned, target):
            client.confirm(run_id, event.step_id, target)
            self._audit(
                "agent.confirm",
                "confirmed",
                f"{event.step_id} of run {run_id} on {self._target()}",
                run_id=run_id,
                step=event.step_id,
            )
        else:
            client.decline(run_id, event.step_id)
            self._audit(
                "agent.confirm",
                "declined",
                f"{event.step_id} of run {run_id} on {self._target()}",
                run_id=run_id,
                step=event.step_id,
            )

    # ------------------------------------------------------------------ helpers
    def _with_node(self, options: RunOptions) -> RunOptions:
        if options.node is None and self.node is not None:
            options.node = self.node
        return options

    def _remember_plan(self, rows: list[dict[str, Any]]) -> None:
        try:
            self._plan = {planned.id: planned for planned in plan_from_json(rows)}
        except (KeyError, ValueError, TypeError):
            self._plan = {}

    def _result(self, payload: dict[str, Any]) -> RunResult:
        result = result_from_json(payload)
        result.node_url = result.node_url or self.url
        return result

    def _target(self) -> str:
        return f"{self.node} ({self.url})" if self.node else self.url

    def _audit(self, action: str, outcome: str, detail: str, **extra: Any) -> None:
        try:
            self.audit.append(
                actor=self.actor,
                action=action,
                target=self._target(),
                outcome=outcome,
                detail=detail,
                **{key: value for key, value in extra.items() if value is not None},
            )
        except EngineError:
            pass  # this side's audit log is a copy; the node's is the record of what it did

    def _record_incident(self, result: RunResult) -> None:
        result.incident = self._incident
        record_remote_run(self.state, result, node=self.node or self.url, actor=self.actor, incident=self._incident)


def _bare_step(event: RunEvent, run_id: str) -> PlannedStep:
    from playbooks.models import Step

    step = Step.model_validate(
        {
            "id": "confirm",
            "action": str(event.data.get("action") or "unknown"),
            "title": event.message,
            "destructive": True,
        }
    )
    return PlannedStep(str(event.step_id), step, "", event.playbook or run_id)
