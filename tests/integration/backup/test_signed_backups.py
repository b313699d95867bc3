"""Signed backups (``--sign-key``, ed25519): a rewritten archive with a recomputed ``SHA256SUMS`` is
caught by ``verify`` and refused by ``restore`` (exit 1), as are unsigned and wrongly signed backups."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from backup_support import assert_error, cli

from engines import create_engine, open_engine


def _data(path: Path, rows: int, start: int = 0) -> Path:
    opener = open_engine if path.exists() else create_engine
    kwargs = {} if path.exists() else {"backend": "lsm"}
    with opener(path, durability="async", **kwargs) as engine:
        for n in range(start, start + rows):
            engine.put(b"key%05d" % n, b"value %d" % n)
    return path


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


def test_a_rewritten_archive_with_recomputed_sums_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = _keygen(tmp_path / "signing")
    sign = ["--sign-key", str(key)]
    repo, data = tmp_path / "repo", _data(tmp_path / "data", 200)
    good = cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, *sign, "--json")
    assert good.code == 0, good.err
    marker = json.loads((repo / "drconsole-backup.json").read_text())
    assert marker["signing"]["algorithm"] == "ed25519"
    _data(data, 20, start=200)
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--incremental", *sign).code == 0
    assert cli(capsys, "backup", "verify", "--repo", repo).code == 0
    # Pinning the key (the public half is enough) works too.
    assert cli(capsys, "backup", "verify", "--repo", repo, "--sign-key", f"{key}.pub").code == 0

    # The attacker: a different archive (another data dir's backup) under the good backup's name,
    # SHA256SUMS and the metadata checksum recomputed so that `sha256sum -c` passes.
    other_repo = tmp_path / "other"
    forged = cli(
        capsys, "backup", "create", "--data-dir", _data(tmp_path / "evil", 5), "--repo", other_repo, "--json"
    ).json()
    folder = repo / good.json()["tier"] / good.json()["backup_id"]
    archive = folder / f"{good.json()['backup_id']}.tar.zst"
    archive.write_bytes((Path(forged["path"]) / f"{forged['backup_id']}.tar.zst").read_bytes())
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(f"{digest}  {archive.name}\n")
    meta_path = folder / f"{good.json()['backup_id']}.metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["checksum"] = f"sha256:{digest}"
    meta["size_bytes"] = archive.stat().st_size
    meta_path.write_text(json.dumps(meta, indent=2))
    subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, check=True, capture_output=True, timeout=30)

    checked = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert checked.code == 1
    problems = checked.json()["problems"]
    assert [p["kind"] for p in problems] == ["signature"] and "bad signature" in problems[0]["detail"]
    restored = tmp_path / "restored"
    refused = cli(capsys, "backup", "restore", "--repo", repo, good.json()["backup_id"], "--data-dir", restored)
    assert_error(refused, 1, contains="signature")
    assert not restored.exists()


def test_unsigned_and_foreign_signed_backups_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, other = _keygen(tmp_path / "signing"), _keygen(tmp_path / "intruder")
    repo, data = tmp_path / "repo", _data(tmp_path / "data", 50)
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--sign-key", str(key)).code == 0
    # Adding an unsigned backup, or one signed by another key, is refused at creation (exit 4)...
    assert_error(cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo), 4, contains="--sign-key")
    assert_error(
        cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--sign-key", str(other)),
        4,
        contains="signing key",
    )
    # ...and one slipped in anyway (its signature file removed by hand) fails verify and restore.
    second = cli(
        capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--sign-key", str(key), "--json"
    ).json()
    folder = repo / second["tier"] / second["backup_id"]
    (folder / f"{second['backup_id']}.signature.json").unlink()
    verdict = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert verdict.code == 1 and "unsigned" in verdict.json()["problems"][0]["detail"]
    assert_error(
        cli(capsys, "backup", "restore", "--repo", repo, second["backup_id"], "--data-dir", tmp_path / "r"),
        1,
        contains="unsigned",
    )
    # Swapping the marker's key for the intruder's is caught by a verifier that pins the real one.
    marker_path = repo / "drconsole-backup.json"
    marker = json.loads(marker_path.read_text())
    marker["signing"]["public_key"] = "00" * 32
    marker_path.write_text(json.dumps(marker))
    assert cli(capsys, "backup", "verify", "--repo", repo, "--sign-key", f"{key}.pub").code == 1
