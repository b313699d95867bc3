"""Probes on real data dirs with real damage: each answers with evidence that says why."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from playbook_support import corrupt_rocksdb_table, fill, flip_byte, tree_state
from support import crash_copy

from engines import create_engine, open_engine
from faults import inject
from fleet import FleetSnapshot, Health, NodeSnapshot, Replication
from playbooks.probes import PROBES, ProbeContext


def ask(name: str, **context: object) -> tuple[bool | None, str]:
    answer = PROBES[name](ProbeContext(**context))  # type: ignore[arg-type]
    return answer.answer, answer.evidence


def test_corrupt_rocksdb_table_is_detected_with_the_file_named(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    table = corrupt_rocksdb_table(data)
    before = tree_state(data)
    answer, evidence = ask("engine.verify_quick", data_dir=data)
    assert answer is True
    assert f"rocksdb/{table.name}" in evidence and "checksum" in evidence
    assert ask("wal.damage_only", data_dir=data)[0] is False
    assert tree_state(data) == before  # probes only read


def test_clean_dir_answers_no_with_what_was_checked(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=200)
    answer, evidence = ask("engine.verify_quick", data_dir=data)
    assert answer is False and "verify found no problem" in evidence and "keys" in evidence
    assert ask("node.opens", data_dir=data)[0] is True
    assert ask("node.running", data_dir=data)[0] is False
    assert ask("data.files_present", data_dir=data)[0] is True
    assert ask("config.broken", data_dir=data)[0] is False
    assert ask("process.crashed", data_dir=data)[0] is False


def test_disk_and_memory_evidence_name_usage_and_threshold(tmp_path: Path) -> None:
    answer, evidence = ask("disk.full", data_dir=tmp_path, disk_threshold=0.0)
    assert answer is True
    assert "% used on /" in evidence and "threshold 0 %" in evidence
    answer, evidence = ask("disk.full", data_dir=tmp_path, disk_threshold=1.0)
    assert answer is False and "threshold 100 %" in evidence
    answer, evidence = ask("memory.exhausted", memory_threshold=0.0)
    assert answer is True and evidence.startswith("memory ") and "threshold 0 %" in evidence


def test_a_running_process_holds_the_data_dir(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    with open_engine(data):
        assert ask("node.running", data_dir=data)[0] is True
        answer, evidence = ask("node.opens", data_dir=data)
        assert answer is True and "running process" in evidence
        assert ask("process.crashed", data_dir=data)[0] is False


def test_a_killed_writer_leaves_crash_evidence(tmp_path: Path) -> None:
    data = tmp_path / "db"
    engine = create_engine(data, backend="rocksdb")
    engine.write_batch([(b"k%04d" % i, b"v") for i in range(50)])
    engine._wal.flush()  # type: ignore[union-attr]
    crashed = crash_copy(data, tmp_path / "crashed")  # as a SIGKILL leaves it: WAL ahead of the store
    engine.close()
    answer, evidence = ask("process.crashed", data_dir=crashed)
    assert answer is True and "without a clean close" in evidence


def test_damaged_marker_and_missing_files(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    (data / "drconsole.json").write_text("{not json", encoding="utf-8")
    answer, evidence = ask("config.broken", data_dir=data)
    assert answer is True and "drconsole.json" in evidence
    assert ask("node.opens", data_dir=data)[0] is False
    gone = tmp_path / "gone"
    answer, evidence = ask("data.files_present", data_dir=gone)
    assert answer is False and "does not exist" in evidence
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ask("data.files_present", data_dir=empty)[0] is False


def test_corrupt_wal_in_the_middle_is_named(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_engine(data, backend="rocksdb") as engine:
        for index in range(200):
            engine.put(b"k%04d" % index, b"v" * 100)
    segment = sorted((data / "wal").iterdir())[0]
    flip_byte(segment, 40)
    answer, evidence = ask("wal.corrupt", data_dir=data)
    assert answer is True and segment.name in evidence and "offset" in evidence


def test_ransomware_signs(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    table = sorted((data / "rocksdb").glob("*.sst"))[0]
    table.rename(table.with_name(table.name + ".locked"))
    (data / "HOW_TO_DECRYPT.txt").write_text("pay", encoding="utf-8")
    answer, evidence = ask("ransomware.signs", data_dir=data)
    assert answer is True and "2 suspicious files" in evidence


def test_backup_recent_from_a_real_repository(tmp_path: Path) -> None:
    from engines.backup import create_backup

    data = fill(tmp_path / "db", count=10)
    repo = tmp_path / "repo"
    assert ask("backup.recent", data_dir=data)[0] is None  # no repository: cannot tell, and says so
    create_backup(repo, data_dir=data)
    answer, evidence = ask("backup.recent", data_dir=data, repo=repo)
    assert answer is True and "h old" in evidence
    answer, _ = ask("backup.recent", data_dir=data, repo=repo, backup_max_age_seconds=-1)
    assert answer is False


def snapshot(*nodes: NodeSnapshot) -> FleetSnapshot:
    return FleetSnapshot(taken_at=datetime.now(UTC), nodes=nodes, source="fixture")


def test_fleet_probes_read_a_fleet_snapshot() -> None:
    split = snapshot(
        NodeSnapshot(name="a", role="primary", epoch=3, health=Health.OK, group="g"),
        NodeSnapshot(name="b", role="primary", epoch=3, health=Health.OK, group="g"),
    )
    answer, evidence = ask("replication.split_brain", snapshot=split)
    assert answer is True and "a, b" in evidence and "epoch 3" in evidence and "group g" in evidence
    failover = snapshot(
        NodeSnapshot(name="a", role="primary", epoch=1, health=Health.DOWN, reachable=False),
        NodeSnapshot(
            name="b", role="standby", epoch=1, health=Health.OK, replication=Replication(upstream="a", lag_seconds=0.4)
        ),
    )
    answer, evidence = ask("replication.primary_down", snapshot=failover)
    assert answer is True and "standby b healthy" in evidence and "0.4 s" in evidence
    assert ask("replication.split_brain", snapshot=failover)[0] is False
    # c polls a and b but reaches neither, while both answer here: c is cut off from its group.
    cut = snapshot(
        NodeSnapshot(name="a", role="primary", peers=("b", "c"), peers_reachable=("b",)),
        NodeSnapshot(name="b", role="standby", peers=("a", "c"), peers_reachable=("a",)),
        NodeSnapshot(name="c", role="standby", peers=("a", "b"), peers_reachable=()),
    )
    answer, evidence = ask("cluster.isolated_node", snapshot=cut)
    assert answer is True and evidence.startswith("c answers here but reaches none of its peers")
    parted = snapshot(
        NodeSnapshot(name="a", role="primary", peers=("b",), primaries_named=("a", "b")),
        NodeSnapshot(name="b", role="primary", epoch=1, peers=("a",)),
    )
    assert ask("cluster.partition", snapshot=parted)[0] is True
    down = snapshot(
        NodeSnapshot(name="a", reachable=False, group="g"),
        NodeSnapshot(name="b", reachable=False, group="g"),
        NodeSnapshot(name="c", reachable=True, group="g"),
    )
    assert ask("cluster.minority_survives", snapshot=down)[0] is True
    assert ask("cluster.all_down", snapshot=down)[0] is False
    for name in ("replication.split_brain", "cluster.partition"):
        answer, evidence = ask(name)
        assert answer is None and "no fleet snapshot" in evidence


def test_independent_nodes_are_not_a_replication_group() -> None:
    """Three primaries in one config, each alone (the shipped demo): no cluster question misfires."""
    alone = snapshot(
        *(
            NodeSnapshot(name=name, role="primary", epoch=0, health=Health.OK, peers=())
            for name in ("orders", "ledger", "cache")
        )
    )
    for name in (
        "replication.split_brain",
        "replication.primary_down",
        "replication.fenced_node",
        "cluster.all_down",
        "cluster.minority_survives",
        "cluster.partition",
        "cluster.isolated_node",
        "cluster.member_down",
        "replication.in_group",
    ):
        answer, evidence = ask(name, snapshot=alone)
        assert answer is False, (name, evidence)
        answer, evidence = ask(name, snapshot=alone, node="ledger")
        assert answer is False and "ledger is not in a replication group" in evidence, (name, evidence)


def test_a_snapshot_loaded_as_plain_json_answers_the_same() -> None:
    split = snapshot(
        NodeSnapshot(name="a", role="primary", epoch=3, health=Health.OK, group="g"),
        NodeSnapshot(name="b", role="primary", epoch=3, health=Health.OK, group="g"),
    )
    plain = json.loads(split.model_dump_json())
    assert ask("replication.split_brain", snapshot=plain)[0] is True


# ------------------------------------------------------------------------------------------- hangs
HOLDER = Path(__file__).resolve().parents[1] / "drills" / "lock_holder.py"


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], Path, int]]]:
    """Start lock_holder.py on a fresh data dir: (process, data dir, silent port or 0); killed afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(*mode: str) -> tuple[subprocess.Popen[str], Path, int]:
        data = fill(tmp_path / f"db{len(started)}", backend="lsm", count=20)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        process = subprocess.Popen(
            [sys.executable, str(HOLDER), str(data), *mode], stdout=subprocess.PIPE, text=True, env=env
        )
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline().split()
        assert line and line[0] == "ready", line
        return process, data, int(line[1])

    yield start
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.wait()


