"""Scheduled daily backups: a systemd timer + service pair and the equivalent cron line.

As the reference's ``schedule_backups.sh`` does: a daily full backup at 02:00, then pruning with
the default retention. ``backup create`` opens the data dir itself, so a data dir held by a
running node fails the unit with exit 3 until the node offers ``/admin/checkpoint``.

Installing writes the two unit files (atomically) and nothing else: enabling the timer is a
``systemctl`` command the operator runs, printed with the files.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.backup.location import is_remote, location_text
from engines.errors import InvalidArgumentError, SafetyRefusal, map_os_error
from engines.fsutil import atomic_write_text

__all__ = ["Schedule", "build_schedule", "install_schedule", "DEFAULT_UNIT_DIR"]

DEFAULT_UNIT_DIR = Path("/etc/systemd/system")


@dataclass
class Schedule:
    name: str
    service: str
    timer: str
    cron: str

    @property
    def service_name(self) -> str:
        return f"{self.name}.service"

    @property
    def timer_name(self) -> str:
        return f"{self.name}.timer"

    def enable_command(self) -> str:
        return f"systemctl daemon-reload && systemctl enable --now {self.timer_name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service_file": self.service_name,
            "service": self.service,
            "timer_file": self.timer_name,
            "timer": self.timer,
            "cron": self.cron,
            "enable": self.enable_command(),
        }


def _systemd_quote(word: str) -> str:
    """Quote one ExecStart word (systemd accepts C-style double quotes)."""
    if word and all(ch.isalnum() or ch in "/._-=:+,@%" for ch in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _command() -> list[str]:
    """The drconsole this process runs from: its venv's console script, else one on PATH."""
    beside = Path(sys.executable).with_name("drconsole")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("drconsole")
    return [found] if found else [sys.executable, "-m", "console"]


def build_schedule(
    data_dir: Path,
    repo: Path | str,
    *,
    on_calendar: str = "*-*-* 02:00:00",
    cron: str = "0 2 * * *",
    name: str | None = None,
    command: list[str] | None = None,
    repo_options: list[str] | None = None,
) -> Schedule:
    """The unit files and cron line that back ``data_dir`` up into ``repo`` (a path or an sftp URL) daily.

    ``repo_options``: options every backup command of the timer takes (``--ssh-key FILE``...).
    """
    data_dir, repo = Path(data_dir).absolute(), location_text(repo)
    if len(cron.split()) != 5:
        raise InvalidArgumentError(f"cron schedule {cron!r} must have 5 fields", hint='e.g. "0 2 * * *"')
    derived = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in data_dir.name)
    unit = name or f"drconsole-backup-{derived}"
    if not all(ch.isalnum() or ch in "-_.@" for ch in unit):
        raise InvalidArgumentError(f"unit name {unit!r} may hold only letters, digits and -_.@")
    program = command or _command()
    extra = list(repo_options or [])
    create = [*program, "backup", "create", "--data-dir", str(data_dir), "--repo", repo, *extra, "--json"]
    prune = [*program, "backup", "prune", "--repo", repo, *extra, "--yes"]
    service = "\n".join(
        [
            "[Unit]",
            f"Description=drconsole daily backup of {data_dir}",
            "After=local-fs.target",
            "",
            "[Service]",
            "Type=oneshot",
            "ExecStart=" + " ".join(_systemd_quote(word) for word in create),
            "ExecStart=" + " ".join(_systemd_quote(word) for word in prune),
            "Nice=10",
            "IOSchedulingClass=best-effort",
            "IOSchedulingPriority=7",
            "",
        ]
    )
    timer = "\n".join(
        [
            "[Unit]",
            f"Description=drconsole daily backup of {data_dir}",
            "",
            "[Timer]",
            f"OnCalendar={on_calendar}",
            "Persistent=true",
            "RandomizedDelaySec=300",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )
    # cron's output goes beside the backups; for one on another host, to /var/log
    log = Path(repo) / "logs" / "cron.log" if not is_remote(repo) else Path("/var/log/drconsole-backup-cron.log")
    cron_line = f"{cron} {{ {shlex.join(create)} && {shlex.join(prune)}; }} >> {shlex.quote(str(log))} 2>&1"
    return Schedule(unit, service, timer, cron_line)


def install_schedule(schedule: Schedule, unit_dir: Path = DEFAULT_UNIT_DIR) -> list[Path]:
    """Write the two unit files into ``unit_dir``; an identical file is left as it is.

    Raises:
        SafetyRefusal: a unit file of that name exists with other content (it is not overwritten).
    """
    written = []
    files = {schedule.service_name: schedule.service, schedule.timer_name: schedule.timer}
    for file_name, text in files.items():
        path = Path(unit_dir) / file_name
        if path.exists() and path.read_text(encoding="utf-8") != text:
            raise SafetyRefusal(
                f"{path} exists with other content; not overwritten", hint="remove it or choose another --name"
            )
    try:
        Path(unit_dir).mkdir(parents=True, exist_ok=True)
        for file_name, text in files.items():
            path = Path(unit_dir) / file_name
            if not path.exists():
                atomic_write_text(path, text)
            written.append(path)
    except OSError as exc:
        raise map_os_error(exc, f"writing unit files into {unit_dir}") from exc
    return written
