"""Encryption at rest (``--encrypt-key``): archives and archived WAL stored AES-256-GCM encrypted,
on an sftp repository (real sshd) and on a local one; restore and verify need the key and say so;
the README's standalone decrypter opens an archive without drconsole."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from backup_support import assert_error, cli
from sshd_support import SshServer

from engines import create_engine, open_engine
from engines.backup.cipher import MAGIC

ROOT = Path(__file__).resolve().parents[3]


def _data(path: Path, rows: int, start: int = 0) -> Path:
    opener = open_engine if path.exists() else create_engine
    kwargs = {} if path.exists() else {"backend": "lsm"}
    with opener(path, durability="async", **kwargs) as engine:
        for n in range(start, start + rows):
            engine.put(b"secret%05d" % n, b"confidential value %d" % n)
    return path


def _keys(path: Path) -> dict[bytes, bytes]:
    with open_engine(path, durability="async") as engine:
        return dict(engine.scan())


def _key(path: Path) -> Path:
    path.write_bytes(os.urandom(32))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("where", ["sftp", "local"])
def test_encrypted_backups_round_trip_and_need_their_key(
    where: str, tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(sshd.home))
    store = tmp_path / "repo"
    repo = sshd.url(str(store)) if where == "sftp" else str(store)
    key, wrong = _key(tmp_path / "backup.key"), _key(tmp_path / "other.key")
    enc = ["--encrypt-key", str(key)]
    data = _data(tmp_path / "data", 400)
    full = cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, *enc, "--json")
    assert full.code == 0, full.err
    _data(data, 40, start=400)
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--incremental", *enc).code == 0
    # At rest: only ciphertext for the archive and the WAL; the key's id (not the key) in the marker.
    backup_id = full.json()["backup_id"]
    sealed = store / "monthly" / backup_id / f"{backup_id}.tar.zst.enc"
    assert sealed.read_bytes().startswith(MAGIC)
    assert not (store / "monthly" / backup_id / f"{backup_id}.tar.zst").exists()
    segments = list((store / "wal-archive").glob("*.wal.enc"))
    assert segments and not list((store / "wal-archive").glob("*.wal"))
    for path in [sealed, *segments]:
        assert b"confidential" not in path.read_bytes() and b"secret0" not in path.read_bytes()
    marker = json.loads((store / "drconsole-backup.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{16}", marker["encryption"]["key_id"])
    assert key.read_bytes().hex() not in (store / "drconsole-backup.json").read_text()

    # Listing reads only metadata: no key needed. Verify and restore need it, and say so.
    assert cli(capsys, "backup", "list", "--repo", repo).code == 0
    assert_error(cli(capsys, "backup", "verify", "--repo", repo), 2, contains="encrypted")
    restored = tmp_path / "restored"
    assert_error(
        cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", restored, "--until-lsn", "440"),
        2,
        contains="--encrypt-key",
    )
    assert_error(
        cli(
            capsys,
            "backup",
            "restore",
            "--repo",
            repo,
            "--data-dir",
            restored,
            "--until-lsn",
            "440",
            "--encrypt-key",
            str(wrong),
        ),
        2,
        contains="encrypted with key",
    )
    # ...nor may a backup without the key add plain files to an encrypted repository.
    assert_error(cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo), 2, contains="encrypted")
    assert not restored.exists()
    assert cli(capsys, "backup", "verify", "--repo", repo, *enc).code == 0
    done = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", restored, "--until-lsn", "440", *enc)
    assert done.code == 0, done.err
    assert _keys(restored) == _keys(data) and len(_keys(restored)) == 440

    # One flipped bit in the ciphertext: the chunk fails authentication, verify exits 1.
    raw = bytearray(sealed.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    sealed.write_bytes(bytes(raw))
    assert cli(capsys, "backup", "verify", "--repo", repo, *enc).code == 1


def test_the_readme_decrypter_opens_an_archive_without_drconsole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(# drconsole-decrypt.py.*?)```", readme, re.S)
    assert snippet, "README.md has no drconsole-decrypt.py snippet"
    script = tmp_path / "drconsole-decrypt.py"
    script.write_text(snippet.group(1))
    key, repo = _key(tmp_path / "k"), tmp_path / "repo"
    full = cli(
        capsys,
        "backup",
        "create",
        "--data-dir",
        _data(tmp_path / "data", 300),
        "--repo",
        repo,
        "--encrypt-key",
        str(key),
        "--json",
    ).json()
    folder = repo / full["tier"] / full["backup_id"]
    archive = folder / f"{full['backup_id']}.tar.zst"
    # Only the standard library and `cryptography`, run by a bare python3 (no drconsole on the path).
    subprocess.run(
        [sys.executable, "-I", str(script), str(key), f"{archive}.enc", str(archive)],
        check=True,
        cwd=tmp_path,
        timeout=60,
    )
    subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, check=True, timeout=60, capture_output=True)
    listing = subprocess.run(
        ["tar", "-I", "zstd", "-tf", str(archive)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    assert "drconsole.json" in listing
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == full["checksum"].split(":", 1)[1]
