"""Off-site repositories over SFTP, against a real OpenSSH server on loopback (tests/sshd_support.py).

Every ``backup`` command takes ``--repo sftp://...``; keys, ports and host keys come from the
client's ``~/.ssh`` (HOME points at the test's) or ``--ssh-key``; an unknown host key is refused;
an upload cut by a dropped link resumes where it stopped and is read back before it is renamed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from backup_support import assert_error, cli, first_put_once_up
from sshd_support import SshServer

from engines import create_engine, open_engine
from engines.backup import create_backup
from engines.backup.errors import ArchiveConflictError
from engines.backup.location import parse_location
from engines.backup.sftp_store import SftpStore

DAY = 86_400 * 10**9


def _data(path: Path, rows: int, start: int = 0) -> Path:
    opener = open_engine if path.exists() else create_engine
    kwargs = {} if path.exists() else {"backend": "lsm"}
    with opener(path, durability="async", **kwargs) as engine:
        for n in range(start, start + rows):
            engine.put(b"key%05d" % n, b"value %d" % n)
    return path


def _keys(path: Path) -> dict[bytes, bytes]:
    with open_engine(path, durability="async") as engine:
        return dict(engine.scan())


def _backups(remote: Path) -> set[str]:
    return {
        item.name
        for tier in ("daily", "weekly", "monthly")
        if (remote / tier).is_dir()
        for item in (remote / tier).iterdir()
    }


def test_every_backup_command_works_on_an_sftp_repository(
    tmp_path: Path, sshd: SshServer, ssh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path / "data", 300)
    remote = tmp_path / "offsite"
    url = sshd.url(str(remote))
    full = cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, "--json")
    assert full.code == 0, full.err
    assert full.json()["path"].startswith(url + "/monthly/backup_")
    _data(data, 50, start=300)
    incremental = cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, "--incremental", "--json")
    assert incremental.code == 0 and incremental.json()["type"] == "incremental"
    # The store holds a complete repository, checkable by hand on the repository host.
    backup_id = full.json()["backup_id"]
    folder = remote / "monthly" / backup_id
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{backup_id}.tar.zst", "SHA256SUMS", f"{backup_id}.metadata.json"]
    )
    sums = (folder / "SHA256SUMS").read_text().split()
    assert hashlib.sha256((folder / sums[1]).read_bytes()).hexdigest() == sums[0]
    assert not list((remote / ".tmp" / "upload").iterdir())  # every temp renamed into place
    # The data dir records the URL: later opens archive there.
    recorded = json.loads((data / "drconsole.json").read_text())["archive"]["repo"]
    assert recorded == url

    # list through the ~/.ssh/config alias (host, port, user and key from there)
    listed = cli(capsys, "backup", "list", "--repo", sshd.url(str(remote), alias=True), "--json")
    assert listed.code == 0, listed.err
    assert [b["type"] for b in listed.json()["backups"]] == ["full", "incremental"]
    assert cli(capsys, "backup", "verify", "--repo", url).code == 0
    restored = tmp_path / "restored"
    done = cli(capsys, "backup", "restore", "--repo", url, "--data-dir", restored, "--json")
    assert done.code == 0, done.err
    assert _keys(restored) == _keys(data) and len(_keys(restored)) == 350

    # A damaged byte on the remote disk is found by verify (it reads the bytes back).
    archive = folder / f"{backup_id}.tar.zst"
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    assert cli(capsys, "backup", "verify", "--repo", url).code == 1


def test_prune_removes_old_backups_from_the_store(
    tmp_path: Path, sshd: SshServer, ssh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path / "data", 100)
    remote = tmp_path / "offsite"
    url = sshd.url(str(remote))
    now = create_backup(url, data_dir=data).backup_id  # today: monthly
    base = 1_796_000_000 * 10**9
    ids = [
        create_backup(url, data_dir=_data(data, 10, start=100 + 10 * n), clock_ns=base + n * DAY).backup_id
        for n in range(3)
    ]
    assert all((remote / tier).exists() for tier in ("daily", "monthly"))
    dry = cli(
        capsys,
        "backup",
        "prune",
        "--repo",
        url,
        "--keep-daily",
        "1",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "1",
        "--json",
    )
    assert dry.code == 0 and dry.json()["removed"]
    before = _backups(remote)
    pruned = cli(
        capsys,
        "backup",
        "prune",
        "--repo",
        url,
        "--keep-daily",
        "1",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "1",
        "--yes",
        "--json",
    )
    assert pruned.code == 0, pruned.err
    gone = {item["backup_id"] for item in pruned.json()["removed"]}
    after = _backups(remote)
    assert gone and gone <= set(ids) and now in after
    assert after == before - gone
    assert cli(capsys, "backup", "verify", "--repo", url).code == 0


def test_an_unknown_host_key_is_refused_and_ssh_key_names_the_key(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path / "data", 20)
    bare = tmp_path / "bare-home"
    (bare / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(bare))
    url = sshd.url(str(tmp_path / "offsite"))
    key = ["--ssh-key", str(sshd.client_key)]
    refused = cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, *key)
    assert_error(refused, 3, contains="host key")
    assert not (tmp_path / "offsite").exists()
    # The user accepts the key (known_hosts); without a key of ours the server refuses us...
    shutil.copy(sshd.home / ".ssh" / "known_hosts", bare / ".ssh" / "known_hosts")
    assert_error(cli(capsys, "backup", "create", "--data-dir", data, "--repo", url), 3)
    # ...and with --ssh-key it works.
    made = cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, *key, "--json")
    assert made.code == 0, made.err
    assert cli(capsys, "backup", "list", "--repo", url, *key).code == 0


def test_a_dropped_link_mid_upload_resumes_and_the_file_is_read_back(
    tmp_path: Path, sshd: SshServer, ssh_home: Path
) -> None:
    payload = tmp_path / "big.bin"
    payload.write_bytes(os.urandom(40 * 2**20))
    dropped: list[int] = []

    def cut_once(path: str, done: int, total: int) -> None:
        if not dropped and done >= 16 * 2**20:
            dropped.append(sshd.drop_connections())  # kill -9 the sshd serving us

    store = SftpStore(parse_location(sshd.url(str(tmp_path / "offsite"))), progress=cut_once)
    try:
        store.put(payload, "daily/x/big.bin")
        assert dropped and dropped[0] > 0
        assert store.resumed and store.resumed[0][0] == "daily/x/big.bin" and store.resumed[0][1] >= 16 * 2**20
        assert store.fsync_supported is True
        assert (tmp_path / "offsite" / "daily" / "x" / "big.bin").read_bytes() == payload.read_bytes()
        # Write-once: the same bytes again are a no-op, other bytes are refused.
        store.put(payload, "daily/x/big.bin")
        other = tmp_path / "other.bin"
        other.write_bytes(b"other")
        with pytest.raises(ArchiveConflictError):
            store.put(other, "daily/x/big.bin")
    finally:
        store.close()


def _archived_last_lsn(remote: Path) -> int:
    try:
        manifest = json.loads((remote / "wal-archive" / "manifest.json").read_text())
    except (OSError, ValueError):
        return 0
    return max((segment["last_lsn"] or 0 for segment in manifest["segments"].values()), default=0)


def test_a_node_with_an_sftp_backup_repo_backs_up_and_archives_off_site(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    import time

    from integration.served_node import ROOT, free_port

    from engines.node.client import NodeClient

    remote = tmp_path / "offsite"
    url = sshd.url(str(remote), alias=True)
    port = free_port()
    log = (tmp_path / "node.log").open("wb")
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console",
            "node",
            "serve",
            "--engine",
            "lsm",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            str(port),
            "--backup-repo",
            url,
            "--archive-timeout",
            "1",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=log,
        env={**sshd.env, "PYTHONPATH": str(ROOT)},
    )
    try:
        with NodeClient(f"http://127.0.0.1:{port}", timeout=60.0) as client:
            first_put_once_up(client, node, tmp_path / "node.log")
            backup = client.admin("backup")
            assert str(backup["path"]).startswith(url + "/monthly/"), backup
            for n in range(20):
                client.put(b"after%02d" % n, b"x")
            # The archive timer seals and ships the WAL within --archive-timeout: off-site too.
            deadline = time.monotonic() + 30
            while _archived_last_lsn(remote) < 21:
                assert time.monotonic() < deadline, "the WAL did not reach the off-site archive"
                time.sleep(0.3)
    finally:
        node.terminate()
        node.wait(timeout=30)
        log.close()
    monkeypatch.setenv("HOME", str(sshd.home))
    restored = tmp_path / "restored"
    done = cli(capsys, "backup", "restore", "--repo", url, "--data-dir", restored, "--until-lsn", "21", "--json")
    assert done.code == 0, done.err
    assert _keys(restored)[b"after19"] == b"x" and len(_keys(restored)) == 21


def test_backup_copies_hold_every_backup_and_the_off_site_one_restores_alone(
    tmp_path: Path, sshd: SshServer, ssh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path / "data", 200)
    local, remote = tmp_path / "local-repo", tmp_path / "offsite"
    url = sshd.url(str(remote))
    full = cli(capsys, "backup", "create", "--data-dir", data, "--repo", local, "--copy", url, "--json")
    assert full.code == 0, full.err
    assert full.json()["copies"][0]["ok"] and full.json()["copies"][0]["repo"] == url
    assert json.loads((local / "drconsole-backup.json").read_text())["copies"] == [url]
    # Later runs copy without being told again (the repository records its copies).
    _data(data, 30, start=200)
    incremental = cli(capsys, "backup", "create", "--data-dir", data, "--repo", local, "--incremental", "--json")
    assert incremental.code == 0 and incremental.json()["copies"][0]["files_copied"] > 0
    listed = cli(capsys, "backup", "list", "--repo", local, "--json").json()
    assert listed["copies"] == [{"repo": url, "reachable": True, "backups": 2}]
    assert all(item["locations"] == [str(local), url] for item in listed["backups"])
    assert "COPIES" in cli(capsys, "backup", "list", "--repo", local).out

    # Ransomware takes the host: the data dir and the local repository are gone.
    shutil.rmtree(data)
    shutil.rmtree(local)
    assert cli(capsys, "backup", "verify", "--repo", url).code == 0
    restored = tmp_path / "restored"
    done = cli(capsys, "backup", "restore", "--repo", url, "--data-dir", restored, "--until-lsn", "230")
    assert done.code == 0, done.err
    assert len(_keys(restored)) == 230


def test_an_unreachable_copy_fails_the_backup_run_but_not_the_backup(
    tmp_path: Path, sshd: SshServer, ssh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, local = _data(tmp_path / "data", 20), tmp_path / "repo"
    dead = f"sftp://{sshd.user}@127.0.0.1:1/nowhere"  # nothing listens on port 1
    made = cli(capsys, "backup", "create", "--data-dir", data, "--repo", local, "--copy", dead, "--json")
    assert made.code == 1
    assert made.json()["backup_id"] and made.json()["copies"][0]["ok"] is False
    listed = cli(capsys, "backup", "list", "--repo", local)
    assert listed.code == 0 and f"copy {dead}: UNREACHABLE" in listed.out


def test_a_nested_session_shares_the_outer_working_copy(tmp_path: Path, sshd: SshServer, ssh_home: Path) -> None:
    """Closing an engine inside a backup archives its WAL into the same repository: that inner session
    works on the outer copy, so the outer push keeps what the inner one archived (one manifest)."""
    from engines.backup.archive import WalArchive, archive_into
    from engines.backup.mirror import working_copy
    from engines.backup.repository import Repository

    data = _data(tmp_path / "data", 50)
    remote = tmp_path / "offsite"
    url = sshd.url(str(remote))
    create_backup(url, data_dir=data)
    _data(data, 10, start=50)
    segment = sorted((data / "wal").glob("*.wal"))[-1]
    with working_copy(url) as outer:
        with Repository.open(outer).lock():
            WalArchive(Repository.open(outer)).observe(1, 1)
        assert archive_into(url, segment) is not None
        assert (outer / "wal-archive" / segment.name).exists()  # the inner session wrote into the outer copy
    manifest = json.loads((remote / "wal-archive" / "manifest.json").read_text())
    assert segment.name in manifest["segments"] and (remote / "wal-archive" / segment.name).exists()
    assert (remote / "wal-archive" / "observed.json").exists()
