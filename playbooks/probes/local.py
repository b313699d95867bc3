"""Probes answered from one data dir on this host, and from this host's disk and memory.

When the context carries a fleet snapshot with figures for the node, the disk and memory probes
use them (the snapshot is what the console shows); otherwise they measure here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from engines.checks import verify_data_dir
from engines.errors import EngineError
from engines.marker import MARKER_NAME, read_marker
from engines.options import EngineOptions
from engines.registry import open_engine
from engines.wal import WalReader
from playbooks.evidence import (
    existing_parent,
    lock_held,
    lock_holders,
    missing_store_files,
)
from playbooks.hung import HEALTH_TIMEOUT, HungProcess, hung_holders, listening_urls
from playbooks.probes.base import Answer, ProbeContext, probe

__all__ = [
    "hung_answer",
    "largest_process",
    "needs_data_dir",
    "verify_report",
    "RANSOM_SUFFIXES",
    "HungProcess",
    "hung_holders",
    "listening_urls",
    "HEALTH_TIMEOUT",
]


RANSOM_SUFFIXES = (".locked", ".encrypted", ".crypt", ".enc", ".crypted")
RANSOM_NOTES = ("decrypt", "ransom", "how_to_recover", "readme_for_decrypt")


def needs_data_dir(function: Callable[[ProbeContext, Path], Answer]) -> Callable[[ProbeContext], Answer]:
    """A probe of the local data dir: without one it cannot tell, and says why (the probe gets the dir)."""

    @functools.wraps(function)
    def checked(context: ProbeContext) -> Answer:
        if context.data_dir is None:
            return Answer(None, "no data dir to look at (pass --data-dir, or --node with a data_dir in the config)")
        return function(context, context.data_dir)

    return checked


def verify_report(context: ProbeContext) -> Any:
    data_dir = context.data_dir
    assert data_dir is not None
    return context.cached("verify", lambda: verify_data_dir(data_dir))


@probe("node.running")
@needs_data_dir
def node_running(context: ProbeContext, data_dir: Path) -> Answer:
    """Is a process running on the data dir (holding its engine lock)?"""
    if lock_held(data_dir):
        return Answer(True, f"a process holds the engine lock of {data_dir}")
    return Answer(False, f"no process holds the engine lock of {data_dir}")


@probe("process.hung")
@needs_data_dir
def process_hung(context: ProbeContext, data_dir: Path) -> Answer:
    """Is the process holding the data dir hung (stopped, or not answering its health check)?"""
    return hung_answer(data_dir)


def hung_answer(data_dir: Path) -> Answer:
    """Whether the process holding ``data_dir``'s lock is hung, with the evidence (no holder: no)."""
    holders = lock_holders(data_dir)
    if not holders:
        if lock_held(data_dir):
            return Answer(None, f"the lock of {data_dir} is held by a process we cannot see (another namespace?)")
        return Answer(False, f"no process holds the lock of {data_dir}")
    hung = hung_holders(data_dir)
    if hung:
        return Answer(
            True, "; ".join(entry.sentence(data_dir) for entry in hung), {"hung": [entry.to_json() for entry in hung]}
        )
    shown = ", ".join(f"pid {pid}" for pid, _ in holders)
    return Answer(
        False,
        f"{shown} holds the lock of {data_dir} and is running (not stopped; its /health, when it "
        f"serves one, answers within {HEALTH_TIMEOUT:g} s)",
    )


@probe("node.opens")
@needs_data_dir
def node_opens(context: ProbeContext, data_dir: Path) -> Answer:
    """Can the service start: does the engine open?"""
    if lock_held(data_dir):
        return Answer(True, f"a running process holds {data_dir}: the service started")
    clock = time.monotonic()
    try:
        with open_engine(data_dir, mode="ro") as engine:
            backend = engine.backend
            last = engine.last_lsn
    except EngineError as exc:
        return Answer(False, f"open failed: {exc.message}", {"error": type(exc).__name__})
    elapsed = time.monotonic() - clock
    return Answer(
        True, f"engine opened read-only in {elapsed:.2f} s ({backend}, last LSN {last})", {"seconds": elapsed}
    )


@probe("wal.corrupt")
@needs_data_dir
def wal_corrupt(context: ProbeContext, data_dir: Path) -> Answer:
    """Is the write-ahead log corrupt?"""
    validation = WalReader(data_dir / "wal").validate()
    if validation.corruption is None:
        return Answer(False, f"WAL valid: {validation.records} records in {validation.segments} segments")
    problem = validation.corruption
    return Answer(
        True,
        f"{problem.reason} in {problem.segment} at offset {problem.offset} "
        f"({validation.records} good records before it)",
        {"corruption": problem.to_json()},
    )


