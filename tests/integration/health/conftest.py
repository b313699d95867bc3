"""Fixtures of the health tests: real node processes, stopped whatever happens; a state dir per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.health.health_support import ServedNode


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(state))
    return state


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[..., ServedNode]]:
    """``served(name, *args, engine=...)`` -> a started ``drconsole node serve`` in a subprocess."""
    started: list[ServedNode] = []

    def start(name: str, *extra: str, **options: Any) -> ServedNode:
        node = ServedNode(options.pop("data_dir", tmp_path / name), *extra, **options)
        started.append(node)
        return node.start()

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def threaded(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``threaded(name, **NodeConfig options)`` -> a started node served by uvicorn in a thread."""
    from integration.health.health_support import free_port

    from engines.node.config import NodeConfig
    from engines.node.server import ServerThread

    started: list[ServerThread] = []

    def start(name: str, **options: Any) -> ServerThread:
        options.setdefault("engine", "lsm")
        options.setdefault("data_dir", tmp_path / name)
        options.setdefault("port", free_port())
        options.setdefault("scrub_interval", 0)
        server = ServerThread(NodeConfig(name=name, **options)).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
