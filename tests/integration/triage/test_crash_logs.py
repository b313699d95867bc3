"""Logs as evidence: how a real node process ended, told from its --log-file (and the kernel's OOM kills).

A real `drconsole node serve` is stopped each way (SIGSEGV, SIGKILL, SIGTERM, a start that fails, the
kernel's OOM killer in a memory cgroup) and `drconsole triage --node` must say which, showing the
lines it used. A panic (an exception nothing caught) is a real Python process dying of one, written
to a log the way `node serve --log-file` writes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from support import run_cli_in_process
from triage_kit import Fleet

from console.cli.main import main as cli_main
from drills.node import free_port, serve_command
from playbooks.nodelog import classify, kernel_oom_kills, start_line


def triage_json(fleet: Fleet, capsys: pytest.CaptureFixture[str], **config: bool) -> dict:
    result = run_cli_in_process(
        capsys, cli_main, "--config", fleet.config(**config), "triage", "--node", "n1", "--json", "--read-only"
    )
    return dict(json.loads(result.out), code=result.code)


def crash_entry(report: dict) -> dict:
    return next(row for row in report["path"] if row["probe"] == "process.crashed")


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))
    started = Fleet(tmp_path / "fleet", "single", "lsm")
    try:
        yield started.start(keys=40)  # type: ignore[misc]
    finally:
        started.close()


def test_a_sigsegv_is_named_with_the_faulthandler_lines(fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    node = fleet.nodes["n1"]
    os.kill(node.process.pid, signal.SIGSEGV)  # type: ignore[union-attr]
    node.reap()
    report = triage_json(fleet, capsys)
    entry = crash_entry(report)
    assert report["code"] == 1 and report["fault"] == "process-crash" and report["severity"] == "P1"
    assert entry["evidence"].startswith(f"SIGSEGV: pid {node.process.pid} died of SIGSEGV")  # type: ignore[union-attr]
    assert any("Fatal Python error: Segmentation fault" in line for line in entry["lines"])


def test_a_sigkill_leaves_a_log_that_just_stops(fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    node = fleet.nodes["n1"]
    node.process.kill()  # type: ignore[union-attr]
    node.reap()
    for remote in (False, True):  # the data dir here, or only the URL (refused) and the log
        entry = crash_entry(triage_json(fleet, capsys, remote=remote, logs=True))
        assert entry["evidence"].startswith("killed: ") and "SIGKILL" in entry["evidence"], entry
        assert entry["lines"][0].split(" ", 2)[1:2] == ["drconsole-node"]


def test_a_clean_stop_of_a_node_meant_to_serve_is_a_stop_not_health(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    node = fleet.nodes["n1"]
    node.stop()  # SIGTERM: the node closes its engine and logs a clean exit
    report = triage_json(fleet, capsys)
    entry = crash_entry(report)
    assert report["fault"] == "process-crash" and "stopped cleanly (exit 0)" in entry["evidence"]
    assert "should be serving" in entry["evidence"]
    assert any("how=clean" in line for line in entry["lines"])


def test_a_start_that_fails_is_an_error_exit_with_its_reason(tmp_path: Path) -> None:
    log = tmp_path / "n.log"
    done = subprocess.run(
        serve_command("lsm", tmp_path / "d", free_port(), "--wal-segment-bytes", "1", "--log-file", str(log)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2  # bad input: a WAL segment of one byte
    ending = classify(log.read_text().splitlines(), alive=False)
    assert ending.kind == "error-exit" and ending.crashed and "exited on an error" in ending.sentence


def test_a_panic_and_its_traceback(tmp_path: Path) -> None:
    log = tmp_path / "n.log"
    with open(log, "w") as handle:
        handle.write(start_line(name="n1", pid=4242, data_dir=str(tmp_path), url="http://127.0.0.1:1") + "\n")
        handle.flush()
        subprocess.run([sys.executable, "-c", "import json\njson.loads('{')"], stderr=handle, check=False, timeout=60)
    ending = classify(log.read_text().splitlines(), alive=False)
    assert ending.kind == "panic" and "JSONDecodeError" in ending.sentence
    assert ending.lines[1].startswith("Traceback (most recent call last)")


def _cgroup(name: str) -> Path | None:
    root = Path("/sys/fs/cgroup/memory")
    if os.geteuid() != 0 or not root.is_dir():
        return None
    group = root / name
    try:
        group.mkdir()
    except OSError:
        return None
    return group


def test_an_oom_kill_by_the_kernel_is_told_from_a_sigkill(fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    kernel, how = kernel_oom_kills()
    if "not readable" in how:
        pytest.skip(f"the kernel's log is not readable here: {how}")
    group = _cgroup(f"drconsole-triage-{os.getpid()}")
    if group is None:
        pytest.skip("a memory cgroup (v1, as root) is needed to let the kernel OOM-kill one process safely")
    node = fleet.nodes["n1"]
    pid = node.process.pid  # type: ignore[union-attr]
    try:
        (group / "cgroup.procs").write_text(str(pid))
        rss = int((group / "memory.usage_in_bytes").read_text())
        (group / "memory.limit_in_bytes").write_text(str(rss + 24 * 2**20))
        try:  # a few values the size the node accepts: its request buffers cross the limit
            for index in range(8):
                httpx.put(f"{node.url}/kv/big{index}", content=os.urandom(15 * 2**20), timeout=30)
        except httpx.HTTPError:
            pass
        node.reap(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(f"process {pid} " in line for line in kernel_oom_kills()[0]):
            time.sleep(0.2)
    finally:
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    assert node.process.returncode == -signal.SIGKILL  # type: ignore[union-attr]
    entry = crash_entry(triage_json(fleet, capsys))
    assert entry["evidence"].startswith("oom-kill: the kernel killed pid"), entry
    assert any("Killed process" in line and str(pid) in line for line in entry["lines"])


def test_kernel_lines_carry_the_wall_time_they_were_written_at() -> None:
    """An OOM kill a second after a node's start must not read as older than the node (a reused pid)."""
    try:
        with open("/dev/kmsg", "w") as kmsg:
            written = time.time()
            kmsg.write(f"drconsole clock probe {os.getpid()}: Out of memory: Killed process 1 (probe)\n")
    except OSError as error:
        pytest.skip(f"cannot write the kernel's log here: {error}")
    lines, how = kernel_oom_kills()
    if "not readable" in how:
        pytest.skip(f"the kernel's log is not readable here: {how}")
    probe = [line for line in lines if f"drconsole clock probe {os.getpid()}:" in line]
    assert probe, lines[-3:]
    at = datetime.fromisoformat(probe[-1].split(" ", 1)[0].replace(",", "."))
    assert abs(at.timestamp() - written) < 0.25, (probe[-1], written)