def largest_process() -> dict[str, Any] | None:
    """pid, name and resident bytes of the process using the most memory here."""
    best: dict[str, Any] | None = None
    for process in psutil.process_iter(["pid", "name", "memory_info"]):
        info = process.info
        if info.get("memory_info") is None:
            continue
        if best is None or info["memory_info"].rss > best["rss_bytes"]:
            best = {"pid": info["pid"], "name": info.get("name") or "?", "rss_bytes": info["memory_info"].rss}
    return best


@probe("config.broken")
@needs_data_dir
def config_broken(context: ProbeContext, data_dir: Path) -> Answer:
    """Is the configuration (the data dir's drconsole.json) broken?"""
    try:
        marker = read_marker(data_dir)
    except EngineError as exc:
        return Answer(True, exc.message)
    if marker is None:
        return Answer(True, f"{MARKER_NAME} is missing from {data_dir}")
    try:
        EngineOptions.model_validate(marker.options | {"durability": marker.durability})
    except ValueError as exc:
        return Answer(True, f"{MARKER_NAME} holds bad engine options: {str(exc).splitlines()[-1].strip()}")
    backend, missing_files = missing_store_files(data_dir)
    others = {"cow": "data.cow", "lsm": "manifest.json", "rocksdb": "rocksdb/CURRENT"}
    for other, name in others.items():
        if other != marker.backend and (data_dir / name).exists() and missing_files:
            return Answer(True, f"{MARKER_NAME} says {marker.backend} but {name} ({other}) is what is there")
    return Answer(
        False,
        f"{MARKER_NAME} is valid: backend {marker.backend}, format {marker.format_version}, "
        f"durability {marker.durability}",
    )


@probe("data.files_present")
@needs_data_dir
def files_present(context: ProbeContext, data_dir: Path) -> Answer:
    """Are the data files present?"""
    if not data_dir.exists():
        return Answer(
            False, f"data dir {data_dir} does not exist (nearest existing parent: {existing_parent(data_dir)})"
        )
    backend, missing_files = missing_store_files(data_dir)
    if backend is None:
        return Answer(
            False, f"{data_dir} holds no engine files (no {MARKER_NAME}, no data.cow, manifest.json or rocksdb/)"
        )
    store_missing = [name for name in missing_files if name != MARKER_NAME]
    if store_missing:
        return Answer(False, f"{backend} store files missing from {data_dir}: {', '.join(store_missing)}")
    return Answer(True, f"{backend} store files present in {data_dir}")


@probe("backup.recent")
def backup_recent(context: ProbeContext) -> Answer:
    """Is the newest backup recent?"""
    from engines.backup import list_backups

    spec = context.spec(context.node)
    repo = context.repo or (Path(spec.backup_repo) if spec is not None and spec.backup_repo is not None else None)
    if repo is None:
        return Answer(
            None,
            "no backup repository known: whether a backup exists elsewhere cannot be told from "
            "here (pass --repo R, or set backup_repo for the node)",
        )
    listing = list_backups(repo)
    fulls = [entry for entry in listing.backups if entry.get("type") == "full"]
    if not fulls:
        return Answer(False, f"no full backup in {repo}")
    newest = min(fulls, key=lambda entry: entry.get("age_seconds") or 0.0)
    age = float(newest.get("age_seconds") or 0.0)
    limit = context.backup_max_age_seconds
    return Answer(
        age <= limit,
        f"newest full backup {newest['backup_id']} is {age / 3600:.1f} h old; limit {limit / 3600:.0f} h",
        {"backup_id": newest["backup_id"], "age_seconds": age},
    )


@probe("ransomware.signs")
@needs_data_dir
def ransomware_signs(context: ProbeContext, data_dir: Path) -> Answer:
    """Are there signs of ransomware (encrypted or renamed files, ransom notes)?"""
    found = ransomware_files(data_dir)  # type: ignore[arg-type]
    if found:
        shown = ", ".join(found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
        return Answer(True, f"{len(found)} suspicious files: {shown}", {"files": found})
    return Answer(False, f"no encrypted-looking files or ransom notes under {data_dir}")


def ransomware_files(data_dir: Path) -> list[str]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    found = []
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if relative.parts and relative.parts[0] == ".quarantine":
            continue
        name = path.name.lower()
        if path.is_file() and (name.endswith(RANSOM_SUFFIXES) or any(note in name for note in RANSOM_NOTES)):
            found.append(str(relative))
    return found
