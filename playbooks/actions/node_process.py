"""The process serving a data dir: who holds its lock, where it listens, and stopping or relaunching it.

A node is ``drconsole node serve --data-dir D --port P ...``; the process that holds
``D/drconsole.lock`` is the one serving D. Its command line says where it listens
(``--advertise-url``, else ``--host`` and ``--port``), whom it follows (``--follow``) and its peers
(``--peer``), which is how a playbook or a fault given only a data dir finds the node's URL.
Stopping is what a supervisor's ``stop`` does (SIGTERM, then SIGKILL after a grace period);
relaunching runs the same command line again, detached, the supervisor's ``start``, in the same
named network namespace when the node ran in one (``playbooks.netns``). Nothing here reads or
writes the data dir itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from engines.base import LOCK_NAME
from playbooks.netns import netns_name, netns_prefix

__all__ = ["ServingProcess", "serving_process", "serving_at", "serve_here", "stop_process", "relaunch"]


@dataclass(frozen=True)
class ServingProcess:
    """A live process holding a data dir's lock, and what its command line says."""

    pid: int
    cmdline: tuple[str, ...]
    cwd: str
    environ: dict[str, str] = field(default_factory=dict)
    netns: str | None = None  # the ``ip netns`` name of its network namespace, when not ours

    def option(self, name: str) -> str | None:
        """The value of ``--name V`` or ``--name=V`` (the last one given)."""
        found = None
        for index, argument in enumerate(self.cmdline):
            if argument == name and index + 1 < len(self.cmdline):
                found = self.cmdline[index + 1]
            elif argument.startswith(name + "="):
                found = argument.split("=", 1)[1]
        return found

    def options(self, name: str) -> list[str]:
        """Every value of a repeatable option (``--peer``)."""
        values = []
        for index, argument in enumerate(self.cmdline):
            if argument == name and index + 1 < len(self.cmdline):
                values.append(self.cmdline[index + 1])
            elif argument.startswith(name + "="):
                values.append(argument.split("=", 1)[1])
        return values

    @property
    def url(self) -> str | None:
        """Where the node is reached: ``--advertise-url``, else ``--host``/``--port`` (None: not ``node serve``)."""
        port = self.option("--port")
        if port is None or "serve" not in self.cmdline:
            return None
        advertised = self.option("--advertise-url")
        if advertised:
            return advertised.rstrip("/")
        host = self.option("--host") or "127.0.0.1"
        return f"http://{host}:{port}"

    @property
    def stopped(self) -> bool:
        """SIGSTOPped (a hung process): it holds its lock and answers nothing."""
        try:
            return psutil.Process(self.pid).status() == psutil.STATUS_STOPPED
        except psutil.Error:
            return False


_SERVED_HERE: dict[str, ServingProcess] = {}


def serve_here(data_dir: Path, cmdline: tuple[str, ...] | None) -> None:
    """This process is the node serving ``data_dir`` (its playbook agent runs here): ``serving_process``
    answers with it, so node actions find its URL and peers; None forgets it."""
    key = str(Path(data_dir).resolve())
    if cmdline is None:
        _SERVED_HERE.pop(key, None)
    else:
        _SERVED_HERE[key] = ServingProcess(os.getpid(), cmdline, os.getcwd())


def serving_process(data_dir: Path) -> ServingProcess | None:
    """The process holding ``data_dir``'s lock open (None when no process we can see does)."""
    here = _SERVED_HERE.get(str(Path(data_dir).resolve()))
    if here is not None:
        return here
    target = str((Path(data_dir) / LOCK_NAME).resolve())
    own = os.getpid()
    for process in psutil.process_iter(["pid"]):
        if process.pid == own:
            continue
        try:
            if not any(item.path == target for item in process.open_files()):
                continue
            environ: dict[str, str] = {}
            try:
                environ = dict(process.environ())
            except psutil.Error:
                pass  # another user's process: relaunching it is not ours to do anyway
            return ServingProcess(
                process.pid, tuple(process.cmdline()), process.cwd(), environ, netns_name(process.pid)
            )
        except (psutil.Error, OSError):
            continue
    return None


def serving_at(url: str) -> ServingProcess | None:
    """The ``node serve`` process on this host whose command line says it is reached at ``url``."""
    wanted = url.rstrip("/")
    for process in psutil.process_iter(["pid", "cmdline"]):
        command = tuple(process.info.get("cmdline") or ())
        if "serve" not in command or "--data-dir" not in " ".join(command):
            continue
        candidate = ServingProcess(process.pid, command, "")
        if candidate.url == wanted:
            try:
                return ServingProcess(process.pid, command, process.cwd(), {}, netns_name(process.pid))
            except psutil.Error:
                return None
    return None


def stop_process(pid: int, *, grace_seconds: float = 10.0) -> str:
    """Stop ``pid`` as a supervisor does: SIGCONT (a hung process cannot act on SIGTERM), SIGTERM,
    and SIGKILL if it has not exited after ``grace_seconds``. Returns what it took."""
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGCONT)
        process.terminate()
    except psutil.NoSuchProcess:
        return "already gone"
    try:
        process.wait(timeout=grace_seconds)
        return "SIGTERM"
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        return f"SIGKILL (no exit {grace_seconds:g} s after SIGTERM)"


def relaunch(serving: ServingProcess, log_path: Path, *, drop: tuple[str, ...] = ()) -> int:
    """Run the same command line again, detached (its own session), output appended to ``log_path``.

    ``drop``: options removed with their value (``--follow``: the node's saved state now says
    whom it follows). Returns the new pid.
    """
    arguments: list[str] = netns_prefix(serving.netns)
    skip = False
    for argument in serving.cmdline:
        if skip:
            skip = False
            continue
        if argument in drop:
            skip = True
            continue
        if any(argument.startswith(name + "=") for name in drop):
            continue
        arguments.append(argument)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            arguments,
            cwd=serving.cwd or None,
            env=serving.environ or None,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return child.pid
