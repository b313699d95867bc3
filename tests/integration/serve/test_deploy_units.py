"""deploy/systemd: the units pass systemd-analyze, and the backup pair is what `backup schedule` prints."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engines.backup.schedule import build_schedule

UNITS = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
DRCONSOLE = "/opt/drconsole/.venv/bin/drconsole"


def _section(text: str, name: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("["):
            inside = line == f"[{name}]"
        elif inside and line and not line.startswith("#"):
            lines.append(line)
    return lines


def test_the_backup_template_is_the_schedule_commands_output_per_instance() -> None:
    schedule = build_schedule(Path("/var/lib/drconsole/%i"), Path("/var/backups/drconsole/%i"), command=[DRCONSOLE])
    service = (UNITS / "drconsole-backup@.service").read_text(encoding="utf-8")
    timer = (UNITS / "drconsole-backup@.timer").read_text(encoding="utf-8")
    expected_exec = [line for line in _section(schedule.service, "Service") if line.startswith("ExecStart=")]
    assert [line for line in _section(service, "Service") if line.startswith("ExecStart=")] == expected_exec
    assert _section(timer, "Timer") == _section(schedule.timer, "Timer")
    assert _section(timer, "Install") == _section(schedule.timer, "Install")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    drconsole = shutil.which("drconsole") or str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "drconsole")
    names = {
        "drconsole-ssh.service": "drconsole-ssh.service",
        "drconsole-web.service": "drconsole-web.service",
        "drconsole-node@.service": "drconsole-node@orders.service",
        "drconsole-backup@.service": "drconsole-backup@orders.service",
        "drconsole-backup@.timer": "drconsole-backup@orders.timer",
    }
    for source, instance in names.items():
        text = (UNITS / source).read_text(encoding="utf-8").replace(DRCONSOLE, drconsole)
        (tmp_path / instance).write_text(text, encoding="utf-8")
    for instance in names.values():
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(tmp_path / instance)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.stderr.splitlines() == [], instance
