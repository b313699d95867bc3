"""The LSM-tree backend: memtable + shared WAL, immutable SSTables, ``manifest.json``, leveled compaction.

Layout of a data dir: ``sstables/NNNNNN.sst`` (format in ``sstable_format``), ``manifest.json``
(``manifest``), plus what ``Engine`` keeps (``wal/``, ``drconsole.json``).

Write path: the base logs a write and calls ``_store_apply`` under the write lock; the entries go
into the active memtable. A full memtable is frozen (reads still see it) and flushed to an L0
table by the flusher thread: table written under a temporary name, fsynced, renamed, directory
fsynced, the WAL synced up to the memtable's last LSN, then the manifest replaced. Only then do
reads switch from the frozen memtable to the table. The compactor thread then merges levels
that are over their target; reads work from immutable ``ReadState`` snapshots and never wait.

Crash safety: a table is complete before any manifest names it; a superseded table is deleted
only after the manifest that drops it is durable (one edit later, see ``manifest``). What a
crash leaves behind (temporary files, uncommitted tables) is ours and is removed on the next
read-write open; anything else in ``sstables/`` is left alone and reported by ``verify``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engines.base import Engine, Entry
from engines.errors import ClosedError, CorruptionError, EngineError, InvalidArgumentError, ReadOnlyError
from engines.fsutil import fsync_dir
from engines.lsm.block_cache import BlockCache
from engines.lsm.compaction import (
    CompactionAborted,
    CompactionJob,
    CompactionResult,
    full_compaction,
    level_compaction,
    pick_compaction,
    run_compaction,
)
from engines.lsm.manifest import Edit, Manifest, load_manifest, save_manifest
from engines.lsm.memtable import Memtable
from engines.lsm.merge import live_rows, merge_chunks
from engines.lsm.settings import LsmSettings, settings_from_options
from engines.lsm.sstable_reader import MISSING, DamagedTable, TableCorruptionError, open_table
from engines.lsm.sstable_writer import TableWriter
from engines.lsm.table_meta import SSTABLE_DIR, TEMP_SUFFIX, TableMeta, table_name, table_number
from engines.lsm.verify import find_orphans, verify_tables
from engines.lsm.version import ReadState, Table, Version, sort_level
from engines.options import EngineOptions
from engines.reports import RepairReport, VerifyReport

__all__ = ["LsmEngine"]

_EXACT_COUNT_LIMIT = 100_000  # below this many stored entries, stats counts keys exactly
_RETRY_SECONDS = 1.0


class LsmEngine(Engine):
    backend = "lsm"

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def _store_create(cls, path: Path, options: EngineOptions) -> None:
        settings = settings_from_options(options)
        (path / SSTABLE_DIR).mkdir()
        fsync_dir(path)
        save_manifest(path, Manifest.empty(settings.levels))

    def _store_open(self) -> None:
        self._settings: LsmSettings = settings_from_options(self.options)
        self._memtable_limit = self._settings.memtable_bytes
        self._cache = BlockCache(self._settings.cache_bytes)
        self._sst_dir = self.path / SSTABLE_DIR
        self._state_lock = threading.Lock()
        self._manifest_lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._compaction_lock = threading.Lock()
        self._wakeup = threading.Condition()
        self._stopping = False
        self._abort = threading.Event()
        self._in_flight: set[int] = set()
        self._pointers: dict[int, bytes] = {}
        self._flush_error: EngineError | None = None
        self._compaction_error: str | None = None
        self._compaction_wanted = False
        self._threads: list[threading.Thread] = []
        self._figures = {"flushes": 0, "flush_bytes": 0, "flush_seconds": 0.0, "compactions": 0,
                         "compaction_bytes_read": 0, "compaction_bytes_written": 0,
                         "compaction_seconds": 0.0, "dropped_tombstones": 0}
        self._open_notes: list[str] = []
        if not self._sst_dir.is_dir():
            raise CorruptionError(f"{self._sst_dir} is missing", file=SSTABLE_DIR,
                                  hint="restore the data dir from a backup")
        loaded = load_manifest(self.path)
        manifest = self._fall_back_if_copied_mid_edit(loaded)
        if manifest is not loaded and self.mode == "rw":
            save_manifest(self.path, manifest)  # never leave a manifest naming a missing file
        if len(manifest.levels) < self._settings.levels:
            manifest = Manifest(levels=manifest.levels + tuple(() for _ in range(self._settings.levels
                                                                                   - len(manifest.levels))),
                                durable_lsn=manifest.durable_lsn, next_file_number=manifest.next_file_number,
                                generation=manifest.generation, last_edit=manifest.last_edit,
                                retired=manifest.retired, pending=manifest.pending)
        self._manifest = manifest
        self._next_number = manifest.next_file_number
        if self.mode == "rw":
            self._remove_leftovers(manifest)
        readers = {meta.number: self._open_reader(meta) for meta in manifest.tables()}
        version = Version([[readers[meta.number] for meta in level] for level in manifest.levels])
        self._active = Memtable()
        self._state = ReadState(self._active, (), version)
        if self.mode == "rw":
            for name, target in (("flusher", self._flusher_loop), ("compactor", self._compactor_loop)):
                thread = threading.Thread(target=target, name=f"lsm-{name}-{self.path.name}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _open_reader(self, meta: TableMeta) -> Table:
        try:
            return open_table(self.path, meta.number, meta=meta, cache=self._cache)
        except TableCorruptionError as exc:
            self._open_notes.append(exc.message)
            return DamagedTable(meta, exc)

    def _fall_back_if_copied_mid_edit(self, manifest: Manifest) -> Manifest:
        """Undo the last edit when exactly its new tables are missing and its old ones present.

        That is what a copy of a running data dir taken across a flush or compaction looks like
        (the manifest copied after the edit, ``sstables/`` listed before it). A real crash never
        needs this: tables are complete before a manifest names them.
        """
        edit = manifest.last_edit
        missing = {meta.number for meta in manifest.tables() if not (self._sst_dir / meta.name).exists()}
        if not missing or edit is None or not missing <= set(edit.added):
            return manifest
        if not all((self._sst_dir / meta.name).exists() for meta in edit.removed):
            return manifest
        added = set(edit.added)
        levels = [[meta for meta in level if meta.number not in added] for level in manifest.levels]
        for meta in edit.removed:
            while len(levels) <= meta.level:
                levels.append([])
            levels[meta.level].append(meta)
        self._open_notes.append(f"the manifest's last {edit.reason} named missing tables; using the state before it")
        return Manifest(levels=tuple(tuple(sort_level(n, level)) for n, level in enumerate(levels)),
                        durable_lsn=min(manifest.durable_lsn, edit.durable_lsn_before),
                        next_file_number=manifest.next_file_number, generation=manifest.generation + 1,
                        last_edit=None, retired=manifest.retired,
                        pending=tuple(sorted(set(manifest.pending) | added)))

    def _remove_leftovers(self, manifest: Manifest) -> None:
        """Delete what our own interrupted work left: temp files, uncommitted and retired tables."""
        live = manifest.numbers()
        ours = set(manifest.retired) | set(manifest.pending)
        if manifest.last_edit is not None:
            ours |= {meta.number for meta in manifest.last_edit.removed}
        removed = False
        for path in list(self._sst_dir.iterdir()):
            number = table_number(path.name)
            if path.name.endswith(TEMP_SUFFIX) or (
                    number is not None and number not in live
                    and (number in ours or number >= manifest.next_file_number)):
                path.unlink(missing_ok=True)
                removed = True
        for path in self.path.glob(".manifest.json.tmp-*"):
            path.unlink(missing_ok=True)
        if removed:
            fsync_dir(self._sst_dir)

    def _release(self) -> None:
        if getattr(self, "_threads", None):
            self._stop_background()
        super()._release()

    def _stop_background(self) -> None:
        self._abort.set()
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        self._threads = []

    def _store_close(self) -> None:
        self._stop_background()
        if self.mode == "rw" and self._manifest.last_edit is not None and self._manifest.last_edit.removed:
            try:
                self._commit("purge", [], [])
            except EngineError:
                pass  # the next open removes them
        self._state = ReadState(Memtable(), (), Version([[]]))

    # ------------------------------------------------------------------ write path
    def _store_durable_lsn(self) -> int:
        return self._manifest.durable_lsn

    def _store_apply(self, lsn: int, entries: Sequence[Entry]) -> None:
        memtable = self._active
        data = memtable.data
        if len(entries) == 1:
            key, value = entries[0]
            previous = data.get(key, MISSING)
            if previous is MISSING:
                memtable._new_keys.append(key)
                memtable.bytes += len(key) + 120 + (0 if value is None else len(value))
            else:
                memtable.bytes += (0 if value is None else len(value)) - (0 if previous is None else len(previous))
            data[key] = value
            if not memtable.min_lsn:
                memtable.min_lsn = lsn
            if lsn > memtable.max_lsn:
                memtable.max_lsn = lsn
        else:
            memtable.apply(lsn, entries)
        if memtable.bytes >= self._memtable_limit:
            self._freeze()
            if len(self._state.immutables) > self._settings.max_immutable and self._flush_error is None:
                self._flush_pending(all_of_them=False)  # write stall: the writer helps flushing

    def _freeze(self) -> None:
        """Make the active memtable immutable and start a new one (write lock held)."""
        memtable = self._active
        if not memtable.data:
            return
        memtable.frozen = True
        with self._state_lock:
            state = self._state
            self._active = Memtable()
            self._state = ReadState(self._active, (memtable,) + state.immutables, state.version)
        with self._wakeup:
            self._wakeup.notify_all()

    def _flush_pending(self, *, all_of_them: bool = True) -> None:
        """Flush frozen memtables, oldest first (one, or until none is left)."""
        while True:
            with self._flush_lock:
                immutables = self._state.immutables
                if not immutables:
                    return
                self._flush_memtable(immutables[-1])
            if not all_of_them:
                return

    def _flush_memtable(self, memtable: Memtable) -> None:
        started = time.monotonic()
        keys = memtable.sorted_keys()
        values = list(map(memtable.data.__getitem__, keys))
        number = self._allocate()
        try:
            writer = self._new_writer(number, level=0)
            try:
                writer.add_many(keys, values)
                meta = writer.finish(min_lsn=memtable.min_lsn, max_lsn=memtable.max_lsn,
                                     durable_lsn=memtable.max_lsn)
            except BaseException:
                writer.abandon()
                raise
            fsync_dir(self._sst_dir)
            reader = open_table(self.path, number, meta=meta, cache=self._cache)
            wal = self._wal
            if wal is not None and wal.durable_lsn < memtable.max_lsn:
                try:
                    wal.sync(memtable.max_lsn)  # the store must never be ahead of the log
                except ClosedError:
                    pass  # closing seals (and fsyncs) every segment first
            self._commit("flush", [(meta, reader)], [], durable_lsn=memtable.max_lsn, flushed=memtable)
        except BaseException:
            (self._sst_dir / table_name(number)).unlink(missing_ok=True)  # our own uncommitted table
            self._release_number(number)
            raise
        self._figures["flushes"] += 1
        self._figures["flush_bytes"] += meta.size
        self._figures["flush_seconds"] += time.monotonic() - started
        self._want_compaction()

    def _new_writer(self, number: int, level: int) -> TableWriter:
        settings = self._settings
        return TableWriter(self._sst_dir, number, level=level, block_bytes=settings.block_bytes,
                           compression=settings.compression, compression_level=settings.compression_level,
                           bloom_bits_per_key=settings.bloom_bits_per_key)

    def _allocate(self) -> int:
        with self._manifest_lock:
            number = self._next_number
            self._next_number += 1
            self._in_flight.add(number)
            return number

    def _release_number(self, number: int) -> None:
        with self._manifest_lock:
            self._in_flight.discard(number)

    def _commit(self, reason: str, added: Sequence[tuple[TableMeta, Table]], removed: Sequence[Table], *,
                durable_lsn: int | None = None, flushed: Memtable | None = None,
                keep_removed: bool = False) -> Manifest:
        """Write the manifest for an edit, then switch readers to it and delete retired tables.

        ``keep_removed``: the removed tables are not ours to delete (quarantine moves them).
        """
        with self._manifest_lock:
            old = self._manifest
            gone = {table.meta.number for table in removed}
            levels = [[meta for meta in level if meta.number not in gone] for level in old.levels]
            for meta, _reader in added:
                while len(levels) <= meta.level:
                    levels.append([])
                levels[meta.level].append(meta)
            for meta, _reader in added:
                self._in_flight.discard(meta.number)
            retire = tuple(sorted(meta.number for meta in old.last_edit.removed)) if old.last_edit else ()
            manifest = Manifest(
                levels=tuple(tuple(sort_level(n, level)) for n, level in enumerate(levels)),
                durable_lsn=max(old.durable_lsn, durable_lsn or 0),
                next_file_number=self._next_number, generation=old.generation + 1,
                last_edit=Edit(reason=reason, added=tuple(meta.number for meta, _ in added),
                               removed=() if keep_removed else tuple(table.meta for table in removed),
                               durable_lsn_before=old.durable_lsn),
                retired=retire, pending=tuple(sorted(self._in_flight)))
            save_manifest(self.path, manifest)
            self._manifest = manifest
            with self._state_lock:
                state = self._state
                tables = {table.meta.number: table for table in state.version.tables()}
                tables.update((meta.number, reader) for meta, reader in added)
                version = Version([[tables[meta.number] for meta in level] for level in manifest.levels])
                immutables = tuple(m for m in state.immutables if m is not flushed)
                self._state = ReadState(state.active, immutables, version)
            for number in retire:
                (self._sst_dir / table_name(number)).unlink(missing_ok=True)  # superseded, two edits ago
            for table in removed:
                self._cache.forget_table(table.id, len(table.index_keys))
            return manifest

    def flush(self) -> None:
        """Write every memtable to L0 tables, then run the compactions that makes due.

        Returning only once those compactions are done leaves the directory quiet: a file-level
        copy taken right after a flush (the guide's backup recipe) sees no table come or go. A
        compaction failure is kept for ``stats()`` and retried later; the flush itself stood.
        """
        super().flush()
        try:
            while not self._closed and self._compact_once():
                pass
        except CompactionAborted:
            pass
        except EngineError as exc:
            self._compaction_error = exc.message

    def _store_flush(self) -> None:
        self._freeze()
        if self._flush_error is not None:
            self._flush_error = None  # retry now, in the caller's thread, and report what happens
        self._flush_pending()

    # ------------------------------------------------------------------ background work
    def _want_compaction(self) -> None:
        with self._wakeup:
            self._compaction_wanted = True
            self._wakeup.notify_all()

    def _flusher_loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopping and (not self._state.immutables or self._flush_error is not None):
                    if self._flush_error is not None:
                        self._wakeup.wait(_RETRY_SECONDS)
                        if self._stopping:
                            return
                        self._flush_error = None
                    else:
                        self._wakeup.wait()
                if self._stopping:
                    return
            try:
                self._flush_pending(all_of_them=False)
            except EngineError as exc:
                self._flush_error = exc
            except OSError as exc:
                self._flush_error = EngineError(f"flush failed: {exc}")

    def _compactor_loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopping and not self._compaction_wanted:
                    self._wakeup.wait()
                if self._stopping:
                    return
                self._compaction_wanted = False
            try:
                while not self._stopping and self._compact_once():
                    pass
                self._compaction_error = None
            except CompactionAborted:
                return
            except EngineError as exc:
                self._compaction_error = exc.message
            except OSError as exc:
                self._compaction_error = f"compaction failed: {exc}"

    def _compact_once(self) -> bool:
        with self._compaction_lock:
            job = pick_compaction(self._state.version, self._settings, self._pointers)
            if job is None:
                return False
            self._run(job)
            if job.level > 0:
                self._pointers[job.level] = max(t.meta.max_key for t in job.inputs if t.meta.level == job.level)
            return True

    def _run(self, job: CompactionJob) -> CompactionResult:
        """Run and commit one compaction (compaction lock held)."""
        result = run_compaction(job, data_dir=self.path, settings=self._settings, allocate=self._allocate,
                                release=self._release_number, abort=self._abort)
        try:
            added = [(meta, open_table(self.path, meta.number, meta=meta, cache=self._cache))
                     for meta in result.outputs]
            self._commit(job.reason, added, job.inputs)
        except BaseException:
            for meta in result.outputs:
                (self._sst_dir / meta.name).unlink(missing_ok=True)  # uncommitted output
                self._release_number(meta.number)
            raise
        figures = self._figures
        figures["compactions"] += 1
        figures["compaction_bytes_read"] += result.input_bytes
        figures["compaction_bytes_written"] += result.output_bytes
        figures["compaction_seconds"] += result.seconds
        figures["dropped_tombstones"] += result.dropped_tombstones
        return result

    def _store_compact(self) -> None:
        """Flush, then merge every table into the bottom level (drops tombstones and old versions)."""
        with self._write_lock:
            self._store_flush()
        with self._compaction_lock:
            job = full_compaction(self._state.version)
            if job is not None:
                self._run(job)
            if self._manifest.last_edit is not None and self._manifest.last_edit.removed:
                self._commit("purge", [], [])  # reclaim the space now, not one edit later

    def compact_level(self, level: int) -> dict[str, Any]:
        """Compact ``level`` into the next one now (the guide's ``force-compaction --level=N``)."""
        self._check_writable()
        if not 0 <= level < len(self._state.version.levels) - 1:
            raise InvalidArgumentError(f"level must be in 0..{len(self._state.version.levels) - 2}, not {level}")
        with self._compaction_lock:
            job = level_compaction(self._state.version, level, self._pointers.get(level))
            if job is None:
                return {"level": level, "compacted": False, "input_bytes": 0, "output_bytes": 0}
            result = self._run(job)
            if self._manifest.last_edit is not None and self._manifest.last_edit.removed:
                self._commit("purge", [], [])
        return {"level": level, "compacted": True, "input_bytes": result.input_bytes,
                "output_bytes": result.output_bytes, "seconds": result.seconds}

    def wait_for_background(self, timeout: float = 30.0) -> None:
        """Block until no flush or compaction is pending (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._state.immutables and not self._compaction_wanted and not self._compaction_lock.locked():
                if pick_compaction(self._state.version, self._settings, self._pointers) is None \
                        or self._compaction_error is not None:
                    return
            time.sleep(0.005)

    # ------------------------------------------------------------------ reads
    def _store_get(self, key: bytes) -> bytes | None:
        state = self._state
        value = state.active.data.get(key, MISSING)
        if value is MISSING:
            for memtable in state.immutables:
                value = memtable.data.get(key, MISSING)
                if value is not MISSING:
                    return value  # type: ignore[no-any-return]
            value = state.version.get(key)
            if value is MISSING:
                return None
        return value  # type: ignore[no-any-return]

    def _store_scan(self, start: bytes | None, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        state = self._state
        sources = []
        if state.active.data:
            sources.append(state.active.chunks(start, end, self._write_lock))
        sources += [memtable.chunks(start, end) for memtable in state.immutables]
        sources += state.version.sources(start, end)
        return live_rows(merge_chunks(sources))

    # ------------------------------------------------------------------ stats, verify, checkpoint
    def _store_stats(self) -> dict[str, Any]:
        state = self._state
        manifest = self._manifest
        tables = manifest.tables()
        memtables = [state.active, *state.immutables]
        stored = sum(meta.entries for meta in tables) + sum(len(m) for m in memtables)
        if stored <= _EXACT_COUNT_LIMIT:
            try:
                total = sum(1 for _ in self.scan())
                estimate = False
            except CorruptionError:
                total, estimate = stored, True
        else:
            total = sum(meta.entries - meta.tombstones for meta in tables) + sum(len(m) for m in memtables)
            estimate = True
        figures = dict(self._figures)
        flushed = figures["flush_bytes"]
        written = flushed + figures["compaction_bytes_written"]
        seconds = figures["compaction_seconds"]
        readers = state.version.tables()
        memory = (sum(m.bytes for m in memtables) + self._cache.used_bytes
                  + sum(table.memory_bytes for table in readers))
        return {
            "total_keys": total,
            "total_keys_is_estimate": estimate,
            "memory_usage_bytes": memory,
            "levels": [{"level": n, "files": len(level), "bytes": sum(meta.size for meta in level),
                        "target_bytes": self._settings.level_target(n) if n else None}
                       for n, level in enumerate(manifest.levels)],
            "sstables": len(tables),
            "sst_bytes": sum(meta.size for meta in tables),
            "l0_files": len(manifest.levels[0]) if manifest.levels else 0,
            "durable_lsn": manifest.durable_lsn,
            "memtable_bytes": state.active.bytes,
            "immutable_memtables": len(state.immutables),
            "immutable_memtable_bytes": sum(m.bytes for m in state.immutables),
            "write_buffer_bytes": self._memtable_limit,
            "block_cache_bytes": self._cache.used_bytes,
            "block_cache_capacity_bytes": self._cache.capacity_bytes,
            "block_cache_hits": self._cache.hits,
            "block_cache_misses": self._cache.misses,
            "table_metadata_bytes": sum(table.memory_bytes for table in readers),
            **figures,
            "write_amplification": round(written / flushed, 3) if flushed else None,
            "compaction_mb_per_s": round(figures["compaction_bytes_written"] / 2**20 / seconds, 2) if seconds else None,
            "damaged_tables": [table.meta.relative_path for table in readers if table.damaged],
            "flush_error": self._flush_error.message if self._flush_error is not None else None,
            "compaction_error": self._compaction_error,
            "open_notes": list(self._open_notes),
        }

    def _store_verify(self, report: VerifyReport) -> None:
        with self._manifest_lock:
            manifest = self._manifest
            version = self._state.version
            ignore = set(self._in_flight) | set(manifest.retired) | set(manifest.pending)
            if manifest.last_edit is not None:
                ignore |= {meta.number for meta in manifest.last_edit.removed}
            limit = self._next_number
        readers = {table.meta.number: table for table in version.tables() if not table.damaged}
        verify_tables(self.path, manifest, readers, report)
        for name in find_orphans(self.path, manifest.numbers(), ignore):
            number = table_number(name)
            if number is not None and number >= min(limit, manifest.next_file_number):
                continue  # being written right now, or left by a crash and removed on the next open
            report.add("orphan-file", f"{name} is in {SSTABLE_DIR}/ but not in the manifest",
                       file=f"{SSTABLE_DIR}/{name}")

    def _store_checkpoint(self, dest: Path) -> tuple[int, Callable[[], None] | None]:
        if self.mode == "rw":
            self._store_flush()
        with self._manifest_lock:
            manifest = self._manifest
            target = dest / SSTABLE_DIR
            target.mkdir()
            for meta in manifest.tables():
                source = self._sst_dir / meta.name
                if not source.exists():
                    continue  # a damaged dir is copied as it is (a safety copy before recovery)
                try:
                    os.link(source, target / meta.name)
                except OSError:
                    shutil.copy2(source, target / meta.name)  # another file system
            fsync_dir(target)
            save_manifest(dest, Manifest(levels=manifest.levels, durable_lsn=manifest.durable_lsn,
                                         next_file_number=manifest.next_file_number))
        return self._last_lsn, None

    # ------------------------------------------------------------------ memory controls
    def flush_memtables(self) -> None:
        """Write every memtable to SSTables (the guide's ``flush-memtables``)."""
        self.flush()

    def reduce_cache(self, cache_bytes: int, write_buffer_bytes: int | None = None) -> dict[str, int]:
        """Shrink (or grow) the block cache, and optionally the write buffer, at run time.

        The guide's ``reduce-cache --block-cache-mb=64 --write-buffer-mb=16``. Not persisted: a
        reopen uses the configured sizes again.
        """
        self._check_open()
        if cache_bytes < 0:
            raise InvalidArgumentError(f"cache_bytes must be >= 0, not {cache_bytes}")
        before = {"block_cache_bytes": self._cache.used_bytes, "block_cache_capacity_bytes": self._cache.capacity_bytes,
                  "write_buffer_bytes": self._memtable_limit}
        self._cache.resize(cache_bytes)
        if write_buffer_bytes is not None:
            self.set_write_buffer(write_buffer_bytes)
        return {**{f"{name}_before": value for name, value in before.items()},
                "block_cache_bytes": self._cache.used_bytes, "block_cache_capacity_bytes": self._cache.capacity_bytes,
                "write_buffer_bytes": self._memtable_limit}

    def set_write_buffer(self, write_buffer_bytes: int) -> None:
        """Change the memtable size limit; a memtable already over it is flushed now."""
        if write_buffer_bytes < 4096:
            raise InvalidArgumentError(f"write buffer must be at least 4096 bytes, not {write_buffer_bytes}")
        self._memtable_limit = write_buffer_bytes
        if self.mode == "rw" and self._active.bytes >= write_buffer_bytes:
            self.flush()

    # ------------------------------------------------------------------ repair primitives
    def restore_from_wal(self, from_lsn: int) -> int:
        """Re-apply every WAL record from ``from_lsn`` on, in order; returns how many.

        After a table is quarantined, this brings its writes back when the WAL still reaches
        back to the table's first LSN: replaying everything from there in LSN order ends with
        every key at its newest value.
        """
        from engines.wal import RecoveryMode, WalReader

        self._check_writable()
        count = 0
        with self._write_lock:
            if self._wal is not None:
                self._wal.flush()
            for record in WalReader(self.wal_dir).records(from_lsn=from_lsn, to_lsn=self._last_lsn,
                                                          mode=RecoveryMode(self.options.wal_recovery)):
                self._active.apply(record.lsn, record.entries())
                count += 1
            self._store_flush()
        return count

    def quarantine_table(self, file: str) -> RepairReport:
        """Move one table out of the live set into quarantine (see ``repair.quarantine_sstable``)."""
        from engines.lsm.repair import quarantine_sstable

        return quarantine_sstable(self, file)

    def _drop_table(self, number: int) -> TableMeta:
        """Remove table ``number`` from the manifest (no deletion); returns its metadata."""
        if self.mode != "rw":
            raise ReadOnlyError(f"{self.path} is open read-only", hint="reopen with mode='rw'")
        with self._compaction_lock, self._manifest_lock:
            found = [table for table in self._state.version.tables() if table.meta.number == number]
            if not found:
                raise InvalidArgumentError(f"{table_name(number)} is not a live table of {self.path}")
            self._commit("quarantine", [], found, keep_removed=True)
            return found[0].meta

    @classmethod
    def repair(cls, path: Path) -> RepairReport:
        """Rebuild the manifest from the tables; corrupt tables go to quarantine (see ``repair``)."""
        from engines.lsm.repair import rebuild_manifest

        return rebuild_manifest(path)
