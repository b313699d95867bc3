"""Actions on one data dir through the public engine API: open, verify, flush, compact, repair, recover.

Checks open read-only (which writes nothing); writing actions open read-write, which takes the
engine lock: a data dir held by a running node is refused with exit 3 and a hint. An optional
``path`` lets a check look at another dir than the run's target (a restored scratch copy).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engines.checks import verify_data_dir
from engines.errors import EngineError, InvalidArgumentError, LockedError
from engines.fsutil import QUARANTINE_DIR, tree_size
from engines.marker import detect_backend
from engines.options import EngineOptions
from engines.registry import engine_class, open_engine
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.actions.exclusive import exclusive
from playbooks.evidence import human_bytes, lock_held

__all__ = ["target_dir", "quarantine_entries"]


def target_dir(context: ActionContext, path: str | None) -> Path:
    return Path(path) if path else context.require_data_dir()


def quarantine_entries(data_dir: Path) -> set[str]:
    folder = data_dir / QUARANTINE_DIR
    return {item.name for item in folder.iterdir()} if folder.is_dir() else set()


def _problems_text(report: Any, limit: int = 3) -> str:
    parts = []
    for problem in report.problems[:limit]:
        where = f" in {problem.file}" if problem.file else ""
        offset = f" at offset {problem.offset}" if problem.offset is not None else ""
        parts.append(f"{problem.kind}: {problem.detail}{where}{offset}")
    more = f" (+{len(report.problems) - limit} more)" if len(report.problems) > limit else ""
    return "; ".join(parts) + more


@action("engine.open_check", writes=False)
def open_check(context: ActionContext, *, path: str | None = None) -> ActionResult:
    """Open the engine read-only, as a start would, and report how long it took."""
    data_dir = target_dir(context, path)
    clock = time.monotonic()
    try:
        with open_engine(data_dir, mode="ro") as engine:
            backend, last = engine.backend, engine.last_lsn
    except EngineError as exc:
        return ActionResult(False, f"{data_dir} does not open: {exc.message}", {"error": type(exc).__name__})
    elapsed = time.monotonic() - clock
    return ActionResult(
        True,
        f"{data_dir} opens ({backend}, last LSN {last}) in {elapsed:.2f} s",
        {"backend": backend, "last_lsn": last, "seconds": elapsed},
    )


@action("engine.verify", writes=False)
def verify(context: ActionContext, *, path: str | None = None) -> ActionResult:
    """Verify every checksum and invariant, read-only."""
    data_dir = target_dir(context, path)
    report = verify_data_dir(data_dir)
    checked = ", ".join(f"{count} {what}" for what, count in sorted(report.checked.items()))
    data = {
        "problems": [problem.model_dump() for problem in report.problems],
        "checked": report.checked,
        "problem_count": len(report.problems),
        "files": sorted({problem.file for problem in report.problems if problem.file}),
    }
    if report.ok:
        return ActionResult(True, f"verify ok: {data_dir} ({checked or 'nothing to check'})", data)
    return ActionResult(
        False, f"verify found {len(report.problems)} problem(s) in {data_dir}: {_problems_text(report)}", data
    )


@action("engine.stats", writes=False)
def stats(context: ActionContext, *, path: str | None = None) -> ActionResult:
    """Keys, disk, memory, WAL size and last LSN."""
    data_dir = target_dir(context, path)
    with open_engine(data_dir, mode="ro") as engine:
        figures = engine.stats()
    return ActionResult(
        True,
        f"{figures.total_keys} keys, {human_bytes(figures.disk_usage_bytes)} on disk, "
        f"WAL {human_bytes(figures.wal_bytes)}, last LSN {figures.last_lsn}",
        figures.model_dump(exclude={"details"}),
    )


@action("engine.flush", writes=True)
def flush(context: ActionContext) -> ActionResult:
    """Flush memtables/dirty pages so the store holds everything; covered WAL segments are retired."""
    data_dir = context.require_data_dir()
    before = tree_size(data_dir / "wal")
    with open_engine(data_dir, mode="rw") as engine:
        engine.flush()
        last = engine.last_lsn
    after = tree_size(data_dir / "wal")
    return ActionResult(
        True,
        f"flushed {data_dir} up to LSN {last}; WAL {human_bytes(before)} -> {human_bytes(after)}",
        {"last_lsn": last, "wal_bytes_before": before, "wal_bytes_after": after, "freed_bytes": max(0, before - after)},
        touched=[str(data_dir)],
    )


@action("engine.compact", writes=True)
def compact(context: ActionContext) -> ActionResult:
    """Compact the store (space is reclaimed from overwritten and deleted keys)."""
    data_dir = context.require_data_dir()
    before = tree_size(data_dir) - tree_size(data_dir / QUARANTINE_DIR)
    with open_engine(data_dir, mode="rw") as engine:
        engine.flush()
        engine.compact()
    after = tree_size(data_dir) - tree_size(data_dir / QUARANTINE_DIR)
    return ActionResult(
        True,
        f"compacted {data_dir}: {human_bytes(before)} -> {human_bytes(after)}",
        {"bytes_before": before, "bytes_after": after, "freed_bytes": max(0, before - after)},
        touched=[str(data_dir)],
    )


@action("engine.repair", writes=True)
def repair(context: ActionContext) -> ActionResult:
    """Best-effort repair by the backend; everything it drops goes to quarantine and is listed."""
    data_dir = context.require_data_dir()
    backend = detect_backend(data_dir)
    cls = engine_class(backend)
    function = getattr(cls, "repair", None)
    if function is None:
        raise InvalidArgumentError(
            f"the {backend} backend has no repair yet", hint="restore from a backup instead (playbook `restore`)"
        )
    # The lsm and cow repairs take the engine lock themselves (a second flock from this process
    # would conflict), so the lock is only tested here: a running node is refused up front.
    if lock_held(data_dir):
        raise LockedError(
            f"{data_dir} is in use by another process; cannot repair it",
            hint="stop the node that holds it, then resume the run",
        )
    report = function(data_dir)
    lost = f"; lost: {'; '.join(report.lost)}" if report.lost else "; nothing lost"
    return ActionResult(
        report.ok,
        f"{backend} repair of {data_dir}: {len(report.quarantined)} item(s) quarantined{lost}",
        report.model_dump(),
        touched=[str(data_dir), *report.quarantined],
    )


@action("engine.recover", writes=True)
def recover(context: ActionContext, *, mode: str | None = None) -> ActionResult:
    """Open read-write as a restart does: replay the WAL into the store, flush, close.

    ``mode`` picks the WAL recovery mode for this open (``point_in_time`` stops at the first bad
    record; the default tolerates a torn tail, which the engine moves to quarantine).
    """
    data_dir = context.require_data_dir()
    before = quarantine_entries(data_dir)
    options = None
    if mode is not None:
        from engines.marker import read_marker

        marker = read_marker(data_dir)
        base = dict(marker.options) if marker is not None else {}
        durability = marker.durability if marker is not None else "sync"
        try:
            options = EngineOptions.model_validate(base | {"durability": durability, "wal_recovery": mode})
        except ValueError as exc:
            raise InvalidArgumentError(f"bad WAL recovery mode {mode!r}") from exc
    clock = time.monotonic()
    if options is None:
        engine = open_engine(data_dir, mode="rw")
    else:
        engine = engine_class(detect_backend(data_dir))(data_dir, mode="rw", options=options)
    with engine:
        durable = int(engine.durable_lsn)  # what the store held before replay
        last = engine.last_lsn
        engine.flush()
    replayed = max(0, last - durable)
    new = sorted(quarantine_entries(data_dir) - before)
    set_aside = f"; set aside in quarantine: {', '.join(new)}" if new else ""
    span = f" (LSN {durable + 1}..{last})" if replayed else ""
    return ActionResult(
        True,
        f"replayed {replayed} WAL record(s){span} into {data_dir} in {time.monotonic() - clock:.2f} s{set_aside}",
        {
            "replayed": replayed,
            "last_lsn": last,
            "quarantined": new,
            # the run's accounting (playbooks.accounting): these writes are in the store again
            "recovered_lsn_ranges": [[durable + 1, last]] if replayed else [],
        },
        touched=[str(data_dir)],
    )


@action("engine.smoke_test", writes=True)
def smoke_test(context: ActionContext) -> ActionResult:
    """Write, read back and delete a probe key (the guides' readiness check)."""
    data_dir = context.require_data_dir()
    key = f"\x00drconsole/smoke/{context.run_id}".encode()
    value = f"written {time.time():.3f}".encode()
    with open_engine(data_dir, mode="rw") as engine:
        engine.put(key, value)
        read = engine.get(key)
        engine.delete(key)
        gone = engine.get(key) is None
    ok = read == value and gone
    return ActionResult(
        ok,
        "write, read and delete of a probe key " + ("succeeded" if ok else "FAILED"),
        {"read_back": read == value, "deleted": gone},
        touched=[str(data_dir)],
    )


@action("engine.checkpoint", writes=True)
def checkpoint(context: ActionContext, *, dest: str) -> ActionResult:
    """Write a consistent, openable copy of the data dir to ``dest`` (the engine's checkpoint)."""
    data_dir = context.require_data_dir()
    target = Path(dest)
    if target.exists() and context.resuming:
        return ActionResult(True, f"checkpoint already in {target}", {"path": str(target)})
    with open_engine(data_dir, mode="rw") as engine:
        lsn = engine.checkpoint(target)
    return ActionResult(
        True,
        f"checkpoint of {data_dir} at LSN {lsn} in {target}",
        {"path": str(target), "lsn": lsn},
        touched=[str(target)],
    )


@action("engine.low_memory_profile", writes=True)
def low_memory_profile(context: ActionContext) -> ActionResult:
    """Switch the data dir to the low-memory profile (small caches and buffers) for its next opens."""
    from engines.fsutil import atomic_write_text
    from engines.marker import MARKER_NAME, read_marker, write_marker
    from engines.options import LOW_MEMORY

    data_dir = context.require_data_dir()
    marker = read_marker(data_dir)
    if marker is None:
        raise InvalidArgumentError(f"{data_dir} has no {MARKER_NAME}", hint="run the config-recovery playbook first")
    with exclusive(data_dir, "change its options"):
        backup = context.quarantine() / f"{MARKER_NAME}.before-low-memory"
        if not backup.exists():
            atomic_write_text(backup, (data_dir / MARKER_NAME).read_text(encoding="utf-8"))
        options = {**marker.options, **LOW_MEMORY}
        EngineOptions.model_validate(options | {"durability": marker.durability})
        write_marker(data_dir, marker.model_copy(update={"options": options}))
    return ActionResult(
        True,
        f"{data_dir} now opens with the low-memory profile; the previous {MARKER_NAME} is in {backup}",
        {"options": LOW_MEMORY, "previous": str(backup)},
        touched=[str(data_dir / MARKER_NAME)],
    )


@action("engine.snapshot", writes=True)
def snapshot(context: ActionContext, *, name: str | None = None) -> ActionResult:
    """Take a named point-in-time snapshot (COW backend: ``snapshots/<name>.cow``)."""
    data_dir = context.require_data_dir()
    with open_engine(data_dir, mode="rw") as engine:
        create = getattr(engine, "create_snapshot", None)
        if create is None:
            return ActionResult(
                True, f"the {engine.backend} backend keeps no named snapshots; skipped", {"taken": False}
            )
        info = create(name)
    return ActionResult(
        True,
        f"snapshot {info.name} at LSN {info.lsn} in {info.path}",
        {"taken": True, "name": info.name, "path": info.path, "lsn": info.lsn},
        touched=[info.path],
    )


@action("engine.import_missing", writes=True)
def import_missing(context: ActionContext, *, source: str, prefix: str | None = None) -> ActionResult:
    """Copy back the keys the data dir lacks from ``source`` (a data dir or a JSONL export); present keys stay.

    The guide's ``import --conflict=ignore``: nothing in the live data is overwritten.
    """
    from engines.keys import is_reserved
    from engines.transfer import read_jsonl, write_batches

    data_dir = context.require_data_dir()
    origin = Path(source)
    wanted = prefix.encode("utf-8") if prefix else None
    present = 0
    with open_engine(data_dir, mode="rw") as live:
        if origin.is_dir():
            reader = open_engine(origin, mode="ro")
            rows = reader.scan(prefix=wanted)
        else:
            reader = None
            rows = (
                (key, value) for _line, key, value in read_jsonl(origin) if wanted is None or key.startswith(wanted)
            )

        def missing() -> Iterator[tuple[bytes, bytes]]:
            nonlocal present
            for key, value in rows:
                if is_reserved(key):
                    continue  # drconsole's own (a node's ready probe): not user data
                if live.get(key) is not None:
                    present += 1
                    continue
                yield key, value

        try:
            restored = write_batches(live, missing())
        finally:
            if reader is not None:
                reader.close()
    scope = f" under prefix {prefix!r}" if prefix else ""
    return ActionResult(
        True,
        f"restored {restored} missing key(s){scope} from {origin}; {present} already present were left as they are",
        {"restored": restored, "present": present},
        touched=[str(data_dir)],
    )
