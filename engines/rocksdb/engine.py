"""The RocksDB backend: ``rocksdict.Rdict`` with explicit options under ``<data-dir>/rocksdb/``.

drconsole's WAL is this backend's crash log: RocksDB writes with its own WAL disabled, our WAL
record reaches the OS before RocksDB sees the write (so a killed process never leaves RocksDB
ahead of the log), and ``rocksdb.state.json`` records the LSN that RocksDB's flushed tables cover.
Replay from there is idempotent. RocksDB's WAL recovery mode is still set explicitly at every
open, for directories whose RocksDB WAL holds data (imported or older ones).

Read-only opens never touch the data dir: rocksdict rewrites ``rocksdict-config.json`` in any
directory it opens, so a read-only open goes through a private shadow directory of symlinks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rocksdict import (
    AccessType,
    Checkpoint,
    DBRecoveryMode,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from engines import fsio
from engines.base import WAL_DIR, Engine, Entry
from engines.errors import CorruptionError, EngineError, NotFoundError
from engines.fsutil import atomic_write_text, fsync_dir, new_quarantine
from engines.options import EngineOptions
from engines.repair_replay import replay_after_repair
from engines.reports import RepairReport, VerifyReport
from engines.rocksdb.errors import map_rocksdb_error, rocks_call
from engines.rocksdb.scrub import range_units
from engines.scrub import ScrubUnit
from engines.wal import list_segments

__all__ = ["RocksEngine", "ROCKSDB_DIR", "STATE_FILE"]

ROCKSDB_DIR = "rocksdb"
STATE_FILE = "rocksdb.state.json"
_SHADOW_SKIP = {"LOCK", "rocksdict-config.json"}

_RECOVERY = {
    "tolerate_corrupted_tail_records": DBRecoveryMode.tolerate_corrupted_tail_records,
    "absolute_consistency": DBRecoveryMode.absolute_consistency,
    "point_in_time": DBRecoveryMode.point_in_time,
    "skip_any_corrupted_records": DBRecoveryMode.skip_any_corrupted_record,
}


def _write_buffer_bytes(options: EngineOptions) -> int:
    return 4 * 2**20 if options.low_memory else 64 * 2**20


def _rocks_options(options: EngineOptions, *, create: bool = False) -> Options:
    rocks = Options(raw_mode=True)
    rocks.create_if_missing(create)
    rocks.set_paranoid_checks(True)
    rocks.set_wal_recovery_mode(_RECOVERY[options.wal_recovery]())
    # Set explicitly: the memtable-switch guard of RocksEngine reasons about this size.
    rocks.set_write_buffer_size(_write_buffer_bytes(options))
    if options.low_memory:
        rocks.set_max_write_buffer_number(2)
        rocks.set_max_open_files(64)
    else:
        rocks.increase_parallelism(max(2, os.cpu_count() or 2))
    return rocks


class RocksEngine(Engine):
    backend = "rocksdb"
    # Our WAL must reach the OS before RocksDB may flush the write into a table on its own.
    wal_before_apply = True

    @property
    def rocksdb_dir(self) -> Path:
        return self.path / ROCKSDB_DIR

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def _store_create(cls, path: Path, options: EngineOptions) -> None:
        with rocks_call(f"creating RocksDB in {path / ROCKSDB_DIR}"):
            Rdict(str(path / ROCKSDB_DIR), _rocks_options(options, create=True)).close()
        atomic_write_text(path / STATE_FILE, json.dumps({"durable_lsn": 0}) + "\n")

    def _store_open(self) -> None:
        self._shadow: Path | None = None
        if not (self.rocksdb_dir / "CURRENT").exists():
            raise NotFoundError(
                f"{self.rocksdb_dir} holds no RocksDB database (no CURRENT file)",
                hint="check the data dir, or restore it from a backup",
            )
        self._durable_lsn = self._read_state()
        self._write_options = WriteOptions()
        self._write_options.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stub says method
        self._init_switch_guard()
        options = _rocks_options(self.options)
        if self.mode == "ro":
            self._shadow = _shadow_of(self.rocksdb_dir)
            try:
                with rocks_call(f"opening {self.rocksdb_dir} read-only"):
                    self._db = Rdict(str(self._shadow), options, access_type=AccessType.read_only())
            except BaseException:
                # A store that does not open is never closed: its shadow would outlive us in /tmp.
                shutil.rmtree(self._shadow, ignore_errors=True)  # our private symlink shadow
                self._shadow = None
                raise
        else:
            with rocks_call(f"opening {self.rocksdb_dir}"):
                self._db = Rdict(str(self.rocksdb_dir), options)
        self._store_get = self._db.get  # type: ignore[method-assign]  # see _store_get

    def _store_close(self) -> None:
        try:
            with rocks_call(f"closing {self.rocksdb_dir}"):
                self._db.close()
        finally:
            if self._shadow is not None:
                shutil.rmtree(self._shadow, ignore_errors=True)  # our private symlink shadow
                self._shadow = None

    def _read_state(self) -> int:
        path = self.path / STATE_FILE
        if not path.exists():
            return 0  # lost state file: replaying the whole WAL is still correct (idempotent)
        try:
            return int(json.loads(path.read_text(encoding="utf-8"))["durable_lsn"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptionError(
                f"{path} is damaged: {exc}", file=STATE_FILE, hint="move it aside; the WAL is then replayed in full"
            ) from exc

    # ------------------------------------------------------------------ data path
    def _store_durable_lsn(self) -> int:
        return self._durable_lsn

    # RocksDB persists a write on its own only by flushing a full memtable, and the active
    # memtable is switched out only when it nears its write-buffer size. So the WAL record must
    # reach the OS before the write only while the active memtable may be near that size: below
    # it, the async flusher (every few ms) and every flush/checkpoint/close (which hand the WAL to
    # the OS first) keep the log ahead. Growth is over-estimated per entry and the real size read
    # back from RocksDB every ``_check_every`` estimated bytes.
    _ENTRY_OVERHEAD = 64

    def _init_switch_guard(self) -> None:
        buffer = _write_buffer_bytes(self.options)
        self._guard_margin = buffer // 4
        self._guard_limit = buffer - self._guard_margin
        self._check_every = self._guard_margin // 4
        self._unchecked = 0
        self._near_switch = True  # until the first reading says otherwise

    def _wal_needed_before_apply(self, entries: Sequence[Entry]) -> bool:
        size = 0
        for key, value in entries:
            size += len(key) + (0 if value is None else len(value)) + self._ENTRY_OVERHEAD
        self._unchecked += size
        if self._unchecked < self._check_every and not self._near_switch:
            return False
        if size >= self._check_every:
            return True  # one write big enough to fill the memtable: never skip
        if self._unchecked >= self._check_every or self._near_switch:
            self._unchecked = 0
            try:
                active = self._db.property_int_value("rocksdb.cur-size-active-mem-table") or 0
            except Exception as exc:  # rocksdict raises bare Exception: the boundary
                raise map_rocksdb_error(exc, f"reading properties of {self.rocksdb_dir}") from exc
            self._near_switch = active >= self._guard_limit
        return self._near_switch

    # The three hot paths catch exceptions inline: a context manager per call costs more than
    # the RocksDB call itself. The message is only built on failure.
    def _store_apply(self, lsn: int, entries: Sequence[Entry]) -> None:
        try:
            if len(entries) == 1:
                key, value = entries[0]
                if value is None:
                    self._db.delete(key, self._write_options)
                else:
                    self._db.put(key, value, self._write_options)
                return
            batch = WriteBatch(raw_mode=True)
            for key, value in entries:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            self._db.write(batch, self._write_options)
        except Exception as exc:  # rocksdict raises bare Exception: the boundary
            raise map_rocksdb_error(exc, f"writing to {self.rocksdb_dir}") from exc

    def _store_get(self, key: bytes) -> bytes | None:
        # Replaced in _store_open by rocksdict's own bound ``get``: one Python frame less per
        # read. Engine.get maps its exceptions through _map_store_error.
        raise NotImplementedError

    def _map_store_error(self, exc: Exception, what: str) -> EngineError:
        return map_rocksdb_error(exc, what)

    def _store_scan(self, start: bytes | None, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        # Checksums are verified on every read: a damaged block raises, never returns wrong data.
        return self._iterate(start, end, verify_checksums=True)

    def _iterate(
        self, start: bytes | None, end: bytes | None, *, verify_checksums: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        read_options = ReadOptions()
        read_options.set_verify_checksums(verify_checksums)
        if end is not None:
            read_options.set_iterate_upper_bound(end)
        try:
            iterator = self._db.iter(read_options)
            if start is None:
                iterator.seek_to_first()
            else:
                iterator.seek(start)
            valid, key, value, step = iterator.valid, iterator.key, iterator.value, iterator.next
            while valid():
                yield key(), value()
                step()
            iterator.status()  # an iterator stops early on corruption: this raises it
        except Exception as exc:  # rocksdict raises bare Exception: the boundary
            raise map_rocksdb_error(exc, f"scanning {self.rocksdb_dir}") from exc

    def _store_flush(self) -> None:
        lsn = self._last_lsn
        with rocks_call(f"flushing {self.rocksdb_dir}"):
            self._db.flush(True)
        if lsn != self._durable_lsn:
            atomic_write_text(self.path / STATE_FILE, json.dumps({"durable_lsn": lsn}) + "\n")
            self._durable_lsn = lsn

    def _store_compact(self) -> None:
        with rocks_call(f"compacting {self.rocksdb_dir}"):
            self._db.compact_range(None, None)

    def _store_stats(self) -> dict[str, Any]:
        with rocks_call(f"reading properties of {self.rocksdb_dir}"):
            keys = self._db.property_int_value("rocksdb.estimate-num-keys") or 0
            sst_bytes = self._db.property_int_value("rocksdb.total-sst-files-size") or 0
            memtables = self._db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
            live = self._db.live_files()
        overlay_keys = sum(1 for value in self._overlay.values() if value is not None)
        return {
            "total_keys": int(keys) + overlay_keys,
            "memory_usage_bytes": int(memtables),
            "sst_bytes": int(sst_bytes),
            "sst_files": len(live),
            "levels": sorted({int(item["level"]) for item in live}),
            "total_keys_is_estimate": True,
        }

    # ------------------------------------------------------------------ verify
    def _store_verify(self, report: VerifyReport) -> None:
        try:
            with rocks_call(f"listing live files of {self.rocksdb_dir}"):
                live = self._db.live_files()
        except CorruptionError as exc:
            report.add("checksum", exc.message, file=ROCKSDB_DIR)
            return
        live_names = set()
        for item in live:
            name = item["name"].lstrip("/")
            live_names.add(name)
            path = self.rocksdb_dir / name
            report.count("sst_files")
            if not path.exists():
                report.add("missing-file", f"live table {name} is missing", file=f"{ROCKSDB_DIR}/{name}")
            elif path.stat().st_size != int(item["size"]):
                report.add(
                    "size",
                    f"{name} is {path.stat().st_size} bytes, the manifest says {item['size']}",
                    file=f"{ROCKSDB_DIR}/{name}",
                )
        # A table outside the live set is what a crash mid-flush or mid-compaction leaves; RocksDB
        # purges such files itself, so they are counted, not reported as damage.
        orphans = [p for p in self.rocksdb_dir.glob("*.sst") if p.name not in live_names]
        report.count("orphan_sst_files", len(orphans))
        previous: bytes | None = None
        rows = 0
        try:
            for key, _value in self._iterate(None, None, verify_checksums=True):
                if previous is not None and key <= previous:
                    report.add("key-order", f"key {key!r} after {previous!r}", file=ROCKSDB_DIR)
                previous = key
                rows += 1
        except CorruptionError as exc:
            report.add("checksum", exc.message, file=self._relative(exc.file), offset=exc.offset)
        report.count("keys", rows)

    def _store_scrub_units(self) -> list[ScrubUnit]:
        def live_files() -> list[dict[str, Any]]:
            with rocks_call(f"listing live files of {self.rocksdb_dir}"):
                return list(self._db.live_files())

        return range_units(lambda: self._db, live_files, ROCKSDB_DIR, self._relative)

    def _relative(self, file: str | None) -> str | None:
        """A file named in a RocksDB message, relative to the data dir (shadow paths mapped back)."""
        if file is None:
            return None
        name = Path(file).name
        if self._shadow is not None and Path(file).parent == self._shadow:
            return f"{ROCKSDB_DIR}/{name}"
        try:
            return str(Path(file).relative_to(self.path))
        except ValueError:
            return file

    # ------------------------------------------------------------------ checkpoint & repair
    def _store_checkpoint(self, dest: Path) -> tuple[int, Callable[[], None] | None]:
        lsn = self._last_lsn
        with rocks_call(f"checkpointing {self.rocksdb_dir}"):
            Checkpoint(self._db).create_checkpoint(str(dest / ROCKSDB_DIR))
        # Checkpoint flushes the memtable, so the copy holds every write up to ``lsn``.
        atomic_write_text(dest / STATE_FILE, json.dumps({"durable_lsn": lsn}) + "\n")
        return lsn, None

    @classmethod
    def repair(cls, path: Path) -> RepairReport:
        """``Rdict.repair`` after a hard-link safety copy; what RocksDB drops goes to quarantine."""
        path = Path(path)
        rocks_dir = path / ROCKSDB_DIR
        if not rocks_dir.is_dir():
            raise NotFoundError(f"{rocks_dir} does not exist", hint="this is not a RocksDB data dir")
        report = RepairReport(backend=cls.backend)
        quarantine = new_quarantine(path, "pre-repair")
        report.quarantine = str(quarantine)
        safety = quarantine / ROCKSDB_DIR
        safety.mkdir()
        for item in rocks_dir.iterdir():
            if item.is_file() and item.name != "LOCK":
                # Hard links: tables are immutable; mutable files get a real copy.
                if item.suffix == ".sst":
                    os.link(item, safety / item.name)
                else:
                    shutil.copy2(item, safety / item.name)
        fsync_dir(safety)
        report.safety_copy = str(safety)
        report.actions.append(f"safety copy of {rocks_dir} in {safety}")
        before = {p.name for p in rocks_dir.glob("*.sst")}
        report.keys_before = _count_keys(rocks_dir)
        with rocks_call(f"repairing {rocks_dir}"):
            Rdict.repair(str(rocks_dir), _rocks_options(EngineOptions()))
        report.actions.append("Rdict.repair rebuilt the MANIFEST from the tables")
        lost_dir = rocks_dir / "lost"
        if lost_dir.is_dir():
            for item in sorted(lost_dir.rglob("*")):
                if item.is_file():
                    report.lost.append(f"RocksDB set aside {item.relative_to(rocks_dir)}")
            moved = quarantine / "rocksdb-lost"
            fsio.rename(lost_dir, moved)  # both under the data dir: one file system
            fsync_dir(quarantine)
            fsync_dir(rocks_dir)
            report.quarantined.append(str(moved))
        after = {p.name for p in rocks_dir.glob("*.sst")}
        for name in sorted(before - after):
            report.lost.append(f"table {name} was dropped (its copy is in {safety})")
        report.keys_after = _count_keys(rocks_dir)
        # Replay the whole WAL we still hold on next open: it re-creates what the dropped tables
        # held if the WAL still covers it, and replay is idempotent for the rest. A WAL whose first
        # segments were recycled starts later than LSN 1: replay from there (what the dropped
        # tables held before it is reported lost above), or the open would refuse the gap.
        segments = list_segments(path / WAL_DIR)
        replay_from = segments[0].first_lsn - 1 if segments else 0
        atomic_write_text(path / STATE_FILE, json.dumps({"durable_lsn": replay_from}) + "\n")
        report.actions.append(f"replaying the whole drconsole WAL (from LSN {replay_from + 1})")
        replay_after_repair(path, cls.backend, report, replay_from=replay_from)
        if replay_from == 0 and report.recovered_lsn_ranges:
            # The WAL reaches back to the first write: whatever the dropped files held came back.
            # They stay in quarantine; they are not lost.
            report.actions.extend(f"{line}; its writes came back from the WAL" for line in report.lost)
            report.lost = []
        elif report.lost:
            report.lost.append(
                f"writes before LSN {replay_from + 1} that only those files held are not in the "
                "WAL: compare with the latest backup, or replay the WAL archive"
            )
        report.ok = True
        return report


def _count_keys(rocks_dir: Path) -> int | None:
    shadow = _shadow_of(rocks_dir)
    try:
        db = Rdict(str(shadow), Options(raw_mode=True), access_type=AccessType.read_only())
    except Exception:  # a store too damaged to open has no count; the report says None
        shutil.rmtree(shadow, ignore_errors=True)  # our private symlink shadow
        return None
    try:
        return sum(1 for _ in db.keys())
    except Exception:  # corruption met while counting: no reliable count
        return None
    finally:
        db.close()
        shutil.rmtree(shadow, ignore_errors=True)  # our private symlink shadow


def _shadow_of(rocks_dir: Path) -> Path:
    """A private directory of symlinks to ``rocks_dir``'s files, for read-only opens."""
    shadow = Path(tempfile.mkdtemp(prefix="drconsole-ro-"))
    for item in rocks_dir.iterdir():
        if item.name not in _SHADOW_SKIP and item.is_file():
            os.symlink(item.resolve(), shadow / item.name)
    return shadow
