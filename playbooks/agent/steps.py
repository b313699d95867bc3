"""Which steps need the node's data dir, and the node actions that mean something else on the node itself.

The registry gate is where a step meets its action (``Registry.invoke``), so the agent decides
there, step by step, what the node must be doing for that action:

* an action that **writes** is taken to need the data dir's files, and therefore the data dir's
  lock (``playbooks/actions/exclusive.py``, ``open_engine(..., "rw")``): the node drains and
  releases it first. That is the safe default for any new action. The exceptions write elsewhere
  (a backup repository, a report, another node through its API): ``WRITES_ELSEWHERE`` and the
  ``node.`` family, which talk to nodes over HTTP, this one included;
* before a ``node.`` action the node serves again (a status, a promote, a rejoin see it up);
* a read-only check runs in whatever state the node is in, as it would beside a running node.

On the node itself three node actions change meaning: stopping the process would kill the agent
running the playbook, so ``node.stop`` of this node drains and releases the data dir instead,
``node.start`` reopens it and ``node.restart`` does both. ``backup.create`` of a serving node is
the node's own hot backup (no drain, no outage). Those of other nodes act as they always do.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from playbooks.actions import ActionContext, ActionResult
from playbooks.actions.base import Action
from playbooks.agent.cancel import CancellableRegistry

__all__ = ["AgentRegistry", "NodeSide", "needs_data_dir", "talks_to_nodes", "WRITES_ELSEWHERE"]

# Writing actions that never touch the data dir's files (their writes go to a repository, a report
# or a process): they run while the node serves.
WRITES_ELSEWHERE = frozenset(
    {
        "backup.verify",
        "report.validation",
        "drill.cleanup",
        "memory.stop_culprit",
        "process.kill_hung",
        "process.resume",
        "checks.smoke",
    }
)


def talks_to_nodes(entry: Action) -> bool:
    return entry.name.startswith("node.")


def needs_data_dir(entry: Action) -> bool:
    return entry.writes and not talks_to_nodes(entry) and entry.name not in WRITES_ELSEWHERE


class NodeSide(Protocol):
    """What the registry needs from the agent: the node's data dir, and draining or reopening it."""

    data_dir: Path

    def release(self, why: str) -> None: ...

    def reopen(self, why: str) -> None: ...

    def serving(self) -> bool: ...

    def hot_backup(self, repo: str | None, incremental: bool) -> dict[str, Any]: ...


class AgentRegistry(CancellableRegistry):
    """The library's actions as the agent runs them: drained, reopened or redirected per step."""

    def __init__(self, cancelled: threading.Event, node: NodeSide) -> None:
        super().__init__(cancelled)
        self.node = node
        for name, wrapper in (
            ("node.stop", self._stop),
            ("node.start", self._start),
            ("node.restart", self._restart),
            ("backup.create", self._backup),
        ):
            if name in self:
                original = self._actions[name]
                self._actions[name] = replace(original, function=wrapper(original.function))

    def invoke(self, name: str, context: ActionContext, args: dict[str, Any]) -> ActionResult:
        entry = self.get(name)
        if not self.cancelled.is_set() and self._own(context):
            if needs_data_dir(entry) and name != "backup.create":
                self.node.release(f"step {context.step} ({name}) of run {context.run_id} needs the data dir")
            elif talks_to_nodes(entry) and name not in ("node.stop", "node.start", "node.restart"):
                self.node.reopen(f"step {context.step} ({name}) asks the nodes over HTTP")
        return super().invoke(name, context, args)

    def _own(self, context: ActionContext) -> bool:
        return context.data_dir is not None and Path(context.data_dir).absolute() == self.node.data_dir.absolute()

    # ------------------------------------------------------------------ this node's own process
    def _stop(self, original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
        @functools.wraps(original)  # the action keeps its arguments (checked at load time)
        def stop(context: ActionContext, **args: Any) -> ActionResult:
            if not self._own(context):
                return original(context, **args)
            self.node.release(f"node.stop in run {context.run_id}")
            return ActionResult(
                True,
                f"the node's agent drained and closed its engine: {context.data_dir} is free "
                "(clients get 503 recovering until the run reopens it)",
                {"stopped": True, "pid": os.getpid(), "how": "drained by its own agent"},
            )

        return stop

    def _start(self, original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
        @functools.wraps(original)  # the action keeps its arguments (checked at load time)
        def start(context: ActionContext, **args: Any) -> ActionResult:
            if not self._own(context):
                return original(context, **args)
            self.node.reopen(f"node.start in run {context.run_id}")
            return ActionResult(
                True, f"the node reopened {context.data_dir} and serves it again", {"started": True, "pid": os.getpid()}
            )

        return start

    def _restart(self, original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
        @functools.wraps(original)  # the action keeps its arguments (checked at load time)
        def restart(context: ActionContext, **args: Any) -> ActionResult:
            if not self._own(context):
                return original(context, **args)
            self.node.release(f"node.restart in run {context.run_id}")
            self.node.reopen(f"node.restart in run {context.run_id}")
            return ActionResult(
                True,
                f"the node closed and reopened {context.data_dir} (its peers and follower started afresh)",
                {"pid": os.getpid(), "restarted": True},
            )

        return restart

    def _backup(self, original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
        @functools.wraps(original)  # the action keeps its arguments (checked at load time)
        def create(context: ActionContext, **args: Any) -> ActionResult:
            if not self._own(context) or not self.node.serving():
                return original(context, **args)
            data = self.node.hot_backup(args.get("repo"), bool(args.get("incremental", False)))
            if data.get("backup_id") is None:
                return ActionResult(True, "incremental backup: no new WAL since the last backup", data)
            return ActionResult(
                True,
                f"{data.get('type')} backup {data.get('backup_id')} of the serving node: LSN "
                f"{data.get('lsn_start')}..{data.get('lsn_end')}",
                data,
                touched=[str(data.get("path"))],
            )

        return create
