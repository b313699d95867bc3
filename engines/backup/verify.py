"""Verifying backups without restoring them.

Full verification re-reads everything: the metadata, each archive against the ``SHA256SUMS``
beside it, a complete decompression (zstd's content checksum; in a backup of format 1, every
member against the ``SHA256SUMS`` inside too), each archived WAL segment against the manifest
(hash, then every record), and the continuity of the archive: LSNs missing between segments are
reported as ranges, as WAL-G's ``wal-verify`` reports timeline gaps. ``quick`` checks that files
exist with the sizes the metadata and manifest give, and reads no data.

With no backup named, everything in the repository is checked; with one, what restoring it
needs (a full backup: its archive; an incremental one: its base and the WAL up to it). A full
verification records its outcome in the metadata (``verified``, ``restorability``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.backup.archive import ArchivedSegment, WalArchive, summarize_segment
from engines.backup.checksums import SUMS_NAME, parse_sums, sha256_file
from engines.backup.cipher import CHUNK_BYTES, plain_size
from engines.backup.errors import BackupCorruptionError
from engines.backup.location import shown_location
from engines.backup.metadata import iso_utc, now_ns, write_metadata
from engines.backup.mirror import current_access, stored_file, working_copy
from engines.backup.pitr import reaches, window_text
from engines.backup.progress import ProgressCallback
from engines.backup.repository import BackupEntry, Repository
from engines.backup.signing import SIGNATURE_SUFFIX, pinned_key, signature_problem, trusted_key
from engines.backup.unpack import read_archive
from engines.wal.segments import segment_name

__all__ = ["BackupCheck", "BackupProblem", "WalCheck", "VerifyResult", "verify_repository"]


@dataclass
class BackupProblem:
    """One thing verification found wrong (the shape of ``engines.reports.Problem``, which ``backup
    verify`` does not import: it opens no engine, and each module is start-up time of a short process)."""

    kind: str
    file: str | None = None
    detail: str = ""
    offset: int | None = None

    def model_dump(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.file, "offset": self.offset, "detail": self.detail}


Problem = BackupProblem


@dataclass
class BackupCheck:
    backup_id: str
    type: str | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, file: str | None, detail: str) -> None:
        self.problems.append(Problem(kind=kind, file=file, detail=detail))

    def to_json(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "type": self.type,
            "ok": self.ok,
            "problems": [problem.model_dump() for problem in self.problems],
        }


@dataclass
class WalCheck:
    segments: int = 0
    first_lsn: int | None = None
    last_lsn: int | None = None
    missing: list[tuple[int, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "segments": self.segments,
            "first_lsn": self.first_lsn,
            "last_lsn": self.last_lsn,
            "missing": [{"first_lsn": a, "last_lsn": b} for a, b in self.missing],
            "problems": [problem.model_dump() for problem in self.problems],
        }


@dataclass
class VerifyResult:
    quick: bool
    backups: list[BackupCheck]
    wal: WalCheck | None
    window: str
    duration_seconds: float = 0.0
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.backups) and (self.wal is None or self.wal.ok)

    @property
    def problems(self) -> list[Problem]:
        found = [problem for check in self.backups for problem in check.problems]
        if self.wal is not None:
            found += self.wal.problems
            found += [
                Problem(kind="wal-gap", file="wal-archive", detail=f"LSNs {a}..{b} are missing")
                for a, b in self.wal.missing
            ]
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "quick": self.quick,
            "backups": [check.to_json() for check in self.backups],
            "wal": None if self.wal is None else self.wal.to_json(),
            "window": self.window,
            "problems": [problem.model_dump() for problem in self.problems],
            "bytes_read": self.bytes_read,
            "duration_seconds": round(self.duration_seconds, 3),
        }


def verify_repository(
    repo_path: str, reference: str | None = None, *, quick: bool = False, progress: ProgressCallback | None = None
) -> VerifyResult:
    """Verify the whole repository (``reference`` None) or what restoring one backup needs."""
    # remote: every byte read back from the store; --quick: the metadata only, the sizes as listed
    with working_copy(repo_path, fetch="metadata" if quick else "all") as local:
        repo = Repository.open(local)
        if quick:
            _require_key(repo)
        return _named_in_repository(_verify(repo, reference, quick, progress), local)


def _named_in_repository(result: VerifyResult, local: Path) -> VerifyResult:
    """Problems name the repository's own files (its URL), not the private copy that is gone afterwards."""
    shown = shown_location(local)
    if shown == str(local):
        return result
    root = str(local)
    for problem in [p for check in result.backups for p in check.problems] + (
        result.wal.problems if result.wal else []
    ):
        if problem.file is not None and problem.file.startswith(root):
            problem.file = shown + problem.file[len(root) :]
    return result


def _require_key(repo: Repository) -> None:
    """An encrypted repository is verified with its key, quick or not (the full verify decrypts)."""
    from engines.backup.cipher_store import EncryptionKeyError

    encryption = repo.marker().get("encryption")
    if isinstance(encryption, dict) and current_access().encrypt_key is None:
        raise EncryptionKeyError(
            f"{repo.location} is encrypted (key {encryption.get('key_id')})",
            hint="give its key with --encrypt-key FILE",
        )


