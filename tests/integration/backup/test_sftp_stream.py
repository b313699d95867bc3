"""An archive streamed to an SFTP repository while it is packed (engines/backup/sftp_stream.py).

Against a real OpenSSH server on loopback, which logs the bytes each connection received: the
archive goes over the link once, during the packing; a link
killed mid-stream (kill -9 of the sshd session) leaves the push to finish the upload, resuming
what is there; a packing that fails mid-stream publishes nothing.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from sshd_support import SshServer

from engines import create_engine, open_engine
from engines.backup import create_backup, restore_backup
from engines.backup.errors import BackupCorruptionError
from engines.backup.progress import ProgressEvent
from engines.backup.store import UPLOAD_DIR
from engines.backup.verify import verify_repository


def _data(path: Path, megabytes: int) -> Path:
    """An LSM data dir of ``megabytes`` MB of incompressible values (the archive is about as big)."""
    with create_engine(path, backend="lsm", durability="async") as engine:
        for n in range(megabytes * 16):
            engine.write_batch([(b"key%07d" % (n * 16 + i), os.urandom(4096)) for i in range(16)])
    return path


def _keys(path: Path) -> dict[bytes, bytes]:
    with open_engine(path, durability="async") as engine:
        return dict(engine.scan())


def _received(sshd: SshServer, since: int) -> int:
    """Bytes the server received over the connections that ended since log offset ``since``."""
    text = sshd.log.read_bytes()[since:].decode(errors="replace")
    return sum(int(found) for found in re.findall(r"Transferred: sent \d+, received (\d+) bytes", text))


def _settled(sshd: SshServer) -> None:
    """Wait (at most 5 s) until no session of the server is left: their log lines are all written."""
    deadline = time.monotonic() + 5
    while sshd.sessions() and time.monotonic() < deadline:
        time.sleep(0.05)


def _published(remote: Path) -> list[Path]:
    return [
        item
        for tier in ("daily", "weekly", "monthly")
        if (remote / tier).is_dir()
        for item in (remote / tier).iterdir()
    ]


def test_the_archive_crosses_the_link_once_while_it_is_packed(tmp_path: Path, sshd: SshServer, ssh_home: Path) -> None:
    source = _data(tmp_path / "data", 12)
    remote = tmp_path / "offsite"
    _settled(sshd)
    since = sshd.log.stat().st_size
    on_server: list[int] = []

    def at_the_end_of_packing(event: ProgressEvent) -> None:
        if event.phase == "pack" and event.finished:  # fsynced locally, not pushed yet
            on_server.extend(p.stat().st_size for p in (remote / UPLOAD_DIR).glob("*.dir/*.tar.zst"))

    result = create_backup(sshd.url(str(remote)), data_dir=source, progress=at_the_end_of_packing)
    _settled(sshd)
    received = _received(sshd, since)
    (folder,) = _published(remote)
    size = (folder / f"{result.backup_id}.tar.zst").stat().st_size
    assert size > 8 << 20
    # Part of it was on the server before the push began (unstreamed, the upload area would be empty):
    # everything but the writes still in flight, which a loaded machine makes many.
    assert on_server and on_server[0] > 0
    # The archive plus the small files and the protocol: once, not twice (packed, then uploaded).
    assert size <= received < size * 1.2
    assert verify_repository(sshd.url(str(remote))).ok
    restore_backup(sshd.url(str(remote)), tmp_path / "restored")
    assert _keys(tmp_path / "restored") == _keys(source)


def test_a_link_killed_mid_stream_is_finished_by_the_upload(tmp_path: Path, sshd: SshServer, ssh_home: Path) -> None:
    source = _data(tmp_path / "data", 24)
    remote = tmp_path / "offsite"
    killed: list[int] = []
    _settled(sshd)
    since = sshd.log.stat().st_size

    def kill_mid_stream(event: ProgressEvent) -> None:
        if killed or event.phase != "pack" or not event.done:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until part of the archive is on the server
            sent = [p.stat().st_size for p in (remote / UPLOAD_DIR).glob("*.dir/*.tar.zst")]
            if sent and sent[0] > 0:
                break
            time.sleep(0.01)
        killed.append(sshd.drop_connections())

    result = create_backup(sshd.url(str(remote)), data_dir=source, progress=kill_mid_stream)
    assert killed and killed[0] > 0
    _settled(sshd)
    (folder,) = _published(remote)
    assert _received(sshd, since) >= (folder / f"{result.backup_id}.tar.zst").stat().st_size
    assert not list((remote / UPLOAD_DIR).glob("*.dir"))  # the temp directory became the backup
    assert verify_repository(sshd.url(str(remote))).ok
    restore_backup(sshd.url(str(remote)), tmp_path / "restored")
    assert _keys(tmp_path / "restored") == _keys(source)


def test_a_packing_that_fails_mid_stream_publishes_nothing(tmp_path: Path, sshd: SshServer, ssh_home: Path) -> None:
    source = _data(tmp_path / "data", 12)
    remote = tmp_path / "offsite"
    victim = sorted((source / "sstables").iterdir())[-1]  # packed after the others (names in order)

    def cut_a_table(event: ProgressEvent) -> None:
        if event.phase == "pack" and event.done and victim.stat().st_size > 4096:
            os.truncate(victim, 4096)  # a table cut under the packer: read shorter than listed

    with pytest.raises(BackupCorruptionError):
        create_backup(sshd.url(str(remote)), data_dir=source, progress=cut_a_table)
    assert _published(remote) == []
    assert not list((remote / UPLOAD_DIR).glob("*.dir/*.tar.zst"))  # the part streamed up was removed