def test_a_stopped_lock_holder_is_hung_with_pid_and_state(holder: Callable[..., Any]) -> None:
    process, data, _port = holder()
    assert ask("process.hung", data_dir=data)[0] is False  # running: not hung
    os.kill(process.pid, signal.SIGSTOP)
    assert ask("node.running", data_dir=data)[0] is True  # the lock is still held: "running" alone misleads
    answer, evidence = ask("process.hung", data_dir=data)
    assert answer is True
    assert re.fullmatch(
        rf"pid {process.pid} holds the lock of {re.escape(str(data))}, state stopped: it runs no "
        rf"code and serves nothing \(seen at \d\d:\d\d:\d\d\)",
        evidence,
    ), evidence
    os.kill(process.pid, signal.SIGCONT)
    answer, evidence = ask("process.hung", data_dir=data)
    assert answer is False and f"pid {process.pid} holds the lock" in evidence and "is running" in evidence


def test_a_holder_silent_on_health_is_hung_and_no_holder_is_not(holder: Callable[..., Any], tmp_path: Path) -> None:
    process, data, port = holder("silent")
    answer, evidence = ask("process.hung", data_dir=data)
    assert answer is True
    assert f"pid {process.pid} holds the lock" in evidence
    assert f"http://127.0.0.1:{port}/health did not answer within 1 s" in evidence
    idle = fill(tmp_path / "idle", backend="lsm", count=5)
    assert ask("process.hung", data_dir=idle) == (False, f"no process holds the lock of {idle}")


