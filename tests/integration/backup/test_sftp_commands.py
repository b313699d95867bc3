"""The ``backup`` commands an sftp repository needed beyond create/list/verify/restore/prune (those are in
test_sftp_repository.py), against a real OpenSSH server on loopback:

* ``backup list`` shows the recoverable window the archived WAL gives (its segments are listed by
  the store, not pulled), as for a local repository;
* ``verify --quick`` reads no archive and no segment (sizes from the store's listing, encrypted ones
  too) and still finds a truncated archive and a missing segment, named by the repository's URL;
* ``restore --until TIME`` over sftp (point in time by clock, not only by LSN);
* ``schedule``: the units it writes run against the sftp repository;
* ``node serve --archive sftp://...`` ships the WAL off-site (it used to archive into ./sftp:/...).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from backup_support import assert_error, cli, first_put_once_up
from sshd_support import SshServer

from engines import create_engine, open_engine
from engines.backup import iso_utc
from engines.backup.sftp_store import SftpStore
from engines.backup.store import bulk_kind

ROOT = Path(__file__).resolve().parents[3]


def _put(path: Path, rows: range, prefix: bytes = b"key") -> Path:
    """Writes through the engine; closing it archives its WAL into the repository its data dir records."""
    opener = open_engine if path.exists() else create_engine
    kwargs = {} if path.exists() else {"backend": "lsm"}
    with opener(path, durability="sync", **kwargs) as engine:
        for n in rows:
            engine.put(prefix + b"%05d" % n, b"value %d" % n)
    return path


def _keys(path: Path) -> dict[bytes, bytes]:
    with open_engine(path, durability="async") as engine:
        return dict(engine.scan())


def _history(tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[Path, str]:
    """A full backup, then WAL archived off-site by later writes, then an incremental."""
    data = _put(tmp_path / "data", range(200))
    made = cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, *extra, "--json")
    assert made.code == 0, made.err
    _put(data, range(200, 260))
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, "--incremental", *extra).code == 0
    return data, made.json()["backup_id"]


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the sftp store downloads (the real download still runs)."""
    paths: list[str] = []
    real = SftpStore.fetch

    def spy(self: SftpStore, path: str, local: Path) -> None:
        paths.append(path)
        real(self, path, local)

    monkeypatch.setattr(SftpStore, "fetch", spy)
    return paths


def test_list_shows_the_window_and_quick_verify_reads_no_archive(
    tmp_path: Path, sshd: SshServer, ssh_home: Path, capsys: pytest.CaptureFixture[str], fetched: list[str]
) -> None:
    remote = tmp_path / "offsite"
    url = sshd.url(str(remote))
    _history(tmp_path, url, capsys)
    local_copy = tmp_path / "same-as-local"
    subprocess.run(["cp", "-a", str(remote), str(local_copy)], check=True)
    # the window over sftp is the one the same repository shows locally: it reaches the archived WAL
    over_sftp = cli(capsys, "backup", "list", "--repo", url, "--json").json()["window"]
    assert over_sftp == cli(capsys, "backup", "list", "--repo", local_copy, "--json").json()["window"]
    assert over_sftp.startswith("LSN 200..260 ")

    fetched.clear()
    quick = cli(capsys, "backup", "verify", "--repo", url, "--quick", "--json")
    assert quick.code == 0, quick.out
    assert quick.json()["quick"] and quick.json()["bytes_read"] == 0
    assert quick.json()["wal"]["last_lsn"] == 260 and not quick.json()["wal"]["missing"]
    assert fetched and not [path for path in fetched if bulk_kind(path)]  # metadata only, never the bulk

    # A truncated archive and a lost segment on the remote disk: quick sees both by their listing.
    archive = next(remote.glob("monthly/*/*.tar.zst"))
    os.truncate(archive, archive.stat().st_size - 1)
    segment = sorted((remote / "wal-archive").glob("*.wal"))[-1]
    segment.rename(tmp_path / segment.name)
    broken = cli(capsys, "backup", "verify", "--repo", url, "--quick", "--json")
    assert broken.code == 1
    problems = {(problem["kind"], problem["file"]) for problem in broken.json()["problems"]}
    relative = archive.relative_to(remote).as_posix()
    assert ("size", f"{url}/{relative}") in problems  # named where it is, not in a private temp copy
    assert ("missing-segment", f"{url}/wal-archive/{segment.name}") in problems


