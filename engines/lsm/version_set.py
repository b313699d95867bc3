"""The live set of tables: the manifest, the open readers, file numbers, and every edit of them.

Like LevelDB's VersionSet: one place owns ``manifest.json`` and the ``Version`` built from it.
An edit (flush, compaction, quarantine) writes the new manifest first, then swaps the version
in, then deletes the tables the edit before it retired; tables are complete and fsynced before
an edit names them. File numbers being written are recorded in the manifest (``pending``) so
that after a crash they are recognised as ours.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from engines.fsutil import fsync_dir
from engines.lsm.block_cache import BlockCache
from engines.lsm.manifest import Edit, Manifest, load_manifest, save_manifest
from engines.lsm.sstable_reader import DamagedTable, TableCorruptionError, open_table
from engines.lsm.table_meta import SSTABLE_DIR, TEMP_SUFFIX, TableMeta, table_name, table_number
from engines.lsm.version import Table, Version, sort_level

__all__ = ["VersionSet"]


class VersionSet:
    """The manifest and the version of one data dir. ``lock`` guards every change."""

    def __init__(self, data_dir: Path, *, levels: int, cache: BlockCache, writable: bool) -> None:
        self.path = Path(data_dir)
        self.directory = self.path / SSTABLE_DIR
        self.cache = cache
        self.lock = threading.RLock()
        self.notes: list[str] = []
        self._in_flight: set[int] = set()
        loaded = load_manifest(self.path)
        manifest = self._fall_back_if_copied_mid_edit(loaded)
        if manifest is not loaded and writable:
            save_manifest(self.path, manifest)  # never leave a manifest naming a missing file
        if len(manifest.levels) < levels:
            manifest = _with_levels(manifest, manifest.levels + tuple(() for _ in range(levels - len(manifest.levels))))
        self.manifest = manifest
        self.next_number = manifest.next_file_number
        if writable:
            self._remove_leftovers(manifest)
        readers = {meta.number: self._open(meta) for meta in manifest.tables()}
        self.version = Version([[readers[meta.number] for meta in level] for level in manifest.levels])

    def _open(self, meta: TableMeta) -> Table:
        try:
            return open_table(self.path, meta.number, meta=meta, cache=self.cache)
        except TableCorruptionError as exc:
            self.notes.append(exc.message)
            return DamagedTable(meta, exc)

    def open_output(self, meta: TableMeta) -> Table:
        """A reader for a table just written (raises if it does not read back)."""
        return open_table(self.path, meta.number, meta=meta, cache=self.cache)

    # -- file numbers --------------------------------------------------------------------------
    def allocate(self) -> int:
        with self.lock:
            number = self.next_number
            self.next_number += 1
            self._in_flight.add(number)
            return number

    def release(self, number: int) -> None:
        with self.lock:
            self._in_flight.discard(number)

    def ours_to_ignore(self) -> tuple[Manifest, Version, set[int], int]:
        """For verify: the manifest, version, numbers that are ours in passing, and the next number."""
        with self.lock:
            manifest = self.manifest
            ignore = set(self._in_flight) | set(manifest.retired) | set(manifest.pending)
            if manifest.last_edit is not None:
                ignore |= {meta.number for meta in manifest.last_edit.removed}
            return manifest, self.version, ignore, min(self.next_number, manifest.next_file_number)

    # -- edits ---------------------------------------------------------------------------------
    def commit(
        self,
        reason: str,
        added: Sequence[tuple[TableMeta, Table]],
        removed: Sequence[Table],
        *,
        durable_lsn: int | None = None,
        keep_removed: bool = False,
        install: Callable[[Version], None] | None = None,
    ) -> Manifest:
        """Write the manifest for an edit, swap the version in (``install``), delete retired tables.

        ``keep_removed``: the removed tables are not ours to delete (quarantine moves them).
        """
        with self.lock:
            old = self.manifest
            gone = {table.meta.number for table in removed}
            levels = [[meta for meta in level if meta.number not in gone] for level in old.levels]
            for meta, _reader in added:
                while len(levels) <= meta.level:
                    levels.append([])
                levels[meta.level].append(meta)
                self._in_flight.discard(meta.number)
            retire = tuple(sorted(meta.number for meta in old.last_edit.removed)) if old.last_edit else ()
            manifest = Manifest(
                levels=tuple(tuple(sort_level(n, level)) for n, level in enumerate(levels)),
                durable_lsn=max(old.durable_lsn, durable_lsn or 0),
                next_file_number=self.next_number,
                generation=old.generation + 1,
                last_edit=Edit(
                    reason=reason,
                    added=tuple(meta.number for meta, _ in added),
                    removed=() if keep_removed else tuple(table.meta for table in removed),
                    durable_lsn_before=old.durable_lsn,
                ),
                retired=retire,
                pending=tuple(sorted(self._in_flight)),
            )
            save_manifest(self.path, manifest)
            self.manifest = manifest
            tables = {table.meta.number: table for table in self.version.tables()}
            tables.update((meta.number, reader) for meta, reader in added)
            self.version = Version([[tables[meta.number] for meta in level] for level in manifest.levels])
            if install is not None:
                install(self.version)
            for number in retire:
                (self.directory / table_name(number)).unlink(missing_ok=True)  # superseded two edits ago
            if retire:
                # The next manifest forgets these numbers: their deletion must be durable first,
                # or a power cut brings them back as orphans that no open recognises as ours.
                fsync_dir(self.directory)
            for table in removed:
                self.cache.forget_table(table.id, len(table.index_keys))
            return manifest

    def purge(self) -> None:
        """Delete the tables the last edit retired now, not one edit later (frees the space)."""
        with self.lock:
            if self.manifest.last_edit is not None and self.manifest.last_edit.removed:
                self.commit("purge", [], [])

    def drop(self, number: int, install: Callable[[Version], None] | None = None) -> Table | None:
        """Take table ``number`` out of the live set without deleting it (quarantine moves it)."""
        with self.lock:
            found = [table for table in self.version.tables() if table.meta.number == number]
            if found:
                self.commit("quarantine", [], found, keep_removed=True, install=install)
            return found[0] if found else None

    # -- opening -------------------------------------------------------------------------------
    def _fall_back_if_copied_mid_edit(self, manifest: Manifest) -> Manifest:
        """Undo the last edit when exactly its new tables are missing and its old ones present.

        That is what a copy of a running data dir taken across a flush or compaction looks like
        (the manifest copied after the edit, ``sstables/`` listed before it). A real crash never
        needs this: tables are complete before a manifest names them.
        """
        edit = manifest.last_edit
        missing = {meta.number for meta in manifest.tables() if not (self.directory / meta.name).exists()}
        if not missing or edit is None or not missing <= set(edit.added):
            return manifest
        if not all((self.directory / meta.name).exists() for meta in edit.removed):
            return manifest
        added = set(edit.added)
        levels = [[meta for meta in level if meta.number not in added] for level in manifest.levels]
        for meta in edit.removed:
            while len(levels) <= meta.level:
                levels.append([])
            levels[meta.level].append(meta)
        self.notes.append(f"the manifest's last {edit.reason} named missing tables; using the state before it")
        return Manifest(
            levels=tuple(tuple(sort_level(n, level)) for n, level in enumerate(levels)),
            durable_lsn=min(manifest.durable_lsn, edit.durable_lsn_before),
            next_file_number=manifest.next_file_number,
            generation=manifest.generation + 1,
            last_edit=None,
            retired=manifest.retired,
            pending=tuple(sorted(set(manifest.pending) | added)),
        )

    def _remove_leftovers(self, manifest: Manifest) -> None:
        """Delete what our own interrupted work left: temp files, uncommitted and retired tables.

        Any other file in ``sstables/`` is left alone (it may be someone's data); verify reports it.
        """
        live = manifest.numbers()
        ours = set(manifest.retired) | set(manifest.pending)
        if manifest.last_edit is not None:
            ours |= {meta.number for meta in manifest.last_edit.removed}
        removed = False
        for path in list(self.directory.iterdir()):
            number = table_number(path.name)
            if path.name.endswith(TEMP_SUFFIX) or (
                number is not None and number not in live and (number in ours or number >= manifest.next_file_number)
            ):
                path.unlink(missing_ok=True)
                removed = True
        for path in self.path.glob(".manifest.json.tmp-*"):
            path.unlink(missing_ok=True)  # fsutil.atomic_write_bytes's temp name
        if removed:
            fsync_dir(self.directory)


def _with_levels(manifest: Manifest, levels: tuple[tuple[TableMeta, ...], ...]) -> Manifest:
    return Manifest(
        levels=levels,
        durable_lsn=manifest.durable_lsn,
        next_file_number=manifest.next_file_number,
        generation=manifest.generation,
        last_edit=manifest.last_edit,
        retired=manifest.retired,
        pending=manifest.pending,
    )