@pytest.mark.usefixtures("host_memory")
def test_memory_evidence_finds_the_culprit_by_sampling_not_by_the_fault_record(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", backend="lsm", count=5)
    memory = psutil.virtual_memory()
    threshold = (memory.total - memory.available + 512 * 2**20) / memory.total  # the hog's half crosses it
    report = inject("memory-pressure", data, megabytes=1024)
    pid = report.extra["pid"]
    try:
        for record in (data / ".quarantine").glob("fault-*/memory-hog.json"):
            record.unlink()  # the probe must find it without the fault's record
        answer, evidence = ask("memory.exhausted", data_dir=data, memory_threshold=threshold)
        assert answer is True, evidence
        assert re.search(r"; largest: pid \d+ \S+ \(", evidence), evidence
        assert f"culprit: pid {pid} " in evidence and "resident" in evidence, evidence
        assert psutil.Process(pid).memory_info().rss >= 1000 * 2**20  # touched: resident, not just reserved
        answer, evidence = ask("memory.exhausted", data_dir=data, memory_threshold=0.0)
        assert answer is True and "no single process we may stop holds the excess" in evidence, evidence
    finally:
        hog = psutil.Process(pid)
        hog.kill()
        hog.wait(10)


def test_standby_lag_from_the_snapshot_and_from_the_primarys_wal(tmp_path: Path) -> None:
    """Seconds behind: what a node reports; for data dirs read here, the primary's WAL times of the two LSNs."""
    lagging = snapshot(
        NodeSnapshot(name="p", role="primary", group="g"),
        NodeSnapshot(
            name="s", role="standby", group="g", replication=Replication(upstream="p", lag_seconds=95.0, lag_records=40)
        ),
    )
    answer, evidence = ask("replication.standby_lag", snapshot=lagging, node="s")
    assert answer is True and "95.0 s (40 records) behind p" in evidence and "limit 60 s" in evidence
    assert ask("replication.standby_lag", snapshot=lagging, node="p")[0] is False
    from engines import create_engine
    from fleet import NodeSpec

    primary = tmp_path / "p"
    with create_engine(primary, backend="lsm") as engine:
        engine.put(b"a", b"1")
        time.sleep(1.2)
        engine.put(b"b", b"2")
    local = snapshot(
        NodeSnapshot(name="p", role="primary", group="g", last_lsn=2),
        NodeSnapshot(
            name="s",
            role="standby",
            group="g",
            replication=Replication(upstream="p", applied_lsn=1, primary_lsn=2, lag_records=1),
        ),
    )
    specs = (NodeSpec(name="p", data_dir=primary), NodeSpec(name="s", data_dir=tmp_path / "s"))
    found = PROBES["replication.standby_lag"](
        ProbeContext(snapshot=local, node="s", specs=specs, lag_threshold_seconds=1.0)
    )
    assert found.answer is True and found.data["lag_seconds"] >= 1.1, found.evidence
