"""Fixtures: a real Prometheus and Alertmanager (``promstack``), and real ``drconsole node serve`` processes.

Every process a fixture starts is stopped by its finalizer, even when the test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import promstack
import pytest

from drills.node import NodeProcess


@pytest.fixture(scope="session")
def prom_tools() -> None:
    """promtool, prometheus and prometheus-alertmanager are installed (or the test fails saying how)."""
    promstack.ensure_installed()


@pytest.fixture
def alertmanager(tmp_path: Path, prom_tools: None) -> Iterator[promstack.AmProcess]:
    with promstack.start_alertmanager(tmp_path / "alertmanager") as process:
        yield process


@pytest.fixture
def prometheus(tmp_path: Path, prom_tools: None) -> Iterator[Callable[..., promstack.PromProcess]]:
    """``prometheus(targets=[...], rule_files=[...], alertmanager_url=...)`` -> a started PromProcess."""
    started: list[promstack.PromProcess] = []

    def start(**options: Any) -> promstack.PromProcess:
        process = promstack.start_prometheus(tmp_path / f"prometheus-{len(started)}", **options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Callable[[str], NodeProcess]]:
    """``node(name)`` -> a started ``drconsole node serve`` (lsm engine) in a real subprocess."""
    started: list[NodeProcess] = []

    def start(name: str) -> NodeProcess:
        process = NodeProcess(tmp_path / name, "lsm", tmp_path / f"{name}.log")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
