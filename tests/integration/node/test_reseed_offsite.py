"""A new node on another host is rebuilt from the off-site repository alone: an empty standby with
``--backup-repo sftp://...`` (a real sshd on loopback) reseeds from the newest full backup there,
then streams the rest from the primary."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from integration.node.node_support import wait_until
from sshd_support import SshServer, start_sshd

from engines import open_engine
from engines.node.client import NodeClient


@pytest.fixture
def sshd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SshServer]:
    server = start_sshd(tmp_path / "sshd")
    monkeypatch.setenv("HOME", str(server.home))  # the nodes run in this process: they read this ~/.ssh
    try:
        yield server
    finally:
        server.stop()


def test_an_empty_standby_reseeds_from_the_off_site_repository(node_thread, sshd: SshServer, tmp_path: Path) -> None:
    url = sshd.url(str(tmp_path / "offsite"))
    primary = node_thread("primary", backup_repo=url)
    with NodeClient(primary.url) as client:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: client.put(b"k%04d" % i, b"v%d" % i), range(300)))
        backup = client.admin("backup")
        assert str(backup["path"]).startswith(url + "/")
        client.put(b"after", b"backup")
        last = client.health()["last_lsn"]
    assert (tmp_path / "offsite" / backup["tier"] / backup["backup_id"]).is_dir()
    fresh = node_thread("fresh", follow=primary.url, backup_repo=url)
    wait_until(lambda: httpx.get(f"{fresh.url}/replication").json()["applied_lsn"] >= last, timeout=60)
    reseed = httpx.get(f"{fresh.url}/replication").json()["reseed"]
    assert reseed["state"] == "reseeded" and reseed["backup_id"] == backup["backup_id"], reseed
    for server in (fresh, primary):
        server.stop()
    engine = open_engine(tmp_path / "fresh", "ro")
    try:
        keys = {key: value for key, value in engine.scan() if not key.startswith(b"__drconsole__/")}
    finally:
        engine.close()
    assert len(keys) == 301 and keys[b"after"] == b"backup"
