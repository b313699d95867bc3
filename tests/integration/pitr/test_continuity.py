"""Archive before recycle, whoever opens the data dir: the CLI, an embedded application, a copy.

No mocks: real engines on real files, the real CLI (in-process), a repository made unreachable by
renaming it away (what an unmounted backup volume looks like) and brought back.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from support import run_cli_in_process

from engines import create_engine, open_engine
from engines.backup import iso_utc, restore_backup, verify_repository
from engines.errors import WalHeldError

SEGMENT = 64 * 1024


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path):  # type: ignore[no-untyped-def]
    from console.cli.main import main

    return run_cli_in_process(capsys, main, *args)


def _jsonl(path: Path, start: int, count: int, size: int = 100) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for n in range(start, start + count):
            handle.write(json.dumps({"key": f"k{n:06d}", "value": "v" * size}) + "\n")
    return path


def _state(data: Path) -> dict[bytes, bytes]:
    with open_engine(data, mode="ro") as engine:
        return dict(engine.scan())


def _tree(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}


def test_the_issue_sequence_leaves_no_gap(backend: str, tmp_path: Path, capsys) -> None:
    """init, import, backup, import, delete, import, backup --incremental: verify, latest and --until all work."""
    data, repo = tmp_path / "data", tmp_path / "repo"
    assert cli(capsys, "engine", "init", "--engine", backend, "--data-dir", data).code == 0
    assert cli(capsys, "engine", "import", "--data-dir", data, "--input", _jsonl(tmp_path / "a", 0, 1500)).code == 0
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo).code == 0
    assert cli(capsys, "engine", "import", "--data-dir", data, "--input", _jsonl(tmp_path / "b", 1500, 300)).code == 0
    assert cli(capsys, "engine", "delete", "--data-dir", data, "k000005").code == 0
    after_delete = _state(data)
    moment = time.time_ns()
    time.sleep(0.01)
    assert cli(capsys, "engine", "import", "--data-dir", data, "--input", _jsonl(tmp_path / "c", 1800, 700)).code == 0
    final = _state(data)
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--incremental").code == 0
    verified = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert verified.code == 0, verified.out
    assert verified.json()["wal"]["missing"] == []
    assert cli(capsys, "backup", "restore", "--repo", repo, "latest", "--data-dir", tmp_path / "latest").code == 0
    assert _state(tmp_path / "latest") == final
    until = cli(
        capsys, "backup", "restore", "--repo", repo, "--until", iso_utc(moment), "--data-dir", tmp_path / "then"
    )
    assert until.code == 0, until.err
    assert _state(tmp_path / "then") == after_delete
    # The data dir says where its WAL goes, and every segment it still holds is archived.
    marker = json.loads((data / "drconsole.json").read_text())
    assert marker["archive"]["repo"] == str(repo)
    segments = {p.name for p in (data / "wal").glob("*.wal")}
    assert {p.name for p in (data / "wal" / "archive_status").iterdir()} == {f"{name}.done" for name in segments}


def test_an_unreachable_repository_holds_the_wal_and_says_why(tmp_path: Path) -> None:
    data, repo, away = tmp_path / "data", tmp_path / "repo", tmp_path / "repo-unmounted"
    with create_engine(data, backend="lsm", durability="async", wal_segment_bytes=SEGMENT) as engine:
        engine.put(b"seed", b"1")
    from engines.backup import create_backup

    create_backup(repo, data_dir=data)
    repo.rename(away)  # the backup volume is gone
    with open_engine(data, durability="async") as engine:
        for n in range(3000):
            engine.put(b"k%05d" % n, b"x" * 60)
        engine.flush()  # the store covers the WAL: only the archive keeps a segment now
        stats = engine.stats()
        assert stats.archive is not None and stats.archive.state == "failing"
        assert str(repo) in (stats.archive.error or "") and "does not exist" in (stats.archive.error or "")
        assert stats.archive.held_segments >= 3 and stats.archive.held_bytes >= 3 * SEGMENT
        assert "bytes of WAL" in (engine.archive_error or "")
        held = sorted(p.name for p in (data / "wal").glob("*.wal"))
    # Closed without the repository: every segment is still there, marked ready.
    assert sorted(p.name for p in (data / "wal").glob("*.wal")) >= held
    assert any(p.name.endswith(".ready") for p in (data / "wal" / "archive_status").iterdir())
    away.rename(repo)  # the volume is back: the next process to open the data dir archives
    with open_engine(data, durability="async") as engine:
        assert engine.stats().archive.state in ("pending", "ok")  # type: ignore[union-attr]
        engine.put(b"after", b"2")
    with open_engine(data, mode="rw") as engine:
        assert engine.stats().archive.state == "ok"  # type: ignore[union-attr]
    report = verify_repository(str(repo))
    assert report.ok, report.problems
    restored = tmp_path / "restored"
    restore_backup(repo, restored, until_lsn=3002)
    assert _state(restored) == _state(data)


def test_past_the_ceiling_writes_are_refused_then_resume(tmp_path: Path, monkeypatch) -> None:
    """The WAL held for an unreachable archive stops at the ceiling with a clear error; nothing is lost."""
    import engines.archiving

    monkeypatch.setattr(engines.archiving, "RETRY_SECONDS", 0.0)
    data, repo, away = tmp_path / "data", tmp_path / "repo", tmp_path / "away"
    from engines.backup import create_backup

    with create_engine(
        data, backend="rocksdb", durability="async", wal_segment_bytes=SEGMENT, wal_hold_max_bytes=4 * SEGMENT
    ) as engine:
        create_backup(repo, engine=engine)
        repo.rename(away)
        acked = 0
        with pytest.raises(WalHeldError) as refused:
            for n in range(100_000):
                engine.put(b"k%06d" % n, b"y" * 100)
                acked = n + 1
                if n % 500 == 0:
                    engine.flush()
        assert "writes refused" in refused.value.message and "ceiling" in refused.value.message
        assert acked < 100_000
        state = engine.stats().archive
        assert state is not None and state.state == "refusing" and state.held_bytes > 4 * SEGMENT
        assert engine.get(b"k%06d" % (acked - 1)) == b"y" * 100  # reads go on
        away.rename(repo)
        engine.put(b"resumed", b"1")  # the refused write retried the archive, which works again
        assert engine.stats().archive.state in ("ok", "pending")  # type: ignore[union-attr]
    assert verify_repository(str(repo)).ok
    restored = tmp_path / "restored"
    restore_backup(repo, restored, until_lsn=acked + 1)
    assert _state(restored) == _state(data)


def test_a_copy_of_the_data_dir_never_archives_into_the_original_repository(tmp_path: Path) -> None:
    data, repo, copy = tmp_path / "data", tmp_path / "repo", tmp_path / "sandbox" / "data"
    with create_engine(data, backend="cow", durability="async", wal_segment_bytes=SEGMENT) as engine:
        engine.put(b"a", b"1")
    from engines.backup import create_backup

    create_backup(repo, data_dir=data)
    shutil.copytree(data, copy, symlinks=True)  # a drill sandbox, a cp -a
    before = _tree(repo / "wal-archive")
    with open_engine(copy, durability="async") as engine:
        for n in range(2000):
            engine.put(b"drill%05d" % n, b"z" * 80)
        engine.flush()
        state = engine.stats().archive
        assert state is not None and state.state == "held" and "copy" in (state.error or "")
    assert _tree(repo / "wal-archive") == before
    assert len(list((copy / "wal").glob("*.wal"))) >= 3  # held, not recycled, not archived


def test_an_embedded_application_archives_as_it_goes(backend: str, tmp_path: Path) -> None:
    """open_engine in an application: segments sealed by size reach the archive when it flushes or closes."""
    data, repo = tmp_path / "data", tmp_path / "repo"
    from engines.backup import create_backup

    with create_engine(data, backend=backend, durability="sync", wal_segment_bytes=SEGMENT) as engine:
        engine.put(b"first", b"1")
        create_backup(repo, engine=engine)
        for n in range(1500):
            engine.put(b"app%05d" % n, b"w" * 50)
        engine.flush()
        state = engine.stats().archive
        assert state is not None and state.state == "ok" and state.archived_lsn is not None
        assert state.archived_lsn >= 1000
    report = verify_repository(str(repo))
    assert report.ok and report.wal is not None and report.wal.last_lsn == 1501
    restored = tmp_path / "restored"
    restore_backup(repo, restored, until_lsn=1501)
    assert _state(restored) == _state(data)
