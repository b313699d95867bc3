"""The pure parts of backups: SHA256SUMS format, times, sizes, windows, gaps, coverage, progress."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from engines.backup.archive import ArchivedSegment
from engines.backup.checksums import format_sums, parse_sums, sha256_file
from engines.backup.metadata import iso_utc, parse_iso_utc, size_readable
from engines.backup.pitr import Reach, _chain_end, window_text
from engines.backup.progress import ProgressTracker
from engines.backup.retention import RetentionPolicy, _covered
from engines.backup.verify import _missing
from engines.errors import InvalidArgumentError


def test_sums_round_trip_including_names_that_need_escaping() -> None:
    entries = [("data/a.sst", "a" * 64), ("odd\\name", "b" * 64), ("new\nline", "c" * 64)]
    text = format_sums(entries)
    assert text.splitlines()[0] == "a" * 64 + "  data/a.sst"
    assert text.splitlines()[1].startswith("\\")
    assert parse_sums(text) == entries
    with pytest.raises(ValueError, match="line 1"):
        parse_sums("not a sum\n")


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum is needed")
def test_sums_are_what_sha256sum_writes_and_checks(tmp_path: Path) -> None:
    (tmp_path / "file one").write_bytes(b"hello\n")
    ours = format_sums([("file one", sha256_file(tmp_path / "file one"))])
    theirs = subprocess.run(["sha256sum", "file one"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert ours == theirs
    (tmp_path / "SUMS").write_text(ours)
    assert subprocess.run(["sha256sum", "-c", "SUMS"], cwd=tmp_path, capture_output=True).returncode == 0


def test_sha256_of_a_prefix(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abcdef" * 1000)
    assert sha256_file(tmp_path / "f", limit=10) == hashlib.sha256(b"abcdefabcd").hexdigest()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-23T14:30:00Z", 1795444200 * 10**9),
        ("2026-11-23 14:30:00", 1795444200 * 10**9),
        ("2026-11-23T16:30:00+02:00", 1795444200 * 10**9),
        ("2026-11-23T14:30:00.123456789Z", 1795444200 * 10**9 + 123456789),
        ("2026-11-23T14:30:00.5", 1795444200 * 10**9 + 500_000_000),
    ],
)
def test_iso_times_parse_to_utc_nanoseconds(text: str, expected: int) -> None:
    assert parse_iso_utc(text) == expected


def test_iso_round_trip_and_bad_times() -> None:
    ns = 1795444200 * 10**9 + 123456000
    assert iso_utc(ns) == "2026-11-23T14:30:00.123456Z"
    assert parse_iso_utc(iso_utc(ns)) == ns
    with pytest.raises(InvalidArgumentError, match="ISO 8601"):
        parse_iso_utc("yesterday")


def test_sizes_read_as_the_reference_writes_them() -> None:
    assert size_readable(536870912) == "512MB"
    assert size_readable(1536) == "1.5KB"
    assert size_readable(12) == "12B"


def _segment(name: int, first: int, last: int | None, problem: str | None = None) -> ArchivedSegment:
    return ArchivedSegment(f"{name:020d}.wal", "0" * 64, 100, first, last, 10, 20, 1, problem)


def test_the_chain_after_a_backup_stops_at_a_gap_or_damage() -> None:
    segments = [_segment(1, 1, 100), _segment(101, 101, 200), _segment(301, 301, 400)]
    end = _chain_end(150, segments)
    assert end is not None and end.last_lsn == 200
    assert _chain_end(400, segments) is None
    damaged = [_segment(1, 1, 100), _segment(101, 101, 150, "checksum mismatch at offset 9"), _segment(151, 151, 300)]
    end = _chain_end(50, damaged)
    assert end is not None and end.last_lsn == 150


def test_the_window_merges_overlapping_reaches() -> None:
    reaches = [Reach("a", 10, 200, 1, 2), Reach("b", 150, 300, 3, 4), Reach("c", 500, 600, 5, 6)]
    text = window_text(reaches)
    assert text.startswith("LSN 10..300 (") and "; LSN 500..600 (" in text
    assert window_text([]).startswith("none")


def test_missing_ranges_are_reported_like_wal_verify() -> None:
    ranges = [(1, 100), (101, 200), (301, 400), (451, 500)]
    assert _missing(ranges, (1, None)) == [(201, 300), (401, 450)]
    assert _missing(ranges, (150, 320)) == [(201, 300)]
    assert _missing(ranges, (50, 600)) == [(201, 300), (401, 450), (501, 600)]
    assert _missing([], (5, None)) == []


def test_coverage_of_an_lsn_span() -> None:
    assert _covered((10, 50), [(1, 20), (21, 60)])
    assert not _covered((10, 50), [(1, 20), (22, 60)])
    assert not _covered((10, 50), [])


def test_retention_counts_cannot_be_negative() -> None:
    with pytest.raises(InvalidArgumentError):
        RetentionPolicy(daily=-1)


def test_progress_reports_eta_and_always_the_end() -> None:
    events = []
    tracker = ProgressTracker(events.append, "pack", 100, interval=0.0)
    tracker.advance(25)
    tracker.advance(25)
    tracker.finish()
    assert events[0].done == 0 and events[-1].finished and events[-1].done == 50
    assert events[1].eta_seconds is not None and events[1].rate > 0
    silent = ProgressTracker(None, "pack", 10)
    silent.advance(5)
    silent.finish()


def test_plain_size_from_the_sealed_size_at_every_chunk_boundary(tmp_path: Path) -> None:
    import os

    from engines.backup.cipher import EncryptionKey, encrypt_file, plain_size

    key = EncryptionKey(os.urandom(32))
    for size in (0, 1, 63, 64, 65, 128, 129, 1000):
        plain, sealed = tmp_path / "plain", tmp_path / "sealed"
        plain.write_bytes(os.urandom(size))
        encrypt_file(plain, sealed, key, chunk_bytes=64)
        assert plain_size(sealed.stat().st_size, 64) == size
    assert plain_size(10, 64) is None  # shorter than a header and a tag: no encrypted file


def test_a_playbook_path_parameter_keeps_an_sftp_url() -> None:
    from playbooks.errors import ParameterError
    from playbooks.loader import Library
    from playbooks.plan import resolve_params

    playbook = Library.load().playbooks["host-loss"]
    params = resolve_params(playbook, {"repo": "sftp://backup@vault:2222//srv/x"})
    assert params["repo"] == "sftp://backup@vault:2222/srv/x"
    assert resolve_params(playbook, {"repo": "rel/dir"})["repo"] == str(Path("rel/dir").absolute())
    with pytest.raises(ParameterError, match="repo"):
        resolve_params(playbook, {"repo": "sftp://nohost"})
