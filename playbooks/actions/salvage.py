"""Data salvage, when repair and restore are not enough: copy out every key that can still be read.

The damaged dir is only read (opened read-only, WAL read skipping damaged records); what can be
read goes into a new data dir (and optionally a JSONL export). A scan stopped by corruption is
resumed past the last good key where the store allows it; the WAL, replayed in LSN order on top,
brings back every write it still holds. The report says where reading stopped and why.
"""

from __future__ import annotations

from pathlib import Path

from engines.errors import CorruptionError, EngineError, InvalidArgumentError
from engines.marker import detect_backend, read_marker
from engines.options import EngineOptions
from engines.registry import create_engine, engine_class
from engines.transfer import encode_row
from engines.wal import RecoveryMode, WalReader
from playbooks.actions.base import ActionContext, ActionResult, action

__all__ = ["salvage_keys"]

_BATCH = 1000
_MAX_RESUMES = 64


def salvage_keys(source: Path) -> tuple[dict[bytes, bytes | None], list[str], int]:
    """(key -> value or None for deleted, notes on what could not be read, WAL records replayed)."""
    notes: list[str] = []
    keys: dict[bytes, bytes | None] = {}
    backend = detect_backend(source)
    try:
        marker = read_marker(source)
        base = dict(marker.options) if marker is not None else {}
    except EngineError:
        base = {}
    try:
        options = EngineOptions.model_validate(base | {"wal_recovery": RecoveryMode.SKIP_ANY_CORRUPTED.value})
    except ValueError:
        options = EngineOptions.model_validate({"wal_recovery": RecoveryMode.SKIP_ANY_CORRUPTED.value})
    try:
        engine = engine_class(backend)(source, mode="ro", options=options)
    except EngineError as exc:
        notes.append(f"the store does not open ({exc.message}); only the WAL is salvaged")
        engine = None
    if engine is not None:
        with engine:
            start: bytes | None = None
            for _attempt in range(_MAX_RESUMES):
                try:
                    for key, value in engine.scan(start=start):
                        keys[key] = value
                        start = key + b"\x00"
                    break
                except CorruptionError as exc:
                    notes.append(f"reading stopped after key {start[:-1] if start else b''!r}: {exc.message}")
                    if start is None:
                        break
                    start = start + b"\x00"  # try just past the last good key
            else:
                notes.append(f"gave up after {_MAX_RESUMES} damaged regions")
    replayed = 0
    try:
        for record in WalReader(source / "wal").records(mode=RecoveryMode.SKIP_ANY_CORRUPTED):
            for logged_key, logged_value in record.entries():
                keys[logged_key] = logged_value
            replayed += 1
    except EngineError as exc:
        notes.append(f"WAL replay stopped: {exc.message}")
    return keys, notes, replayed


@action("engine.salvage", writes=True)
def salvage(context: ActionContext, *, dest: str | None = None, export: bool = True) -> ActionResult:
    """Copy every readable key of the damaged data dir into a new data dir (default ``{run_dir}/salvaged``).

    The source is only read. ``export`` also writes the keys as JSONL beside the new dir.
    """
    source = context.require_data_dir()
    target = Path(dest) if dest else context.run_dir / "salvaged"
    target.parent.mkdir(parents=True, exist_ok=True)
    export_path = str(target) + ".jsonl" if export else None
    if target.exists() and any(target.iterdir()):
        if context.resuming:
            return ActionResult(True, f"{target} was salvaged before the run was cut off", {"dest": str(target)})
        raise InvalidArgumentError(f"salvage target {target} exists and is not empty", hint="give a new path")
    keys, notes, replayed = salvage_keys(source)
    backend = detect_backend(source)
    live = sorted((key, value) for key, value in keys.items() if value is not None)
    staging = target.with_name(f".{target.name}.salvage-partial")
    if staging.exists():
        import shutil

        shutil.rmtree(staging)  # our own unfinished salvage copy
    with create_engine(staging, backend=backend) as engine:
        for index in range(0, len(live), _BATCH):
            engine.write_batch(live[index : index + _BATCH])
            context.progress(min(index + _BATCH, len(live)), len(live), "keys", "salvage")
        engine.flush()
    staging.rename(target)
    if export_path:
        with open(export_path, "w", encoding="utf-8") as handle:
            for key, value in live:
                handle.write(encode_row(key, value) + "\n")
    for note in notes:
        context.log(note, "warning")
    stopped = f"; {len(notes)} damaged region(s) skipped" if notes else ""
    return ActionResult(
        True,
        f"salvaged {len(live)} keys from {source} into {target} ({replayed} WAL records replayed){stopped}",
        {"dest": str(target), "keys": len(live), "notes": notes, "wal_records": replayed, "export": export_path},
        touched=[str(target)] + ([export_path] if export_path else []),
    )
