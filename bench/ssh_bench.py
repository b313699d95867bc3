"""SSH console bench: time to a session's first frame, and memory per session.

    .venv/bin/python bench/ssh_bench.py [--runs 5] [--sessions 5]

A one-node fleet (a real lsm data dir) is served by ``drconsole serve ssh`` as in production (a
subprocess, consoles forked from its preloaded zygote). The client is the system ``ssh -tt`` on a
100x30 pty whose output feeds a pyte screen; the first complete frame is the moment the screen
shows the status bar's screen name, the node's tile ("orders") and the key bar on the last row.
Goal (issue 10): first frame < 0.5 s.

Peers, measured in the same run and the same way:
  * ssh -tt to the same server code running ``true`` instead of a console: what SSH itself costs
    (connect, key exchange, public-key auth, pty, session, exit);
  * the same server with consoles started as fresh interpreters (no zygote): what the zygote buys;
  * ``drconsole dashboard`` started locally on a pty of the same size: the console's own start, no SSH.
Memory: USS (memory only that process holds; the zygote's pages are shared copy-on-write) and RSS
of each console process, and the server's (plus zygote's) RSS, with 1 and N viewer sessions open.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import asyncssh
import psutil
import pyte

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.cli.servers.spawners import DirectSpawner  # noqa: E402
from console.cli.servers.ssh import SSHConsoleServer  # noqa: E402
from console.cli.servers.users import load_users  # noqa: E402
from engines import create_engine  # noqa: E402

COLS, ROWS = 100, 30
SSH = shutil.which("ssh")


# ------------------------------------------------------------------------------------------ set-up
def make_workspace(root: Path) -> dict[str, Path]:
    data_dir = root / "nodes" / "orders"
    with create_engine(data_dir, backend="lsm", node_name="orders") as engine:
        engine.write_batch([(f"order:{i:05d}".encode(), b"paid" * 8) for i in range(500)])
    config = root / "drconsole.toml"
    config.write_text('[[node]]\nname = "orders"\nengine = "lsm"\ndata_dir = "nodes/orders"\n', encoding="utf-8")
    host_key = root / "host_key"
    host_key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    host_key.chmod(0o600)
    lines = []
    for name, role in (("alice", "responder"), ("bob", "viewer")):
        key = asyncssh.generate_private_key("ssh-ed25519")
        (root / name).write_bytes(key.export_private_key())
        (root / name).chmod(0o600)
        lines.append(
            f'[[user]]\nname = "{name}"\nrole = "{role}"\nkeys = ["{key.export_public_key().decode().strip()}"]\n'
        )
    users = root / "users.toml"
    users.write_text("\n".join(lines), encoding="utf-8")
    return {"config": config, "host_key": host_key, "users": users, "alice": root / "alice", "bob": root / "bob"}


def environment(root: Path) -> dict[str, str]:
    env = dict(
        os.environ,
        DRCONSOLE_STATE_DIR=str(root / "state"),
        XDG_DATA_HOME=str(root / "xdg"),
        TERM="xterm-256color",
        PYTHONPATH=str(ROOT),
    )
    env.pop("DRCONSOLE_ROLE", None)
    return env


def start_server(argv: list[str], root: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        argv,
        cwd=root,
        env=environment(root),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        match = re.search(r"on 127\.0\.0\.1:(\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stderr or []], daemon=True).start()
            return process, int(match.group(1))
    raise SystemExit(f"the server did not start (exit {process.wait()})")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def peer_server(mode: str, root: Path) -> int:
    """``--peer-server true|direct``: the SSH server in-process, running `true` or fresh interpreters."""
    files = {name: root / name for name in ("host_key", "users.toml", "drconsole.toml")}

    async def serve() -> None:
        if mode == "true":
            server = SSHConsoleServer(
                asyncssh.read_private_key(files["host_key"]),
                load_users(files["users.toml"]),
                spawner=DirectSpawner(argv=[]),
                console_args=lambda role, config: ["true"],
            )
        else:
            server = SSHConsoleServer(
                asyncssh.read_private_key(files["host_key"]),
                load_users(files["users.toml"]),
                config=files["drconsole.toml"],
                spawner=DirectSpawner(),
            )
        port = await server.start()
        sys.stderr.write(f"listening on 127.0.0.1:{port}\n")
        sys.stderr.flush()
        stopped = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
        await server.close()

    asyncio.run(serve())
    return 0


# ------------------------------------------------------------------------------------------ client
class Terminal:
    """A command on a COLSxROWS pty, its output on a pyte screen."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
        )
        os.close(slave)

    def pump(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        self.stream.feed(data)
        return bool(data)

    def first_frame(self, screen_name: str, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pump(0.05):
                break
            display = self.screen.display
            if screen_name in display[0] and "orders" in "\n".join(display) and "palette" in display[-1]:
                return time.perf_counter() - self.started
        raise SystemExit(f"no frame within {timeout} s:\n" + "\n".join(self.screen.display))

    def until_exit(self, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            self.pump(0.02)
        if self.process.poll() is None:
            raise SystemExit("the command did not exit")
        return time.perf_counter() - self.started

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


def ssh_argv(port: int, user: str, key: Path) -> list[str]:
    assert SSH is not None
    return [
        SSH,
        "-tt",
        "-p",
        str(port),
        "-i",
        str(key),
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "IdentitiesOnly=yes",
        f"{user}@127.0.0.1",
    ]


def frame_times(make: object, screen_name: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        terminal: Terminal = make()  # type: ignore[operator]
        try:
            times.append(terminal.first_frame(screen_name))
        finally:
            terminal.close()
        time.sleep(0.3)  # let the hung-up console go before the next one starts
    return times


def describe(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:6.0f} ms   best {min(times) * 1000:6.0f} ms   (n={len(times)})"


# ------------------------------------------------------------------------------------------ memory
def tree_rss(pid: int) -> tuple[int, list[psutil.Process]]:
    server = psutil.Process(pid)
    consoles, overhead = [], server.memory_info().rss
    for child in server.children(recursive=True):
        if child.ppid() == pid and "console.cli.servers.zygote" in " ".join(child.cmdline()):
            overhead += child.memory_info().rss
        else:
            consoles.append(child)
    return overhead, consoles


def memory(port: int, server_pid: int, files: dict[str, Path], sessions: int) -> list[str]:
    rows = []
    base, _ = tree_rss(server_pid)
    opened: list[Terminal] = []
    try:
        for count in sorted({1, sessions}):
            while len(opened) < count:
                terminal = Terminal(ssh_argv(port, "bob", files["bob"]))
                terminal.first_frame("Dashboard")
                opened.append(terminal)
            time.sleep(2.0)  # a couple of refresh ticks
            for terminal in opened:
                terminal.pump(0)
            overhead, consoles = tree_rss(server_pid)
            uss = [process.memory_full_info().uss for process in consoles]
            rss = [process.memory_info().rss for process in consoles]
            rows.append(
                f"  {count} session(s): console USS {statistics.mean(uss) / 2**20:5.1f} MiB each, "
                f"RSS {statistics.mean(rss) / 2**20:5.1f} MiB each; server+zygote RSS "
                f"{overhead / 2**20:5.1f} MiB ({(overhead - base) / 2**20 / count:+.2f} MiB per session)"
            )
    finally:
        for terminal in opened:
            terminal.close()
    rows.insert(0, f"  server+zygote RSS with no session: {base / 2**20:.1f} MiB")
    return rows


# ------------------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--peer-server", choices=("true", "direct"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_server:
        return peer_server(args.peer_server, args.root)
    if SSH is None:
        print("ssh_bench: the system ssh client is not installed; skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="drconsole-ssh-bench-") as tmp:
        root = Path(tmp)
        files = make_workspace(root)
        env = environment(root)
        server, port = start_server(
            [
                sys.executable,
                "-m",
                "console",
                "serve",
                "ssh",
                "--port",
                "0",
                "--host-key",
                str(files["host_key"]),
                "--users",
                str(files["users"]),
                "--config",
                str(files["config"]),
            ],
            root,
        )
        results: dict[str, list[float]] = {}
        try:
            frame_times(lambda: Terminal(ssh_argv(port, "bob", files["bob"])), "Dashboard", 1)  # warm caches
            results["ssh, viewer (dashboard)"] = frame_times(
                lambda: Terminal(ssh_argv(port, "bob", files["bob"])), "Dashboard", args.runs
            )
            results["ssh, responder (console)"] = frame_times(
                lambda: Terminal(ssh_argv(port, "alice", files["alice"])), "Overview", args.runs
            )
            mem = memory(port, server.pid, files, args.sessions)
        finally:
            stop(server)
        true_server, true_port = start_server([sys.executable, __file__, "--peer-server", "true", "--root", tmp], root)
        try:
            results["peer: ssh -tt to the same server running `true`"] = [
                Terminal(ssh_argv(true_port, "bob", files["bob"])).until_exit() for _ in range(args.runs)
            ]
        finally:
            stop(true_server)
        direct_server, direct_port = start_server(
            [sys.executable, __file__, "--peer-server", "direct", "--root", tmp], root
        )
        try:
            results["peer: ssh, viewer, fresh interpreter (no zygote)"] = frame_times(
                lambda: Terminal(ssh_argv(direct_port, "bob", files["bob"])), "Dashboard", args.runs
            )
        finally:
            stop(direct_server)
        results["peer: local `drconsole dashboard` on a pty (no ssh)"] = frame_times(
            lambda: Terminal(
                [sys.executable, "-m", "console", "dashboard", "--config", str(files["config"])], env=env, cwd=root
            ),
            "Dashboard",
            args.runs,
        )
    load = os.getloadavg()[0]
    print(f"SSH session first frame ({COLS}x{ROWS}; goal < 500 ms; load average {load:.1f} on {os.cpu_count()} cores)")
    for name, times in results.items():
        print(f"  {name:<52} {describe(times)}")
    ours = statistics.median(results["ssh, viewer (dashboard)"])
    floor = statistics.median(results["peer: ssh -tt to the same server running `true`"])
    local = statistics.median(results["peer: local `drconsole dashboard` on a pty (no ssh)"])
    print(f"  viewer over ssh / ssh running `true`: {ours / floor:.2f}x; / local dashboard start: {ours / local:.2f}x")
    print(f"Memory per SSH session (viewer, dashboard; {args.sessions} sessions at most)")
    print("\n".join(mem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