def _size(path: Path, repo: Repository) -> int | None:
    """The size of ``path`` (plain bytes), or as its store lists it when it was not pulled; None: absent."""
    try:
        return path.stat().st_size if path.is_file() else _listed_size(path, repo)
    except OSError:
        return None


def _listed_size(path: Path, repo: Repository) -> int | None:
    stored = stored_file(path)
    if stored is None or not stored.sealed:
        return None if stored is None else stored.size
    encryption = repo.marker().get("encryption")
    chunk = int(encryption.get("chunk_bytes", CHUNK_BYTES)) if isinstance(encryption, dict) else CHUNK_BYTES
    return plain_size(stored.size, chunk)


def _verify(repo: Repository, reference: str | None, quick: bool, progress: ProgressCallback | None) -> VerifyResult:
    clock = time.monotonic()
    archive = WalArchive(repo)
    entries = repo.backups()
    wal_range: tuple[int | None, int | None] | None = None
    if reference is None:
        chosen = entries
        fulls = [e.metadata.lsn_end for e in entries if e.metadata is not None and e.metadata.type == "full"]
        wal_range = (min(fulls) + 1 if fulls else None, None)
    else:
        entry = repo.find(reference)
        chosen = [entry]
        meta = entry.metadata
        if meta is not None and meta.type == "incremental":
            bases = [
                e
                for e in entries
                if e.metadata is not None and e.metadata.type == "full" and e.metadata.lsn_end <= meta.lsn_end
            ]
            if bases:
                chosen = [bases[-1], entry]
                wal_range = (bases[-1].require_metadata().lsn_end + 1, meta.lsn_end)
            else:
                wal_range = (meta.lsn_start, meta.lsn_end)
    result = VerifyResult(quick, [], None, "")
    trusted = trusted_key(repo.marker(), _pinned(), repo.location)
    for entry in chosen:
        result.backups.append(_check_backup(entry, archive, quick, progress, result, trusted))
    if wal_range is not None:
        result.wal = _check_wal(archive, wal_range, quick, result)
    try:
        result.window = window_text(reaches(repo, archive))
    except BackupCorruptionError:
        result.window = "unknown: the WAL archive manifest is damaged"
    result.duration_seconds = time.monotonic() - clock
    return result


def _pinned() -> str | None:
    """The signing key the caller vouches for (``--sign-key``, private or public), as hex."""
    key_file = current_access().sign_key
    return pinned_key(key_file) if key_file is not None else None


