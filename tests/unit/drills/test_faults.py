"""Each fault really changes the bytes its report names, and nothing else outside the quarantine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engines import create_engine, open_engine
from engines.backup import create_backup
from faults import FAULTS, FaultError, find_lock_holder, inject, xor_stream


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and ".quarantine" not in path.relative_to(root).parts
        and path.name != "LOG"
        and not path.name.startswith("LOG.old")
    }


def _fill(data_dir: Path, backend: str, count: int = 300) -> None:
    with create_engine(data_dir, backend=backend, durability="sync") as engine:
        for number in range(count):
            engine.put(f"k{number:05d}".encode(), f"value-{number:05d}-".encode() * 8)
        engine.flush()


def _detected(data_dir: Path) -> bool:
    try:
        with open_engine(data_dir, mode="ro") as engine:
            return not engine.verify().ok
    except Exception:  # noqa: BLE001
        return True


def _assert_flips(before: dict[str, bytes], after: dict[str, bytes], report: object) -> None:
    changes = report.changes  # type: ignore[attr-defined]
    touched = {change.file for change in changes}
    assert set(before) == set(after)
    for name in before:
        if name not in touched:
            assert before[name] == after[name], f"{name} changed but is not in the report"
    for name in touched:
        expected = bytearray(before[name])
        for change in changes:
            if change.file == name:
                assert change.action == "flip"
                old, new = bytes.fromhex(change.before), bytes.fromhex(change.after)
                assert expected[change.offset : change.offset + change.length] == old
                assert all(a != b for a, b in zip(old, new))
                expected[change.offset : change.offset + change.length] = new
        assert bytes(expected) == after[name], f"{name} differs from the report"


@pytest.mark.parametrize(
    ("backend", "kind"),
    [
        ("cow", "page-corrupt"),
        ("cow", "meta-corrupt"),
        ("lsm", "sstable-corrupt"),
        ("rocksdb", "sst-corrupt"),
        ("lsm", "wal-corrupt-tail"),
        ("cow", "wal-corrupt-middle"),
    ],
)
def test_byte_faults_change_exactly_the_reported_bytes(tmp_path: Path, backend: str, kind: str) -> None:
    data_dir = tmp_path / "data"
    _fill(data_dir, backend)
    before = _snapshot(data_dir)
    report = inject(kind, data_dir, seed=3)
    after = _snapshot(data_dir)
    assert report.changes
    _assert_flips(before, after, report)
    if kind not in ("wal-corrupt-tail", "wal-corrupt-middle"):
        assert _detected(data_dir)  # the corruption is real: verify sees it (or the engine refuses to open)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    reports = []
    for name in ("a", "b"):
        _fill(tmp_path / name, "lsm")
        reports.append(inject("wal-corrupt-tail", tmp_path / name, seed=9))
    assert [c.offset for c in reports[0].changes] == [c.offset for c in reports[1].changes]


@pytest.mark.parametrize("backend", ["lsm", "rocksdb"])
def test_manifest_lost_moves_into_quarantine(tmp_path: Path, backend: str) -> None:
    data_dir = tmp_path / "data"
    _fill(data_dir, backend)
    before = _snapshot(data_dir)
    report = inject("manifest-lost", data_dir)
    after = _snapshot(data_dir)
    moved = {change.file for change in report.changes}
    assert moved and all(change.action == "move" for change in report.changes)
    assert set(before) - set(after) == moved
    assert all(before[name] == after[name] for name in after)
    for change in report.changes:
        aside = data_dir / change.detail.removeprefix("moved to ")
        assert aside.is_file() and ".quarantine" in aside.parts
        assert aside.read_bytes() == before[change.file]


@pytest.mark.parametrize("chunk", [None, 64])
def test_ransomware_encrypts_with_a_seeded_xor_and_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    if chunk is not None:  # files larger than a chunk: encrypted piece by piece, same key stream
        import faults as faults

        monkeypatch.setattr(faults, "_XOR_CHUNK", chunk)
    data_dir = tmp_path / "data"
    _fill(data_dir, "lsm")
    before = _snapshot(data_dir)
    report = inject("ransomware", data_dir, seed=5)
    assert {change.file for change in report.changes} == set(before) - {"drconsole.lock"}
    for change in report.changes:
        assert not (data_dir / change.file).exists()
        locked = (data_dir / (change.file + ".locked")).read_bytes()
        stream = xor_stream(report.extra["key_seed"], len(locked))
        assert bytes(a ^ b for a, b in zip(locked, stream)) == before[change.file]


def test_config_broken_keeps_the_original_aside(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _fill(data_dir, "cow")
    before = _snapshot(data_dir)
    inject("config-broken", data_dir)
    after = _snapshot(data_dir)
    assert {name for name in before if before[name] != after.get(name)} == {"drconsole.json"}
    import json

    with pytest.raises(ValueError):
        json.loads(after["drconsole.json"])
    kept = list((data_dir / ".quarantine").rglob("drconsole.json.fault-*"))
    assert kept and kept[0].read_bytes() == before["drconsole.json"]


def test_accidental_deletion_deletes_the_reported_range(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _fill(data_dir, "rocksdb", count=100)
    report = inject("accidental-deletion", data_dir, seed=2)
    deleted = set(report.extra["deleted_keys"])
    assert len(deleted) == 20
    with open_engine(data_dir, mode="ro") as engine:
        keys = {key.decode() for key, _ in engine.scan()}
    assert keys.isdisjoint(deleted) and len(keys) == 80


def test_backup_corrupt_flips_one_byte_of_the_newest_archive(tmp_path: Path) -> None:
    data_dir, repo = tmp_path / "data", tmp_path / "repo"
    _fill(data_dir, "lsm")
    create_backup(repo, data_dir=data_dir)
    before = _snapshot(repo)
    report = inject("backup-corrupt", data_dir, repo=repo, seed=4)
    _assert_flips(before, _snapshot(repo), report)
    assert report.changes[0].file.endswith(".tar.zst") and report.changes[0].length == 1


def test_wrong_backend_changes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _fill(data_dir, "cow")
    before = _snapshot(data_dir)
    with pytest.raises(FaultError):
        inject("sstable-corrupt", data_dir)
    with pytest.raises(FaultError):
        inject("no-such-fault", data_dir)
    assert _snapshot(data_dir) == before


_HOLDER = """
import sys, time
from engines import open_engine
engine = open_engine(sys.argv[1], mode="rw")
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(("kind", "expect"), [("process-kill", -signal.SIGKILL), ("process-hang", None)])
def test_process_faults_signal_the_lock_holder(tmp_path: Path, kind: str, expect: int | None) -> None:
    data_dir = tmp_path / "data"
    _fill(data_dir, "cow", count=10)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        if find_lock_holder(data_dir) != holder.pid:
            pytest.skip("the engine does not keep drconsole.lock open in the holder")
        report = inject(kind, data_dir)
        assert report.extra["pid"] == holder.pid
        if expect is not None:
            assert holder.wait(timeout=10) == expect
        else:
            deadline = time.monotonic() + 5
            state = ""
            while time.monotonic() < deadline:
                state = Path(f"/proc/{holder.pid}/stat").read_text().split()[2]
                if state == "T":
                    break
                time.sleep(0.05)
            assert state == "T"
            os.kill(holder.pid, signal.SIGCONT)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_every_fault_has_a_description() -> None:
    assert all(description for _f, description in FAULTS.values())


def test_the_key_stream_is_the_same_whole_or_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    import faults as faults

    whole = random.Random(7).randbytes(10_001)
    assert xor_stream(7, 10_001) == whole
    monkeypatch.setattr(faults, "_XOR_CHUNK", 64)  # a 512 MB file is encrypted 16 MiB at a time
    assert xor_stream(7, 10_001) == whole
