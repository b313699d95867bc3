"""An append-only off-site account (deploy/sftp/drconsole-backup.conf's ``internal-sftp -P ...``, on a
real sshd): it refuses deletes and renames, and drconsole's create, list, verify and restore still
work through it (write-once names, versioned manifests); prune through it is refused, nothing lost."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import asyncssh
import pytest
from backup_support import assert_error, cli
from sshd_support import SshServer, start_sshd

from engines import create_engine, open_engine

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "deploy" / "sftp" / "drconsole-backup.conf"


def _shipped_sftp_options() -> str:
    match = re.search(r"^\s*ForceCommand internal-sftp (.+)$", SHIPPED.read_text(), re.M)
    assert match, "deploy/sftp/drconsole-backup.conf has no ForceCommand internal-sftp line"
    return match.group(1).strip()


def _data(path: Path, rows: int, start: int = 0) -> Path:
    opener = open_engine if path.exists() else create_engine
    kwargs = {} if path.exists() else {"backend": "lsm"}
    with opener(path, durability="async", **kwargs) as engine:
        for n in range(start, start + rows):
            engine.put(b"key%05d" % n, b"value %d" % n)
    return path


async def _attempts(server: SshServer, repo: Path, victim: Path) -> list[str]:
    """What the account refuses: each request OpenSSH's -P list names, tried for real."""
    refused = []
    async with asyncssh.connect(
        "127.0.0.1",
        port=server.port,
        username=server.user,
        client_keys=[str(server.client_key)],
        known_hosts=str(server.home / ".ssh" / "known_hosts"),
    ) as connection:
        async with connection.start_sftp_client() as sftp:
            for name, attempt in (
                ("remove", sftp.remove(str(victim))),
                ("rename", sftp.rename(str(victim), str(victim) + ".moved")),
                ("posix-rename", sftp.posix_rename(str(victim), str(victim) + ".moved")),
                ("rmdir", sftp.rmdir(str(victim.parent))),
                ("setstat", sftp.chmod(str(victim), 0o666)),
            ):
                try:
                    await attempt
                except asyncssh.SFTPError:
                    refused.append(name)
    return refused


def test_the_append_only_account_refuses_deletes_and_drconsole_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_sshd(tmp_path / "sshd", sftp_options=_shipped_sftp_options())
    try:
        monkeypatch.setenv("HOME", str(server.home))
        store = tmp_path / "vault"
        url = server.url(str(store))
        data = _data(tmp_path / "data", 300)
        full = cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, "--json")
        assert full.code == 0, full.err
        for round_ in range(2):
            _data(data, 30, start=300 + 30 * round_)
            step = cli(capsys, "backup", "create", "--data-dir", data, "--repo", url, "--incremental", "--json")
            assert step.code == 0, step.err
        # Written once each: the rewritten manifest went to new versions, nothing was renamed.
        assert list((store / "wal-archive").glob("manifest.json.v0000*"))
        assert not list((store / ".tmp" / "upload").glob("*.dir"))

        folder = store / full.json()["tier"] / full.json()["backup_id"]
        victim = folder / f"{full.json()['backup_id']}.tar.zst"
        before = victim.read_bytes()
        refused = asyncio.run(_attempts(server, store, victim))
        assert refused == ["remove", "rename", "posix-rename", "rmdir", "setstat"]
        assert victim.read_bytes() == before

        listed = cli(capsys, "backup", "list", "--repo", url, "--json")
        assert [b["type"] for b in listed.json()["backups"]] == ["full", "incremental", "incremental"]
        assert cli(capsys, "backup", "verify", "--repo", url).code == 0
        restored = tmp_path / "restored"
        done = cli(capsys, "backup", "restore", "--repo", url, "--data-dir", restored, "--until-lsn", "360")
        assert done.code == 0, done.err
        with open_engine(restored, durability="async") as engine:
            assert len(dict(engine.scan())) == 360

        # prune through the account: refused, one line, nothing removed.
        for _ in range(2):
            assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", url).code == 0
        inventory = sorted(str(p) for p in store.rglob("*") if ".tmp" not in p.parts)
        error = assert_error(
            cli(
                capsys,
                "backup",
                "prune",
                "--repo",
                url,
                "--keep-daily",
                "0",
                "--keep-weekly",
                "0",
                "--keep-monthly",
                "0",
                "--yes",
            ),
            3,
        )
        assert "permission denied" in error
        assert sorted(str(p) for p in store.rglob("*") if ".tmp" not in p.parts) == inventory
    finally:
        server.stop()
    # On the repository host, the same directory is an ordinary repository (newest versions win).
    assert cli(capsys, "backup", "verify", "--repo", store).code == 0
    assert len(cli(capsys, "backup", "list", "--repo", store, "--json").json()["backups"]) == 5
    manifest = json.loads(max((store / "wal-archive").glob("manifest.json.v*")).read_text())
    assert max(segment["last_lsn"] for segment in manifest["segments"].values()) == 360