def _check_backup(
    entry: BackupEntry,
    archive: WalArchive,
    quick: bool,
    progress: ProgressCallback | None,
    result: VerifyResult,
    trusted: str | None = None,
) -> BackupCheck:
    meta = entry.metadata
    check = BackupCheck(entry.backup_id, None if meta is None else meta.type)
    if meta is None:
        assert entry.error is not None
        check.add("metadata", str(entry.metadata_path), entry.error.message)
        return check
    newer = meta.format_problem()
    if newer is not None:
        check.add("format", str(entry.metadata_path), newer)
        return check
    sums_path = entry.path / SUMS_NAME
    try:
        sums = parse_sums(sums_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        check.add("missing-file", str(sums_path), "SHA256SUMS is missing")
        return check
    except (ValueError, UnicodeDecodeError) as exc:
        check.add("checksum-list", str(sums_path), f"SHA256SUMS is damaged: {exc}")
        return check
    if meta.type == "full":
        _check_full(entry, dict(sums), quick, progress, check, result, archive.repo)
    else:
        _check_incremental(entry, sums, archive, quick, check, result)
    if trusted is not None:
        problem = signature_problem(entry.path, entry.backup_id, trusted)
        if problem is not None:
            check.add("signature", str(entry.path / f"{entry.backup_id}{SIGNATURE_SUFFIX}"), problem)
    if not quick:
        _record_outcome(entry, check)
    return check


def _check_full(
    entry: BackupEntry,
    sums: dict[str, str],
    quick: bool,
    progress: ProgressCallback | None,
    check: BackupCheck,
    result: VerifyResult,
    repo: Repository,
) -> None:
    meta = entry.require_metadata()
    name = meta.archive or f"{entry.backup_id}.tar.zst"
    path = entry.path / name
    if name not in sums:
        check.add("checksum-list", str(entry.path / SUMS_NAME), f"SHA256SUMS does not list {name}")
        return
    if meta.checksum != f"sha256:{sums[name]}":
        check.add("metadata", str(entry.metadata_path), f"checksum {meta.checksum} differs from SHA256SUMS")
    size = _size(path, repo)
    if size is None:
        check.add("missing-file", str(path), "the backup archive is missing")
        return
    if size != meta.size_bytes:
        check.add("size", str(path), f"{size} bytes, the metadata says {meta.size_bytes}")
    if quick:
        return
    report = read_archive(path, expected_sha256=sums[name], progress=progress, member_sums=meta.member_sums)
    result.bytes_read += report.archive_bytes
    for where, detail in report.problems:
        check.add("checksum" if "checksum" in detail else "archive", where, detail)
    if report.ok and report.file_count != meta.file_count:
        check.add("archive", str(path), f"{report.file_count} files inside, the metadata says {meta.file_count}")


def _check_incremental(
    entry: BackupEntry,
    sums: list[tuple[str, str]],
    archive: WalArchive,
    quick: bool,
    check: BackupCheck,
    result: VerifyResult,
) -> None:
    listed = archive.manifest()
    for name, digest in sums:
        path = (entry.path / name).resolve()
        size = _size(path, archive.repo)
        if size is None:
            check.add("missing-file", str(path), "an archived WAL segment of this backup is missing")
            continue
        known = listed.get(path.name)
        if known is not None and size != known.size:
            check.add("size", str(path), f"{size} bytes, the manifest says {known.size}")
        if not quick:
            actual = sha256_file(path)
            result.bytes_read += path.stat().st_size
            if actual != digest:
                check.add("checksum", str(path), f"checksum mismatch: sha256 is {actual}, SHA256SUMS says {digest}")


def _record_outcome(entry: BackupEntry, check: BackupCheck) -> None:
    """Write the verification outcome into the metadata; best effort (a read-only copy stays as it is)."""
    meta = entry.metadata
    if meta is None:
        return
    meta.verified = check.ok
    meta.restorability = "VERIFIED" if check.ok else "CORRUPT"
    meta.verified_at = iso_utc(now_ns())
    try:
        write_metadata(entry.metadata_path, meta)
    except Exception:  # noqa: BLE001 - recording is a courtesy; the report carries the outcome
        pass


def _check_wal(archive: WalArchive, span: tuple[int | None, int | None], quick: bool, result: VerifyResult) -> WalCheck:
    check = WalCheck()
    label = str(archive.path)
    try:
        listed = archive.manifest()
    except BackupCorruptionError as exc:
        check.problems.append(Problem(kind="manifest", file=exc.file, detail=exc.message))
        return check
    needed_from = segment_name(span[0]) if span and span[0] is not None else None
    present = archive.present_names() - set(archive.pruned_leftovers(needed_from))  # an interrupted prune's
    for name in sorted(present - set(listed)):
        check.problems.append(
            Problem(kind="unlisted-segment", file=f"{label}/{name}", detail="a segment file the manifest does not list")
        )
    usable: list[ArchivedSegment] = []
    for segment in sorted(listed.values(), key=lambda s: s.first_lsn):
        path = archive.path / segment.name
        if segment.name not in present:
            check.problems.append(
                Problem(
                    kind="missing-segment",
                    file=str(path),
                    detail=f"listed in the manifest (LSN {segment.first_lsn}..{segment.last_lsn}) but missing",
                )
            )
            continue
        size = _size(path, archive.repo)
        if size != segment.size:
            check.problems.append(
                Problem(kind="size", file=str(path), detail=f"{size} bytes, the manifest says {segment.size}")
            )
            continue
        if not quick:
            digest = sha256_file(path)
            result.bytes_read += size
            if digest != segment.sha256:
                check.problems.append(
                    Problem(
                        kind="checksum",
                        file=str(path),
                        detail=f"checksum mismatch: sha256 is {digest}, the manifest says {segment.sha256}",
                    )
                )
                continue
            actual = summarize_segment(path, digest)
            if (actual.first_lsn, actual.last_lsn) != (segment.first_lsn, segment.last_lsn):
                check.problems.append(
                    Problem(
                        kind="wal",
                        file=str(path),
                        detail=f"holds LSN {actual.first_lsn}..{actual.last_lsn}, the manifest "
                        f"says {segment.first_lsn}..{segment.last_lsn}",
                    )
                )
        if segment.problem is not None:
            check.problems.append(Problem(kind="wal", file=str(path), detail=segment.problem))
        usable.append(segment)
    check.segments = len(usable)
    ranges = [s.lsn_range for s in usable if s.lsn_range is not None]
    if ranges:
        check.first_lsn, check.last_lsn = ranges[0][0], max(end for _start, end in ranges)
    start = span[0] if span[0] is not None else (ranges[0][0] if ranges else 0)
    check.missing = _missing(ranges, (start, span[1]))
    return check


def _missing(ranges: list[tuple[int, int]], span: tuple[int, int | None]) -> list[tuple[int, int]]:
    """LSN ranges inside ``span`` that no segment holds (the open end: up to the last segment)."""
    start, end = span
    gaps = []
    expected = start
    for first, last in sorted(ranges):
        if last < start:
            continue
        if first > expected:
            stop = first - 1 if end is None else min(first - 1, end)
            if stop >= expected:
                gaps.append((expected, stop))
        expected = max(expected, last + 1)
        if end is not None and expected > end:
            break
    if end is not None and expected <= end:
        gaps.append((expected, end))
    return gaps
