"""The host-loss drill: a node's whole host is lost; a new node is built on another host from the off-site copy alone.

Three hosts, each a network namespace of a partition lab (``drills.netlab``) on one switch:

* ``old-host`` runs the primary (``node serve``, sync durability) with its backup repository on
  its own disk (``--archive``) and an off-site copy (``--backup-copy sftp://...``): the archive
  timer seals and ships the WAL every ``ARCHIVE_TIMEOUT`` seconds to both;
* ``offsite`` runs Debian's sshd (``drills.sshd``) holding the off-site copy;
* ``new-host`` is the replacement: empty.

The load writes through the node API from the drill's own side of the network, ledgering each
acknowledged write (outside every host). A full backup is taken part-way through the load. The
fault (``host-loss``, ``faults.cluster``) kills the node, pulls its host's cable and
takes its disks away: the data dir and the local repository move aside where nothing looks (kept,
not deleted). The response is what a responder does on the replacement: the ``host-loss``
playbook, run as the CLI inside ``new-host``'s namespace with the off-site URL, verifies the
off-site backup, restores it and replays the archived WAL, verifies, and starts the new node on
``new-host``'s address. Everything it reads crosses the lab's network over SFTP; the keys and the
host key come from ``~/.ssh`` (``HOME`` is the drill's client home).

Network namespaces separate networks, not disks: the hosts share this machine's file system. The
lost disks are moved away by the fault, and the new node's data comes only through sshd.

RTO: the fault to the first write and read the new node serves, asked from the drill's side.
RPO: acknowledged writes the new node does not return; bounded by the archive timeout (what the
timer had not shipped yet), plus the time to seal and upload a segment.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drills import DrillResult, Ledger, Scenario, met_targets, rpo_of, set_rpo
from drills.cluster import ClusterNode, lost_on
from drills.netlab import PartitionLab
from drills.node import ROOT, NodeLoad, free_port, node_serves
from drills.sshd import SshServer, start_sshd
from engines.node.client import NodeClient
from faults import inject
from playbooks.actions.node_process import serving_process, stop_process
from playbooks.netns import netns_name

__all__ = ["ARCHIVE_TIMEOUT", "HOSTS", "host_loss_drill"]

Log = Callable[[str], None] | None

ARCHIVE_TIMEOUT = 1.0  # the old node's --archive-timeout: the RPO's bound
HOSTS = ("old-host", "new-host", "offsite")
LOAD_AFTER_BACKUP_SECONDS = 3.0  # a few archive cycles between the backup and the fault: the WAL carries them
PLAYBOOK_TIMEOUT = 300.0


def host_loss_drill(
    scenario: Scenario, engine: str, sandbox: Path, result: DrillResult, *, writes: int, seed: int, log: Log
) -> None:
    """Run the drill in ``sandbox``; fills ``result``. ``NetnsUnavailable``: the lab cannot be built here;
    ``SshdUnavailable``: OpenSSH's server is not installed (the drill's error says which)."""
    with PartitionLab.create(list(HOSTS)) as lab:
        server = start_sshd(
            sandbox / "offsite-host" / "sshd", listen=lab.address("offsite"), prefix=lab.prefix("offsite")
        )
        try:
            _run(scenario, engine, sandbox, result, lab, server, writes=writes, seed=seed, log=log)
        finally:
            server.stop()


def _run(
    scenario: Scenario,
    engine: str,
    sandbox: Path,
    result: DrillResult,
    lab: PartitionLab,
    server: SshServer,
    *,
    writes: int,
    seed: int,
    log: Log,
) -> None:
    old_data, local_repo = sandbox / "old-host" / "data", sandbox / "old-host" / "backup"
    offsite = server.url(str(sandbox / "offsite-host" / "repo"))
    new_data = sandbox / "new-host" / "data"
    ledger_path = sandbox / "ledger" / "acked.jsonl"
    node = ClusterNode(
        "old-host",
        old_data,
        engine,
        sandbox / "old-host.log",
        lab=lab,
        extra=("--archive", str(local_repo), "--backup-copy", offsite, "--archive-timeout", f"{ARCHIVE_TIMEOUT:g}"),
        env=server.env,
    )
    ledger = Ledger(ledger_path)
    load: NodeLoad | None = None
    try:
        node.start()
        load = NodeLoad(node.url, ledger).start()
        load.wait_for(writes // 2)
        with NodeClient(node.url, timeout=120.0) as client:
            backup = client.admin("backup")
        if log:
            log(f"full backup {backup.get('backup_id')} in {local_repo}, copied to {offsite}")
        shipped_from = time.monotonic()
        load.wait_for(load.acked + writes - writes // 2)
        time.sleep(max(0.0, LOAD_AFTER_BACKUP_SECONDS - (time.monotonic() - shipped_from)))
        assert node.process is not None
        fault = inject("host-loss", old_data, seed=seed, pid=node.process.pid, repo=local_repo)
        fault_at, fault_wall = time.monotonic(), time.time()
        load.stop()  # its node is gone: nothing more can be acknowledged
        ledger.close()
        result.fault = {
            **fault.to_json(),
            "acked_at_fault": load.acked,
            "backup_id": backup.get("backup_id"),
            "offsite": offsite,
            "archive_timeout_seconds": ARCHIVE_TIMEOUT,
        }
        if log:
            log(f"fault: {fault.summary} ({load.acked} writes acknowledged)")
        run, url = _rebuild(lab, server, new_data, offsite, sandbox / "new-host" / "state")
        result.playbooks = [run]
        if log:
            log(f"  host-loss on new-host: {run['status']} {run['message']}")
        ok, why = node_serves(url) if run["status"] == "succeeded" else (False, str(run["message"]))
        result.rto_seconds = round(time.monotonic() - fault_at, 3) if ok else None
        serving = serving_process(new_data)
        result.fault["new_node"] = {
            "url": url,
            "pid": serving.pid if serving else None,
            "netns": netns_name(serving.pid) if serving else None,
            "host_netns": lab.netns("new-host"),
            "archive": serving.option("--archive") if serving else None,
        }
        result.recovered, result.health = ok, why
        expected = Ledger.expected(ledger_path)
        lost = lost_on(url, expected) if ok else list(expected.values())
        set_rpo(result, rpo_of(lost, Ledger.count(ledger_path), fault_wall))
        result.passed = met_targets(scenario, ok, result.rto_seconds, result.rpo_seconds, len(lost))
    finally:
        if load is not None:
            load.stop()
        with contextlib.suppress(Exception):
            ledger.close()
        node.stop()
        if new_data.exists():
            serving = serving_process(new_data)
            if serving is not None:
                stop_process(serving.pid, grace_seconds=10)


def _rebuild(
    lab: PartitionLab, server: SshServer, data_dir: Path, offsite: str, state: Path
) -> tuple[dict[str, Any], str]:
    """``drconsole playbook run host-loss`` inside the new host's namespace: its run record, and the new node's URL."""
    port, address = free_port(), lab.address("new-host")
    command = [
        *lab.prefix("new-host"),
        sys.executable,
        "-m",
        "console.cli",
        "playbook",
        "run",
        "host-loss",
        "--data-dir",
        str(data_dir),
        "--param",
        f"repo={offsite}",
        "--param",
        f"port={port}",
        "--param",
        f"host={address}",
        "--yes",
        "--json",
    ]
    environ = {**server.env, "PYTHONPATH": str(ROOT), "DRCONSOLE_STATE_DIR": str(state)}
    done = subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT, check=False
    )
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = {}
    steps = [
        {"step": step.get("id"), "status": step.get("status"), "summary": step.get("summary")}
        for step in answer.get("steps", [])
        if isinstance(step, dict)
    ]
    last = steps[-1]["summary"] if steps else None
    run = {
        "playbook": "host-loss",
        "node": "new-host",
        "status": answer.get("status", "error"),
        "message": answer.get("message") or last or done.stderr.strip()[-500:] or f"exit {done.returncode}",
        "exit_code": done.returncode,
        "steps": steps,
    }
    return run, f"http://{address}:{port}"
