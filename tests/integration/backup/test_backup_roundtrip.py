"""Full backups restore to exactly the state they were taken at, on every backend, hot or cold."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from backup_support import Model, cli, export, write_rows

from engines import create_engine, open_engine
from engines.backup import create_backup, restore_backup, verify_repository


def test_cli_round_trip_equals_the_source(backend: str, tmp_path: Path, capsys) -> None:
    source, repo, restored = tmp_path / "data", tmp_path / "repo", tmp_path / "restored"
    model = Model()
    with create_engine(source, backend=backend, durability="async", wal_segment_bytes=64 * 1024) as engine:
        write_rows(engine, model, 0, 600, tag="a")
    before = export(source)
    assert before == model.state_at(10**9)

    created = cli(capsys, "backup", "create", "--data-dir", source, "--repo", repo, "--json")
    assert created.code == 0, created.err
    payload = created.json()
    assert set(payload) >= {
        "backup_id",
        "type",
        "path",
        "size_bytes",
        "checksum",
        "lsn_start",
        "lsn_end",
        "duration_seconds",
    }
    assert payload["type"] == "full" and payload["checksum"].startswith("sha256:")
    assert payload["lsn_end"] == model.writes[-1][0]

    done = cli(capsys, "backup", "restore", "--repo", repo, payload["backup_id"], "--data-dir", restored, "--json")
    assert done.code == 0, done.err
    assert done.json()["lsn"] == payload["lsn_end"]
    assert export(restored) == before
    assert export(source) == before  # the source is unchanged by backing it up
    with open_engine(restored, mode="ro") as engine:
        assert engine.last_lsn == payload["lsn_end"]
        assert engine.verify().ok


def test_restored_dir_takes_writes_and_backs_up_again(backend: str, tmp_path: Path) -> None:
    source, repo, restored = tmp_path / "data", tmp_path / "repo", tmp_path / "restored"
    model = Model()
    with create_engine(source, backend=backend, durability="async") as engine:
        write_rows(engine, model, 0, 200, tag="a")
    first = create_backup(repo, data_dir=source)
    restore_backup(repo, restored)
    with open_engine(restored, durability="async") as engine:
        assert engine.last_lsn == first.lsn_end
        write_rows(engine, model, 200, 100, tag="b")  # LSNs continue where the backup ended
    second = create_backup(repo, data_dir=restored)
    assert second.lsn_end == model.writes[-1][0]
    assert verify_repository(str(repo)).ok
    again = tmp_path / "again"
    restore_backup(repo, again, reference=second.backup_id)
    assert export(again) == model.state_at(10**9)


def test_hot_backup_while_a_thread_writes_is_a_consistent_prefix(backend: str, tmp_path: Path) -> None:
    source, repo, restored = tmp_path / "data", tmp_path / "repo", tmp_path / "restored"
    model = Model()
    lock = threading.Lock()
    stop = threading.Event()
    engine = create_engine(source, backend=backend, durability="async", wal_segment_bytes=64 * 1024)
    with engine:
        write_rows(engine, model, 0, 300, tag="seed")

        def writer() -> None:
            rng = random.Random(7)
            n = 300
            while not stop.is_set():
                key = f"hot{n:06d}".encode()
                with lock:  # the model's order is the LSN order
                    lsn = engine.put(key, b"v%d" % n)
                    model.record(lsn, [(key, b"v%d" % n)])
                n += 1
                if rng.random() < 0.05:
                    key = f"hot{rng.randrange(300, n):06d}".encode()
                    with lock:
                        lsn = engine.delete(key)
                        model.record(lsn, [(key, None)])

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            while len(model.writes) < 800:
                threading.Event().wait(0.01)
            result = create_backup(repo, engine=engine)
            while len(model.writes) < result.lsn_end + 300:
                threading.Event().wait(0.01)
        finally:
            stop.set()
            thread.join()
    assert model.writes[-1][0] > result.lsn_end  # writes went on after the checkpoint
    restore_backup(repo, restored, reference=result.backup_id)
    assert export(restored) == model.state_at(result.lsn_end)


def test_incremental_of_a_live_engine_seals_and_archives_while_writes_go_on(backend: str, tmp_path: Path) -> None:
    source, repo = tmp_path / "data", tmp_path / "repo"
    model = Model()
    lock = threading.Lock()
    stop = threading.Event()
    with create_engine(source, backend=backend, durability="async", wal_segment_bytes=64 * 1024) as engine:
        write_rows(engine, model, 0, 200, tag="seed")
        create_backup(repo, engine=engine)

        def writer() -> None:
            n = 0
            while not stop.is_set():
                key = f"live{n:06d}".encode()
                with lock:
                    model.record(engine.put(key, b"x" * (n % 50)), [(key, b"x" * (n % 50))])
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            threading.Event().wait(0.2)
            incremental = create_backup(repo, engine=engine, incremental=True)
            threading.Event().wait(0.1)
        finally:
            stop.set()
            thread.join()
    assert incremental.backup_id is not None and model.writes[-1][0] > incremental.lsn_end
    restored = tmp_path / "restored"
    result = restore_backup(repo, restored, reference=incremental.backup_id)
    assert result.lsn == incremental.lsn_end
    assert export(restored) == model.state_at(incremental.lsn_end)
