"""The promsource tests' fixtures; the helpers are in ``promsource_kit`` beside this file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "console"))  # console_testkit: screen_text

from promsource_kit import Junk, Stack, start_stack  # noqa: E402 - needs the path above


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the package (a start costs about ten seconds); a test that kills a node
    restarts it before it lets go (test_node_down.py's ``killed``)."""
    started = start_stack(tmp_path_factory.mktemp("promsource"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def junk() -> Iterator[Callable[[str], Junk]]:
    servers: list[Junk] = []

    def make(mode: str) -> Junk:
        server = Junk(mode)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
