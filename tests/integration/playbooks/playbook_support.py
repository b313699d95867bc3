"""Helpers of the playbook integration tests: real data dirs, real corruption, tree hashes, the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import CliResult, run_cli_in_process

from engines import create_engine

ROOT = Path(__file__).resolve().parents[3]


def fill(path: Path, backend: str = "rocksdb", count: int = 3000, *, batches: int = 1) -> Path:
    """A data dir with ``count`` keys written in ``batches`` flushed batches, and one WAL-only key."""
    with create_engine(path, backend=backend) as engine:
        per = count // batches
        for batch in range(batches):
            engine.write_batch([(b"key%06d" % i, b"value-%06d" % i * 4) for i in range(batch * per, (batch + 1) * per)])
            engine.flush()
        engine.put(b"after-flush", b"only in the WAL until the next flush")
    return path


def flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def corrupt_rocksdb_table(data: Path) -> Path:
    table = sorted((data / "rocksdb").glob("*.sst"))[0]
    flip_byte(table, 100)
    return table


def tree_state(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``root`` with its size and content hash (and nothing else changes a dry run)."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            state[str(path.relative_to(root))] = (len(data), hashlib.sha256(data).hexdigest())
        elif path.is_dir():
            state[str(path.relative_to(root)) + "/"] = (0, "")
    return state


def cli_main(argv: list[str]) -> int:
    from console.cli.main import main

    return int(main(argv))


def cli_command() -> list[str]:
    return [str(Path(sys.executable).with_name("drconsole"))]


Result = CliResult


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Result:
    """Run ``drconsole ARGS`` in-process."""
    return run_cli_in_process(capsys, cli_main, *args)


def spawn(*args: str | Path, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*cli_command(), *map(str, args)],
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
