"""Backup publish and restore under power cuts.

A backup acknowledged (``create_backup`` returned) is listed, verifies and restores; one cut
short never shows as a half backup. A restore acknowledged opens with every key; one cut short
leaves the repository intact and a second restore succeeds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from crashkit import Run, explore

from engines.backup import RetentionPolicy, create_backup, prune_repository, restore_backup, verify_repository
from engines.backup.archive import WalArchive
from engines.backup.checksums import SUMS_NAME, parse_sums, sha256_file
from engines.backup.repository import Repository
from engines.fsutil import QUARANTINE_DIR
from engines.marker import read_marker
from engines.registry import create_engine, open_engine

KEYS = {b"key%03d" % number: b"value%03d" % number * 20 for number in range(60)}


def _source(root: Path) -> None:
    with create_engine(root / "data", "lsm", durability="sync", backend_options={"memtable_bytes": 8192}) as engine:
        for key, value in KEYS.items():
            engine.put(key, value)


def _assert_restores(repo: Path, target: Path) -> None:
    restore_backup(repo, target)
    _assert_holds_every_key(target)


def _assert_holds_every_key(data_dir: Path, more: dict[bytes, bytes] | None = None) -> None:
    with open_engine(data_dir) as engine:
        wrong = [key for key, value in {**KEYS, **(more or {})}.items() if engine.get(key) != value]
        assert not wrong, f"{len(wrong)} keys wrong in {data_dir.name}, first {wrong[0]!r}"
        report = engine.verify()
        assert report.ok, f"verify of {data_dir.name}: {report.problems[:3]}"


def _backup(run: Run) -> None:
    result = create_backup(run.root / "repo", data_dir=run.root / "data")
    run.ack(result.backup_id)


def _check_backup(run: Run) -> None:
    repo = run.root / "repo"
    _assert_holds_every_key(run.root / "data")  # taking a backup never harms the source
    if not run.acked:
        if not Repository(repo).is_repository():
            return
        # A repository the cut left behind verifies: no half-published backup is listed.
        result = verify_repository(str(repo))
        assert result.ok, f"repository after an unacknowledged backup: {result.problems[:3]}"
        return
    result = verify_repository(str(repo))
    assert result.ok, f"repository after an acknowledged backup: {result.problems[:3]}"
    claim = Repository.open(repo).marker()
    assert claim.get("node_name") == "data", f"the repository forgot which node it belongs to: {claim}"
    assert [entry.backup_id for entry in Repository.open(repo).backups()] == run.acked
    _assert_restores(repo, run.root / "restored")


def _setup_restore(root: Path) -> None:
    _source(root)
    create_backup(root / "repo", data_dir=root / "data")


def _restore(run: Run) -> None:
    result = restore_backup(run.root / "repo", run.root / "target")
    run.ack(result.backup_id)


def _check_restore(run: Run) -> None:
    repo = run.root / "repo"
    assert verify_repository(str(repo)).ok, "the repository was harmed by a restore"
    if run.acked:
        _assert_holds_every_key(run.root / "target")
    else:
        # What the cut left of the target is refused or replaced, never trusted: restore again.
        restore_backup(repo, run.root / "target", replace=True)
        _assert_holds_every_key(run.root / "target")


OLD = {b"old%03d" % number: b"before the restore %03d" % number for number in range(30)}


def _setup_restore_over(root: Path) -> None:
    _setup_restore(root)
    with create_engine(root / "target", "lsm", durability="sync", node_name="data") as engine:  # the same node, later
        engine.write_batch(list(OLD.items()))


def _restore_over(run: Run) -> None:
    result = restore_backup(run.root / "repo", run.root / "target", replace=True)
    if run.ack(result.backup_id):
        run.sent.append(result.quarantine)  # where the restore said the old data dir went


def _holds(data_dir: Path, expected: dict[bytes, bytes]) -> bool:
    try:
        with open_engine(data_dir, mode="ro") as engine:
            return dict(engine.scan()) == expected
    except Exception:  # noqa: BLE001 - a candidate that does not open does not hold it
        return False


def _check_restore_over(run: Run) -> None:
    target, quarantine = run.root / "target", run.root / QUARANTINE_DIR
    assert verify_repository(str(run.root / "repo")).ok, "the repository was harmed by a restore"

    # The data dir a restore replaces is user data: after any cut it is whole, in place, in quarantine,
    # or under the staging name the swap gave it (the next restore quarantines an unmarked one).
    def candidates() -> list[Path]:
        return [target, *sorted(quarantine.glob("pre-restore-*")), *sorted(run.root.glob(".target.restore-*"))]

    assert any(_holds(path, OLD) for path in candidates()), f"the replaced data dir is lost: {candidates()}"
    if run.acked:
        assert run.sent[0] is not None and _holds(run.sent[0], OLD), (
            f"the old data dir is not where reported: {run.sent}"
        )
    if not run.acked:
        restore_backup(run.root / "repo", target, replace=True)
        assert any(_holds(path, OLD) for path in quarantine.glob("pre-restore-*")), "the rerun lost the old data dir"
    _assert_holds_every_key(target)


EXTRA = {b"extra%03d" % number: b"more%03d" % number * 20 for number in range(40)}


def _live_backups(run: Run) -> None:
    """A full backup of an open engine (a checkpoint), more writes, an incremental (archived WAL)."""
    with open_engine(run.root / "data") as engine:
        create_backup(run.root / "repo", engine=engine)
        run.ack("full")
        for key, value in EXTRA.items():
            engine.put(key, value)
            run.ack(key)
        engine.archive_now(seal=True)
        create_backup(run.root / "repo", engine=engine, incremental=True)
        run.ack("incremental")


def _assert_archive_sums_whole(repo: Path) -> None:
    """The archive's SHA256SUMS as the cut left it: every line checks (``sha256sum -c`` passes) and it
    lists every segment of the manifest but the newest (a cut between the two writes)."""
    archive = WalArchive(Repository.open(repo))
    path = archive.path / SUMS_NAME
    sums = dict(parse_sums(path.read_text(encoding="utf-8"))) if path.exists() else {}
    for name, digest in sums.items():
        assert (archive.path / name).is_file(), f"archive SHA256SUMS lists {name}, which is not there"
        assert sha256_file(archive.path / name) == digest, f"archive SHA256SUMS: {name} FAILED"
    listed = archive.manifest()
    missing = set(listed) - set(sums) - {max(listed, default="")}
    assert not missing, (
        f"archive SHA256SUMS ({path.stat().st_size if path.exists() else 0} bytes) misses {sorted(missing)}"
    )


def _check_live_backups(run: Run) -> None:
    repo = run.root / "repo"
    if "full" in run.acked:
        # First, as the cut left it: opening the data dir below archives on close and rewrites the sums.
        _assert_archive_sums_whole(repo)
    acked_keys = {key: EXTRA[key] for key in run.acked if isinstance(key, bytes)}
    _assert_holds_every_key(run.root / "data", acked_keys)
    if "full" not in run.acked:
        return
    # The data dir must remember its repository (archive before recycle) once a backup is acknowledged.
    marker = read_marker(run.root / "data")
    assert marker is not None and marker.archive is not None, "the data dir forgot its backup repository"
    result = verify_repository(str(repo))
    assert result.ok, f"repository after acknowledged backups {run.acked}: {result.problems[:3]}"
    # The archive's SHA256SUMS (what a by-hand `sha256sum -c` trusts) matches its manifest.
    archive = WalArchive(Repository.open(repo))
    sums = dict(parse_sums((archive.path / SUMS_NAME).read_text(encoding="utf-8")))
    listed = archive.manifest()
    assert set(sums) == set(listed), f"archive SHA256SUMS lists {sorted(sums)}, manifest {sorted(listed)}"
    assert all(sha256_file(archive.path / name) == digest for name, digest in sums.items())
    restore_backup(repo, run.root / "restored")
    _assert_holds_every_key(run.root / "restored", EXTRA if "incremental" in run.acked else {})


DAY_NS = 86_400 * 10**9


# Monday to Wednesday of one ISO week, mid-month: the first backup is the repository's monthly
# one and the next two are daily, so a prune to one daily keeps the Wednesday alone. Days taken
# back from today put the last backup in weekly/ on a Monday (or in monthly/ on the 1st), where
# the newest full backup is kept besides the newest daily: two backups, whatever the prune did.
WEDNESDAY_NS = int(datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp()) * 10**9


def _three_days_of_backups(root: Path) -> None:
    _source(root)
    for days_ago in (2, 1, 0):
        with open_engine(root / "data") as engine:
            engine.put(b"day%d" % days_ago, b"x" * 5000)
            create_backup(root / "repo", engine=engine, clock_ns=WEDNESDAY_NS - days_ago * DAY_NS)


def _prune(run: Run) -> None:
    prune_repository(run.root / "repo", RetentionPolicy(daily=1, weekly=0, monthly=0), confirm=True)
    run.ack("pruned")


def _check_prune(run: Run) -> None:
    repo = run.root / "repo"
    result = verify_repository(str(repo))
    assert result.ok, f"repository after a prune cut at this point: {result.problems[:3]}"
    kept = Repository.open(repo).backups()
    if run.acked:
        assert len(kept) == 1, f"{len(kept)} backups listed after an acknowledged prune to one"
    _assert_restores(repo, run.root / "restored")


@pytest.mark.parametrize("limit", [6, pytest.param(300, marks=pytest.mark.slow)])
def test_prune_survives_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _prune, _check_prune, limit=limit, setup=_three_days_of_backups) >= 3


@pytest.mark.parametrize("limit", [6, pytest.param(300, marks=pytest.mark.slow)])
def test_live_and_incremental_backups_survive_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _live_backups, _check_live_backups, limit=limit, setup=_source) >= 3


@pytest.mark.parametrize("limit", [6, pytest.param(300, marks=pytest.mark.slow)])
def test_backup_publish_survives_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _backup, _check_backup, limit=limit, setup=_source) >= 3


@pytest.mark.parametrize("limit", [6, pytest.param(300, marks=pytest.mark.slow)])
def test_restore_over_a_data_dir_keeps_it_through_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _restore_over, _check_restore_over, limit=limit, setup=_setup_restore_over) >= 3


@pytest.mark.parametrize("limit", [6, pytest.param(300, marks=pytest.mark.slow)])
def test_restore_survives_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _restore, _check_restore, limit=limit, setup=_setup_restore) >= 3
