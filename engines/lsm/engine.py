"""The LSM-tree backend: memtable + shared WAL, immutable SSTables, ``manifest.json``, leveled compaction.

Layout of a data dir: ``sstables/NNNNNN.sst`` (format in ``sstable_format``), ``manifest.json``
(``manifest``), plus what ``Engine`` keeps (``wal/``, ``drconsole.json``).

Write path: the base logs a write and calls ``_store_apply`` under the write lock; the entries go
into the active memtable. A full memtable is frozen (reads still see it) and flushed to an L0
table by the flusher thread: table written under a temporary name, fsynced, renamed, directory
fsynced, the WAL synced up to the memtable's last LSN, then the manifest replaced. Only then do
reads switch from the frozen memtable to the table. The compactor thread merges levels that are
over their target; reads work from immutable ``ReadState`` snapshots and never wait for it.

Crash safety (``version_set``): a table is complete before any manifest names it; a superseded
table is deleted only after the manifest that drops it is durable. What a crash leaves behind
(temporary files, uncommitted tables) is ours and is removed on the next read-write open;
anything else in ``sstables/`` is left alone and reported by ``verify``.
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
from engines.errors import (
    ClosedError,
    CorruptionError,
    EngineError,
    InvalidArgumentError,
    ReadOnlyError,
    SafetyRefusal,
)
from engines.fsutil import fsync_dir
from engines.lsm.background import BackgroundWork
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
from engines.lsm.manifest import Manifest, save_manifest
from engines.lsm.memtable import ENTRY_MEMORY, Memtable
from engines.lsm.merge import live_rows, merge_chunks
from engines.lsm.scrub import table_units
from engines.lsm.settings import LsmSettings, settings_from_options
from engines.lsm.sstable_reader import MISSING
from engines.lsm.sstable_writer import TableWriter
from engines.lsm.stats import WorkCounters, describe
from engines.lsm.table_meta import SSTABLE_DIR, table_name, table_number
from engines.lsm.verify import find_orphans, verify_tables
from engines.lsm.version import ReadState, Version
from engines.lsm.version_set import VersionSet
from engines.options import EngineOptions
from engines.reports import RepairReport, VerifyReport
from engines.scrub import ScrubUnit

__all__ = ["LsmEngine"]

_EXACT_COUNT_LIMIT = 50_000  # up to this many stored entries, stats counts keys exactly


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
        self._flush_lock = threading.Lock()
        self._compaction_lock = threading.Lock()
        self._pointers: dict[int, bytes] = {}
        self._work = WorkCounters()
        self._counted: tuple[tuple[int, int], int] = ((-1, -1), 0)
        self._background: BackgroundWork | None = None
        if not self._sst_dir.is_dir():
            raise CorruptionError(
                f"{self._sst_dir} is missing", file=SSTABLE_DIR, hint="restore the data dir from a backup"
            )
        self._tables = VersionSet(
            self.path, levels=self._settings.levels, cache=self._cache, writable=self.mode == "rw"
        )
        self._active = Memtable()
        self._state = ReadState(self._active, (), self._tables.version)
        if self.mode == "rw":
            self._background = BackgroundWork(
                self.path.name,
                has_frozen=lambda: bool(self._state.immutables),
                flush_one=lambda: self._flush_pending(all_of_them=False),
                compact_once=self._compact_once,
                on_corruption=self._background_corruption,
            )

    def _release(self) -> None:
        background = getattr(self, "_background", None)
        if background is not None:
            background.stop()  # also on a failed open, which never reaches _store_close
            self._background = None
        super()._release()

    def _store_abandon(self) -> None:
        # No purge: an open that failed leaves the manifest and the tables as it found them.
        if self._background is not None:
            self._background.stop()
            self._background = None
        self._state = ReadState(Memtable(), (), Version([[]]))

    def _store_close(self) -> None:
        if self._background is not None:
            self._background.stop()
            self._background = None
        if self.mode == "rw":
            try:
                self._tables.purge()
            except EngineError:
                pass  # the next open removes them
        self._state = ReadState(Memtable(), (), Version([[]]))

    # ------------------------------------------------------------------ write path
    def _store_durable_lsn(self) -> int:
        return self._tables.manifest.durable_lsn

    def _store_apply(self, lsn: int, entries: Sequence[Entry]) -> None:
        memtable = self._active
        if len(entries) == 1:  # the common case, inlined: it is most of a put's own cost
            key, value = entries[0]
            data = memtable.data
            previous = data.get(key, MISSING)
            if previous is MISSING:
                memtable._new_keys.append(key)
                memtable.bytes += len(key) + ENTRY_MEMORY + (0 if value is None else len(value))
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
            background = self._background
            if len(self._state.immutables) > self._settings.max_immutable and (
                background is None or background.flush_error is None
            ):
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
        if self._background is not None:
            self._background.wake_flusher()

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
        number = self._tables.allocate()
        try:
            writer = self._new_writer(number, level=0)
            try:
                writer.add_many(keys, values)
                meta = writer.finish(min_lsn=memtable.min_lsn, max_lsn=memtable.max_lsn, durable_lsn=memtable.max_lsn)
            except BaseException:
                writer.abandon()
                raise
            fsync_dir(self._sst_dir)
            reader = self._tables.open_output(meta)
            wal = self._wal
            if wal is not None and wal.durable_lsn < memtable.max_lsn:
                try:
                    wal.sync(memtable.max_lsn)  # the store must never be ahead of the log
                except ClosedError:
                    pass  # closing seals (and fsyncs) every segment first

            def install(version: Version) -> None:
                with self._state_lock:
                    state = self._state
                    immutables = tuple(m for m in state.immutables if m is not memtable)
                    self._state = ReadState(state.active, immutables, version)

            self._tables.commit("flush", [(meta, reader)], [], durable_lsn=memtable.max_lsn, install=install)
        except BaseException:
            (self._sst_dir / table_name(number)).unlink(missing_ok=True)  # our own uncommitted table
            self._tables.release(number)
            raise
        self._work.flushes += 1
        self._work.flush_bytes += meta.size
        self._work.flush_seconds += time.monotonic() - started
        if self._background is not None:
            self._background.want_compaction()

    def _new_writer(self, number: int, level: int) -> TableWriter:
        settings = self._settings
        return TableWriter(
            self._sst_dir,
            number,
            level=level,
            block_bytes=settings.block_bytes,
            compression=settings.compression,
            compression_level=settings.compression_level,
            bloom_bits_per_key=settings.bloom_bits_per_key,
        )

    def _install(self, version: Version) -> None:
        with self._state_lock:
            state = self._state
            self._state = ReadState(state.active, state.immutables, version)

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
            if self._background is not None:
                self._background.compaction_error = exc.message

    def _store_flush(self) -> None:
        self._freeze()
        if self._background is not None:
            self._background.flush_error = None  # retried now, in the caller's thread
        self._flush_pending()

    # ------------------------------------------------------------------ compaction
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
        abort = self._background.abort if self._background is not None else None
        result = run_compaction(
            job,
            data_dir=self.path,
            settings=self._settings,
            allocate=self._tables.allocate,
            release=self._tables.release,
            abort=abort,
        )
        try:
            added = [(meta, self._tables.open_output(meta)) for meta in result.outputs]
            self._tables.commit(job.reason, added, job.inputs, install=self._install)
        except BaseException:
            for meta in result.outputs:
                (self._sst_dir / meta.name).unlink(missing_ok=True)  # uncommitted output
                self._tables.release(meta.number)
            raise
        work = self._work
        work.compactions += 1
        work.compaction_bytes_read += result.input_bytes
        work.compaction_bytes_written += result.output_bytes
        work.compaction_seconds += result.seconds
        work.dropped_tombstones += result.dropped_tombstones
        return result

    def _store_compact(self) -> None:
        """Flush, then merge every table into the bottom level (drops tombstones and old versions)."""
        with self._write_lock:
            self._store_flush()
        with self._compaction_lock:
            job = full_compaction(self._state.version)
            if job is not None:
                self._run(job)
            self._tables.purge()  # reclaim the space now, not one edit later

    def compact_level(self, level: int) -> dict[str, Any]:
        """Compact ``level`` into the next one now (the guide's ``force-compaction --level=N``)."""
        self._check_writable()
        levels = len(self._state.version.levels)
        if not 0 <= level < levels - 1:
            raise InvalidArgumentError(f"level must be in 0..{levels - 2}, not {level}")
        with self._compaction_lock:
            job = level_compaction(self._state.version, level, self._pointers.get(level))
            if job is None:
                return {"level": level, "compacted": False, "input_bytes": 0, "output_bytes": 0}
            result = self._run(job)
            self._tables.purge()
        return {
            "level": level,
            "compacted": True,
            "input_bytes": result.input_bytes,
            "output_bytes": result.output_bytes,
            "seconds": result.seconds,
        }

    def wait_for_background(self, timeout: float = 30.0) -> None:
        """Block until no flush or compaction is pending (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        background = self._background
        while background is not None and time.monotonic() < deadline:
            if (
                background.idle
                and not self._compaction_lock.locked()
                and (
                    background.compaction_error is not None
                    or pick_compaction(self._state.version, self._settings, self._pointers) is None
                )
            ):
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
        manifest = self._tables.manifest
        memtables = [state.active, *state.immutables]
        stored = sum(meta.entries for meta in manifest.tables()) + sum(len(m) for m in memtables)
        estimate = stored > _EXACT_COUNT_LIMIT
        stamp = (self._last_lsn, manifest.generation)
        if not estimate and self._counted[0] == stamp:
            total = self._counted[1]  # health checks ask every second: count once per change
        elif not estimate:
            try:
                total = sum(1 for _ in self.scan())
                self._counted = (stamp, total)
            except CorruptionError:
                estimate = True
        if estimate:
            total = sum(meta.entries - meta.tombstones for meta in manifest.tables()) + sum(map(len, memtables))
        background = self._background
        return {
            "total_keys": total,
            "total_keys_is_estimate": estimate,
            **describe(
                manifest=manifest,
                version=state.version,
                memtables=memtables,
                cache=self._cache,
                settings=self._settings,
                write_buffer_bytes=self._memtable_limit,
                work=self._work,
            ),
            "flush_error": background.flush_error.message if background and background.flush_error else None,
            "compaction_error": background.compaction_error if background else None,
            "open_notes": list(self._tables.notes),
        }

    def _store_verify(self, report: VerifyReport) -> None:
        manifest, version, ignore, limit = self._tables.ours_to_ignore()
        readers = {table.meta.number: table for table in version.tables() if not table.damaged}
        verify_tables(self.path, manifest, readers, report)
        for name in find_orphans(self.path, manifest.numbers(), ignore):
            number = table_number(name)
            if number is not None and number >= limit:
                continue  # being written right now, or left by a crash and removed on the next open
            report.add(
                "orphan-file", f"{name} is in {SSTABLE_DIR}/ but not in the manifest", file=f"{SSTABLE_DIR}/{name}"
            )

    def _store_scrub_units(self) -> list[ScrubUnit]:
        return table_units(self.path, lambda: self._tables.manifest)

    def _background_corruption(self, error: CorruptionError) -> None:
        hook = self.corruption_hook
        if hook is not None:
            hook(error, "compaction")

    def _store_checkpoint(self, dest: Path) -> tuple[int, Callable[[], None] | None]:
        if self.mode == "rw":
            self._store_flush()
        with self._tables.lock:
            manifest = self._tables.manifest
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
            save_manifest(
                dest,
                Manifest(
                    levels=manifest.levels, durable_lsn=manifest.durable_lsn, next_file_number=manifest.next_file_number
                ),
            )
            # Read-only, nothing was flushed: the copied tables hold only the manifest's LSN, and the
            # WAL segments past it must go into the copy (they hold the rest, replayed on open).
            held = self._last_lsn if self.mode == "rw" else manifest.durable_lsn
        return held, None

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
        before = {
            "block_cache_bytes": self._cache.used_bytes,
            "block_cache_capacity_bytes": self._cache.capacity_bytes,
            "write_buffer_bytes": self._memtable_limit,
        }
        self._cache.resize(cache_bytes)
        if write_buffer_bytes is not None:
            self.set_write_buffer(write_buffer_bytes)
        return {
            **{f"{name}_before": value for name, value in before.items()},
            "block_cache_bytes": self._cache.used_bytes,
            "block_cache_capacity_bytes": self._cache.capacity_bytes,
            "write_buffer_bytes": self._memtable_limit,
        }

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
            for record in WalReader(self.wal_dir).records(
                from_lsn=from_lsn, to_lsn=self._last_lsn, mode=RecoveryMode(self.options.wal_recovery)
            ):
                if not count and record.lsn > max(from_lsn, 1):
                    raise SafetyRefusal(
                        f"the WAL starts at LSN {record.lsn}, after {from_lsn}: replaying it "
                        "would restore only part of what was lost",
                        hint="restore the range from a backup instead",
                    )
                self._active.apply(record.lsn, record.entries())
                count += 1
            if not count and from_lsn <= self._last_lsn:
                raise SafetyRefusal(
                    f"the WAL holds no records from LSN {from_lsn} on", hint="restore the range from a backup instead"
                )
            self._store_flush()
        return count

    def quarantine_table(self, file: str) -> RepairReport:
        """Move one table out of the live set into quarantine (see ``repair.quarantine_sstable``)."""
        from engines.lsm.repair import quarantine_sstable

        return quarantine_sstable(self, file)

    def _drop_table(self, number: int) -> Any:
        """Remove table ``number`` from the manifest (no deletion); returns its metadata."""
        if self.mode != "rw":
            raise ReadOnlyError(f"{self.path} is open read-only", hint="reopen with mode='rw'")
        with self._compaction_lock:
            dropped = self._tables.drop(number, install=self._install)
            if dropped is None:
                raise InvalidArgumentError(f"{table_name(number)} is not a live table of {self.path}")
            return dropped.meta

    @classmethod
    def verify_unopenable(cls, path: Path, error: CorruptionError) -> VerifyReport:
        """Check every table, the manifest and the WAL without opening the engine."""
        from engines.lsm.verify import verify_data_dir

        return verify_data_dir(path)

    @classmethod
    def repair(cls, path: Path) -> RepairReport:
        """Rebuild the manifest from the tables; corrupt tables go to quarantine (see ``repair``).

        When the WAL still holds what a quarantined table held, the rebuilt manifest lets the WAL
        replay it; the data dir is opened once here so the repair ends with those writes back in the
        store (a repair on its own must not leave a data dir whose next open silently differs).
        """
        from engines.lsm.repair import rebuild_manifest
        from engines.repair_replay import replay_after_repair

        report = rebuild_manifest(path)
        if report.recovered_lsn_ranges and report.durable_lsn is not None:
            # The tables' own ranges stay the record of what came back (the accounting matches
            # them against what was lost); the replay may add the WAL's tail beyond them.
            held = list(report.recovered_lsn_ranges)
            replay_after_repair(path, cls.backend, report, replay_from=report.durable_lsn)
            report.recovered_lsn_ranges = held
        return report
