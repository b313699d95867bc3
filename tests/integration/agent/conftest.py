"""Fixtures of the agent tests: nodes with their agent in processes of their own, cleaned up."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from agent_kit import AgentNode, write_token  # noqa: E402


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return write_token(tmp_path / "node.token")


@pytest.fixture
def agent_node(tmp_path: Path, token_file: Path) -> Iterator[Callable[..., AgentNode]]:
    started: list[AgentNode] = []

    def start(name: str = "orders", **kwargs: Any) -> AgentNode:
        kwargs.setdefault("token_file", token_file)
        node = AgentNode(
            kwargs.pop("data_dir", tmp_path / name), kwargs.pop("state", tmp_path / f"{name}-state"), **kwargs
        ).start()
        started.append(node)
        return node

    yield start
    for node in started:
        try:
            node.stop()
        except Exception:  # noqa: BLE001 - best-effort cleanup of the processes this test started
            if node.process is not None and node.process.poll() is None:
                node.process.kill()
