"""Helpers of the backup tests: the CLI in-process, models of engine state, damage, tree hashes.

Test modules import them with ``from backup_support import ...`` (the conftest puts this folder
on sys.path).
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import CliResult, run_cli_in_process

BACKENDS = ("cow", "lsm", "rocksdb")


def backend_present(backend: str) -> bool:
    try:
        return importlib.util.find_spec(f"engines.{backend}.engine") is not None
    except ModuleNotFoundError:
        return False


Result = CliResult


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Result:
    """Run ``drconsole ARGS`` in-process."""
    from console.cli.main import main

    return run_cli_in_process(capsys, main, *args)


def assert_error(result: Result, code: int, *, contains: str | None = None) -> str:
    """The documented failure: that exit code, one line on stderr, no traceback."""
    assert result.code == code, f"exit {result.code}, wanted {code}: {result.err!r} {result.out!r}"
    assert "Traceback" not in result.err + result.out
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {result.err!r}"
    assert lines[0].startswith("drconsole: error: ")
    if contains is not None:
        assert contains in lines[0], lines[0]
    return lines[0]


def export(path: Path) -> dict[bytes, bytes]:
    """Every live key of the data dir at ``path`` (opened read-only: nothing is written)."""
    from engines import open_engine

    with open_engine(path, mode="ro") as engine:
        return dict(engine.scan())


@dataclass
class Model:
    """What the store must hold after each LSN: a replay of the writes the test made."""

    writes: list[tuple[int, int, list[tuple[bytes, bytes | None]]]] = field(default_factory=list)  # (lsn, ns, entries)

    def record(self, lsn: int, entries: list[tuple[bytes, bytes | None]]) -> None:
        self.writes.append((lsn, time.time_ns(), entries))

    def state_at(self, lsn: int, base: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
        state = dict(base or {})
        for write_lsn, _ns, entries in self.writes:
            if write_lsn > lsn:
                break
            for key, value in entries:
                if value is None:
                    state.pop(key, None)
                else:
                    state[key] = value
        return state


def write_rows(
    engine: Any, model: Model, start: int, count: int, *, tag: str, rng: random.Random | None = None
) -> None:
    """Puts, overwrites, deletes and batches, each one recorded in ``model`` with its LSN."""
    rng = rng or random.Random(start)
    for n in range(start, start + count):
        key = f"key{n % 97:04d}".encode()
        choice = rng.random()
        if choice < 0.15:
            entries: list[tuple[bytes, bytes | None]] = [(key, None)]
            lsn = engine.delete(key)
        elif choice < 0.3:
            entries = [(f"batch{n:05d}.{i}".encode(), f"{tag}-{n}-{i}".encode()) for i in range(3)] + [(key, None)]
            lsn = engine.write_batch(entries)
        else:
            entries = [(key, f"{tag}-{n}".encode() * (1 + n % 5))]
            lsn = engine.put(key, entries[0][1])
        model.record(lsn, entries)


def corrupt_byte(path: Path, offset: int) -> None:
    """Flip every bit of the byte at ``offset`` (negative: from the end)."""
    size = path.stat().st_size
    position = offset if offset >= 0 else size + offset
    with open(path, "r+b") as handle:
        handle.seek(position)
        byte = handle.read(1)
        handle.seek(position)
        handle.write(bytes([byte[0] ^ 0xFF]))


def tree_hash(path: Path) -> str:
    """A digest of every name, type, mode and content under ``path`` (or that it is absent)."""
    import hashlib
    import stat

    digest = hashlib.sha256()
    if not os.path.lexists(path):
        return "absent"
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(root, name)
            info = os.lstat(full)
            digest.update(f"{os.path.relpath(full, path)}|{stat.S_IFMT(info.st_mode)}|{info.st_mode:o}|".encode())
            if stat.S_ISREG(info.st_mode):
                with open(full, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def backup_dirs(repo: Path) -> dict[str, str]:
    """``{backup_id: tier}`` of the backups published in the tiers (not work in progress)."""
    return {
        entry.name: tier
        for tier in ("daily", "weekly", "monthly")
        if (repo / tier).is_dir()
        for entry in (repo / tier).iterdir()
        if entry.is_dir()
    }


def first_put_once_up(client: Any, node: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Write key ``first`` as soon as a just-started node process takes writes (its log shown if it dies)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.put(b"first", b"1")
            return
        except Exception:  # noqa: BLE001 - not up yet
            assert node.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)


Members = list[tuple[Any, bytes]]  # (tarfile.TarInfo, content)


def recraft(
    folder: Path, change: Callable[[Members], Members] = lambda members: members, *, format_version: int | None = None
) -> None:
    """Re-pack a full backup's archive through ``change`` and make every checksum agree with it again.

    The archive gets a ``SHA256SUMS`` member of its files when the backup's format is 1 (the
    metadata's ``format_version``, or ``format_version`` given, which is written there too), as
    drconsole wrote archives before 2026-12-07. Then the SHA256SUMS beside it and the metadata's
    checksum and size are redone: what an attacker, or a backup of the old format, has.
    """
    import hashlib
    import io
    import json
    import tarfile

    import zstandard

    archive = folder / f"{folder.name}.tar.zst"
    meta_path = folder / f"{folder.name}.metadata.json"
    meta = json.loads(meta_path.read_text())
    if format_version is not None:
        meta["format_version"] = format_version
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(archive.read_bytes())).read()
    members: Members = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for info in tar.getmembers():
            if info.name == "SHA256SUMS":
                continue
            content = tar.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            members.append((info, content))
    members = change(members)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
        if meta.get("format_version", 1) <= 1:
            sums = "".join(
                f"{hashlib.sha256(content).hexdigest()}  {info.name}\n" for info, content in members if info.isfile()
            ).encode()
            listing = tarfile.TarInfo("SHA256SUMS")
            listing.size = len(sums)
            tar.addfile(listing, io.BytesIO(sums))
    meta_path.write_text(json.dumps(meta))
    store_archive(folder, out.getvalue())


def store_archive(folder: Path, tar: bytes) -> None:
    """Compress ``tar`` as the backup's archive; redo the SHA256SUMS beside it and the metadata's checksum, size."""
    import hashlib
    import json

    import zstandard

    archive = folder / f"{folder.name}.tar.zst"
    packed = zstandard.ZstdCompressor(write_checksum=True).compress(tar)
    archive.write_bytes(packed)
    digest = hashlib.sha256(packed).hexdigest()
    (folder / "SHA256SUMS").write_text(f"{digest}  {archive.name}\n")
    meta_path = folder / f"{folder.name}.metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["checksum"], meta["size_bytes"] = f"sha256:{digest}", len(packed)
    meta_path.write_text(json.dumps(meta))