def test_quick_verify_of_an_encrypted_sftp_repository_checks_sealed_sizes(
    tmp_path: Path, sshd: SshServer, ssh_home: Path, capsys: pytest.CaptureFixture[str], fetched: list[str]
) -> None:
    key = tmp_path / "backup.key"
    key.write_bytes(os.urandom(32))
    remote = tmp_path / "offsite"
    url = sshd.url(str(remote))
    enc = ("--encrypt-key", str(key))
    _history(tmp_path, url, capsys, *enc)
    assert_error(cli(capsys, "backup", "verify", "--repo", url, "--quick"), 2, contains="--encrypt-key")
    fetched.clear()
    quick = cli(capsys, "backup", "verify", "--repo", url, "--quick", *enc, "--json")
    assert quick.code == 0, quick.out
    assert not [path for path in fetched if bulk_kind(path.removesuffix(".enc"))]
    sealed = next(remote.glob("monthly/*/*.tar.zst.enc"))
    with open(sealed, "ab") as handle:
        handle.write(b"\0" * 40)  # longer than its plain size allows: more than one tag's worth
    broken = cli(capsys, "backup", "verify", "--repo", url, "--quick", *enc, "--json")
    assert broken.code == 1 and [p["kind"] for p in broken.json()["problems"]] == ["size"]


def test_point_in_time_by_clock_over_sftp(
    tmp_path: Path, sshd: SshServer, ssh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sshd.url(str(tmp_path / "offsite"))
    data = _put(tmp_path / "data", range(100))
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", url).code == 0
    _put(data, range(100, 150))
    time.sleep(0.05)
    until = iso_utc(time.time_ns())
    time.sleep(0.05)
    _put(data, range(150, 200), prefix=b"late")
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, "--incremental").code == 0
    restored = tmp_path / "restored"
    done = cli(capsys, "backup", "restore", "--repo", url, "--data-dir", restored, "--until", until, "--json")
    assert done.code == 0, done.err
    keys = _keys(restored)
    assert len(keys) == 150 and not any(key.startswith(b"late") for key in keys)


def test_the_scheduled_units_back_up_and_prune_the_sftp_repository(
    tmp_path: Path, sshd: SshServer, ssh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = tmp_path / "offsite"
    url = sshd.url(str(remote), alias=True)
    data = _put(tmp_path / "data", range(50))
    units = tmp_path / "units"
    made = cli(
        capsys, "backup", "schedule", "--data-dir", data, "--repo", url, "--install", "--unit-dir", units, "--json"
    )
    assert made.code == 0, made.err
    (service,) = units.glob("*.service")
    commands = [
        shlex.split(line.split("=", 1)[1]) for line in service.read_text().splitlines() if line.startswith("ExecStart=")
    ]
    assert [command[1:3] for command in commands] == [["backup", "create"], ["backup", "prune"]]
    assert all(url in command for command in commands)
    for command in commands:  # what systemd runs, run here as the service would
        done = subprocess.run(
            [sys.executable, "-m", "console", *command[1:]],
            cwd=ROOT,
            env={**sshd.env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert len(list(remote.glob("*/backup_*/*.tar.zst"))) == 1


def test_node_archive_option_ships_the_wal_to_an_sftp_repository(tmp_path: Path, sshd: SshServer) -> None:
    from integration.served_node import free_port

    from engines.node.client import NodeClient

    remote = tmp_path / "offsite"
    url = sshd.url(str(remote))
    port = free_port()
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    with (tmp_path / "node.log").open("wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "console", "node", "serve", "--engine", "lsm", "--data-dir", str(tmp_path / "data")]
            + ["--port", str(port), "--archive", url, "--archive-timeout", "1"],
            cwd=workdir,
            stdout=log,
            stderr=log,
            env={**sshd.env, "PYTHONPATH": str(ROOT)},
        )
    try:
        with NodeClient(f"http://127.0.0.1:{port}", timeout=30.0) as client:
            first_put_once_up(client, node, tmp_path / "node.log")
            for n in range(20):
                client.put(b"k%02d" % n, b"v")
            assert client.health()["backup"]["repo"] == url
        deadline = time.monotonic() + 30
        while not list((remote / "wal-archive").glob("*.wal")):
            assert time.monotonic() < deadline, "no WAL segment reached the sftp archive"
            time.sleep(0.2)
    finally:
        node.terminate()
        node.wait(timeout=30)
    assert not list(workdir.iterdir())  # nothing archived into a local ./sftp:/... directory
