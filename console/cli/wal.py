"""``drconsole wal validate|truncate``: the shared write-ahead log of one data directory.

``validate`` only reads. ``truncate`` cuts the log at the first bad record; the cut-off tail is
moved into ``<data-dir>/.quarantine/<ts>-wal-truncate/``, never deleted, and the quarantine folder
is created only when there is something to cut.
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from console.cli.common import CommandGroup, data_dir_option
from console.output import EXIT_OK, EXIT_PROBLEM, Output

__all__ = ["register", "run_validate", "run_truncate"]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``wal`` and its actions to ``subparsers``; the engines are imported by the handler that runs."""
    wal = CommandGroup(subparsers, "wal", "inspect and repair the write-ahead log", common)
    validate = wal.add("validate", "check every WAL record (read-only; exit 1 on a problem)", run_validate)
    data_dir_option(validate, engine_option=False)
    truncate = wal.add("truncate", "cut the WAL at the first bad record; the tail goes to quarantine", run_truncate)
    data_dir_option(truncate, engine_option=False)
    truncate.add_argument("--yes", action="store_true", help="confirm the truncation (destructive)")


def _describe(validation: Any, data_dir: Path) -> str:
    report = validation.to_json()
    if report["ok"]:
        span = "" if report["first_lsn"] is None else f", LSN {report['first_lsn']}..{report['last_lsn']}"
        return f"ok: WAL of {data_dir}: {report['records']} records{span}"
    problem = report["corruption"]
    return (
        f"FAILED: WAL of {data_dir}: {problem['reason']} in {problem['segment']} at offset "
        f"{problem['offset']} ({report['records']} good records before it)"
    )


def run_validate(args: argparse.Namespace, out: Output) -> int:
    from engines.base import WAL_DIR
    from engines.marker import detect_backend
    from engines.wal import WalReader

    data_dir: Path = args.data_dir
    detect_backend(data_dir)  # a missing or foreign dir is "cannot be opened", not an empty log
    validation = WalReader(data_dir / WAL_DIR).validate()
    out.result(validation.to_json(), _describe(validation, data_dir))
    return EXIT_OK if validation.ok else EXIT_PROBLEM


def _exclusive(data_dir: Path) -> AbstractContextManager[None]:
    """Hold the data dir's engine lock, so the log is not cut under a running engine."""
    from engines.locking import data_dir_locked

    return data_dir_locked(data_dir, hint="stop the node that holds it, then run `wal truncate` again")


def _as_json(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "to_json"):
        return value.to_json()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    return str(value)


def _nothing_to_truncate(out: Output, data_dir: Path) -> int:
    out.result(
        {"ok": True, "truncated": False, "corruption": None, "quarantine": None},
        f"nothing to truncate: the WAL of {data_dir} is valid",
    )
    return EXIT_OK


def run_truncate(args: argparse.Namespace, out: Output) -> int:
    from engines.base import WAL_DIR
    from engines.errors import SafetyRefusal
    from engines.fsutil import new_quarantine
    from engines.marker import detect_backend
    from engines.wal import WalReader, truncate_at_first_bad

    data_dir: Path = args.data_dir
    detect_backend(data_dir)
    if not args.yes:
        raise SafetyRefusal(
            f"wal truncate of {data_dir} cuts the log and was not confirmed",
            hint="run `drconsole wal validate` to see the cut point, then re-run with --yes",
        )
    wal_dir = data_dir / WAL_DIR
    if WalReader(wal_dir).validate().ok:
        return _nothing_to_truncate(out, data_dir)
    with _exclusive(data_dir):
        before = WalReader(wal_dir).validate()  # again, under the lock: what we cut is what we saw
        if before.ok:
            return _nothing_to_truncate(out, data_dir)
        quarantine = new_quarantine(data_dir, "wal-truncate")
        outcome = truncate_at_first_bad(wal_dir, quarantine)
        after = WalReader(wal_dir).validate()
    problem = before.corruption
    payload = {
        "ok": after.ok,
        "truncated": True,
        "corruption": problem.to_json() if problem is not None else None,
        "quarantine": str(quarantine),
        "kept": {"records": after.records, "first_lsn": after.first_lsn, "last_lsn": after.last_lsn},
        "result": _as_json(outcome),
    }
    text = (
        (
            f"truncated the WAL of {data_dir} at {problem.segment} offset {problem.offset} ({problem.reason}); "
            f"kept {after.records} records, the tail is in {quarantine}"
        )
        if problem is not None
        else f"truncated the WAL of {data_dir}; the tail is in {quarantine}"
    )
    out.result(payload, text)
    return EXIT_OK if after.ok else EXIT_PROBLEM
