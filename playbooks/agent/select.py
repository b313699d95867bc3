"""``runner_for(node)``: the one choice between a run on the node's agent and a run on local files.

    runner = runner_for(spec, listeners=[render])        # spec: fleet.NodeSpec
    result = runner.run("data-recovery", None, RunOptions(assume_yes=True, node=spec.name))
    runner.cancel()                                      # from another thread; stops at the next step

A node with a ``url`` is acted on through its agent (``RemoteRunner``): the node runs the
playbook against the data dir it serves, drains and reopens itself around the steps that need
the files, and keeps the journal. A node without one is a data dir no process serves (or one on
this host read from a data dir only): the local ``Runner`` acts on it (``LocalRunner``, the same
runner with the data dir bound and a ``cancel``). There is no third choice.

Both answer ``run(playbook_id, data_dir=None, options) -> RunResult``, ``resume(run_id, options)``,
``cancel(run_id=None)`` and ``bus``/``listeners``; ``NodeRunner`` is that protocol.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from engines.errors import InvalidArgumentError
from playbooks.agent.cancel import CancellableRegistry
from playbooks.agent.client import RemoteRunner
from playbooks.events import EventBus, Listener
from playbooks.runner import Runner, RunOptions, RunResult
from playbooks.state import StateDir

__all__ = ["NodeRunner", "LocalRunner", "runner_for"]


class NodeRunner(Protocol):
    """What the CLI and the console call, whichever runner ``runner_for`` chose."""

    bus: EventBus

    def run(self, playbook_id: str, data_dir: Path | None = None, options: RunOptions | None = None) -> RunResult: ...

    def resume(self, run_id: str, options: RunOptions | None = None) -> RunResult: ...

    def cancel(self, run_id: str | None = None) -> None: ...


class LocalRunner(Runner):
    """The local ``Runner`` on one data dir (``data_dir`` is the default target), cancellable."""

    def __init__(
        self,
        data_dir: Path | None,
        library: Any | None = None,
        *,
        state: StateDir | None = None,
        listeners: list[Listener] | None = None,
    ) -> None:
        self.cancelled = threading.Event()
        super().__init__(library, state=state, registry=CancellableRegistry(self.cancelled), listeners=listeners)
        self.data_dir = Path(data_dir).absolute() if data_dir is not None else None

    @property
    def listeners(self) -> list[Listener]:
        return self.bus.listeners

    def run(self, playbook_id: str, data_dir: Path | None = None, options: RunOptions | None = None) -> RunResult:
        self.cancelled.clear()
        return super().run(playbook_id, data_dir if data_dir is not None else self.data_dir, options)

    def resume(self, run_id: str, options: RunOptions | None = None) -> RunResult:
        self.cancelled.clear()
        return super().resume(run_id, options)

    def cancel(self, run_id: str | None = None) -> None:
        """Stop at the next step boundary: every later action is refused (a running step finishes)."""
        self.cancelled.set()


def runner_for(
    node: Any | None,
    *,
    data_dir: Path | None = None,
    listeners: list[Listener] | None = None,
    state: StateDir | None = None,
    library: Any | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    reconnect_seconds: float = 60.0,
) -> RemoteRunner | LocalRunner:
    """The runner for ``node`` (a ``NodeSpec``, or anything with ``name``, ``url``, ``data_dir``, ``token_file``).

    ``url`` set: ``RemoteRunner`` on the node's agent (``token_file`` is read at each request, or
    ``token`` given). Else ``LocalRunner`` on the node's ``data_dir`` (``node`` None: on
    ``data_dir``, the CLI's ``--data-dir D``; or neither, for ``resume`` of a local journal).

    Raises:
        InvalidArgumentError: the node has neither (the config validation normally prevents it).
    """
    if node is None:
        return LocalRunner(data_dir, library, state=state, listeners=listeners)
    url = getattr(node, "url", None)
    name = getattr(node, "name", None)
    if url:
        token_file = getattr(node, "token_file", None)
        return RemoteRunner(
            url,
            token=token,
            token_file=Path(token_file) if token_file else None,
            node=name,
            listeners=listeners,
            state=state,
            library=library,
            timeout=timeout,
            reconnect_seconds=reconnect_seconds,
        )
    data_dir = getattr(node, "data_dir", None) or data_dir
    if data_dir is None:
        raise InvalidArgumentError(
            f"node {name} has neither a url nor a data_dir",
            hint="give its [[node]] table a url (its agent) or a data_dir (local files)",
        )
    return LocalRunner(Path(data_dir), library, state=state, listeners=listeners)
