"""Real fleets for the triage matrix: ``drconsole node serve`` processes, a drconsole.toml, triage as users run it.

``Fleet(root, topology, engine)`` starts the topology's nodes (each a subprocess on a free loopback
port, with ``--log-file``), seeds them with writes through their API, and writes the config the
CLI and the console read (``config(remote=...)``: with ``data_dir`` and ``log_file``, or URLs only,
as a console on another host sees them). ``triage(node)`` is ``drconsole triage --node NODE --json``
run in this process (the same code as from a shell); ``console_triage(node)`` walks the console's own
``PlaybookTriage`` built by ``console.tui.launch.triage_factory`` from the same config, accepting each
probe's answer as a responder pressing ``a`` would. ``close()`` stops every process it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from console.cli.main import main as cli_main
from console.config import load_config
from console.tui.launch import triage_factory
from drills.node import ROOT, free_port, serve_command, stop_child, wait_for_node
from engines.node.client import NodeClient
from fleet import fleet_source

__all__ = ["Fleet", "NodeProc", "TOPOLOGIES", "Outcome"]

# topology -> [(name, role, follows, engine or None for the case's engine)]
TOPOLOGIES: dict[str, list[tuple[str, str, str | None, str | None]]] = {
    "single": [("n1", "primary", None, None)],
    "pair": [("p", "primary", None, None), ("s", "standby", "p", None)],
    "independent": [
        ("orders", "primary", None, "lsm"),
        ("ledger", "primary", None, "cow"),
        ("cache", "primary", None, "rocksdb"),
    ],
    # Group "alpha" is named in the config; group b1+b2 is known only from what the nodes report
    # (b2 follows b1: its /replication names b1's URL, b1's names b2 as its standby).
    "two-groups": [
        ("a1", "primary", None, "lsm"),
        ("a2", "standby", "a1", "lsm"),
        ("b1", "primary", None, "cow"),
        ("b2", "standby", "b1", "cow"),
    ],
}
EXPLICIT_GROUPS = {"a1": "alpha", "a2": "alpha"}


@dataclass
class NodeProc:
    name: str
    engine: str
    data_dir: Path
    log_file: Path
    role: str = "primary"
    follow: str | None = None
    peers: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    backup_repo: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 40.0) -> NodeProc:
        command = serve_command(
            self.engine,
            self.data_dir,
            self.port,
            *("--name", self.name, "--durability", "sync", "--log-file", str(self.log_file)),
            *("--peer-interval", "0.5", *self.extra),
        )
        if self.follow:
            command += ["--follow", self.follow]
        for peer in self.peers:
            command += ["--peer", peer]
        if self.backup_repo is not None:
            command += ["--backup-repo", str(self.backup_repo)]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        wait_for_node(self.process, self.url, timeout=timeout, what=self.name, log_path=self.log_file)
        return self

    def client(self) -> NodeClient:
        return NodeClient(self.url, timeout=10.0)

    def stop(self) -> None:
        """SIGCONT (a fault may have stopped it), SIGTERM, then SIGKILL after 15 s; reaped."""
        stop_child(self.process)
        if self.process is not None:
            self.process.wait()  # reaped, also when it had exited already

    def reap(self, timeout: float = 10.0) -> None:
        """Wait for a process a fault killed (no zombie left)."""
        if self.process is not None:
            self.process.wait(timeout=timeout)


@dataclass
class Outcome:
    """What one triage concluded, in the matrix's terms."""

    fault: str | None
    severity: str | None
    playbook: str | None
    run_on: str | None
    unknown: str | None  # the question the walk stopped at
    exit_code: int | None
    path: list[tuple[str, str, str]]

    def explain(self) -> str:
        return "\n".join(f"  {node}: {answer} — {evidence}" for node, answer, evidence in self.path)


class Fleet:
    """One topology of real node processes under ``root``; ``engine`` for the nodes that take the case's."""

    def __init__(
        self,
        root: Path,
        topology: str,
        engine: str,
        *,
        backup: bool = False,
        peers: bool = True,
        data_root: Path | None = None,
        archive: bool = False,
        extra: list[str] | None = None,
    ) -> None:
        self.root = root
        self.topology = topology
        self.nodes: dict[str, NodeProc] = {}
        self.thresholds: dict[str, float] = {}
        self.cleanups: list[Callable[[], None]] = []
        (root / "logs").mkdir(parents=True, exist_ok=True)
        for name, role, _follows, fixed in TOPOLOGIES[topology]:
            node = NodeProc(
                name,
                fixed or engine,
                (data_root or root / "nodes") / name,
                root / "logs" / f"{name}.log",
                role=role,
                extra=list(extra or []),
            )
            if backup or archive:
                node.backup_repo = root / "backups" / name
            if archive:
                node.extra += ["--archive", str(node.backup_repo)]
            self.nodes[name] = node
        for name, _role, follows, _fixed in TOPOLOGIES[topology]:
            if follows is not None:
                self.nodes[name].follow = self.nodes[follows].url
                if peers and topology == "pair":  # the pair polls each other (fencing, split-brain flags)
                    self.nodes[name].peers = [self.nodes[follows].url]
                    self.nodes[follows].peers = [self.nodes[name].url]

    # ------------------------------------------------------------------ life
    def start(self, *, keys: int = 200) -> Fleet:
        for node in self.nodes.values():
            if node.role == "primary":
                node.start()
        for node in self.nodes.values():
            if node.role != "primary":
                node.start()
        for node in self.nodes.values():
            if node.role == "primary":
                self.seed(node, keys)
        self.wait_caught_up()
        return self

    def seed(self, node: NodeProc, keys: int) -> None:
        with node.client() as client:
            for index in range(keys):
                client.put(f"{node.name}:{index:05d}".encode(), os.urandom(48).hex().encode())
            client.admin("flush")  # tables / pages on disk, not only the WAL
            for index in range(keys // 4):
                client.put(f"{node.name}:late:{index:05d}".encode(), b"after the flush")

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for node in self.nodes.values():
            if node.role == "primary" or node.follow is None:
                continue
            primary = next(other for other in self.nodes.values() if other.url == node.follow)
            with primary.client() as upstream, node.client() as standby:
                while time.monotonic() < deadline:
                    if standby.replication().get("applied_lsn") == upstream.health().get("last_lsn"):
                        break
                    time.sleep(0.05)
                else:
                    raise AssertionError(f"{node.name} did not catch up with {primary.name} in {timeout:g} s")

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()
        for cleanup in reversed(self.cleanups):
            cleanup()

    # ------------------------------------------------------------------ config and triage
    def config(self, *, remote: bool = False, logs: bool | None = None) -> Path:
        """drconsole.toml for the fleet: data dirs and logs here (the console on the nodes' host) or URLs only."""
        logs = not remote if logs is None else logs
        lines = ["[console]", 'source = "auto"', ""]
        if self.thresholds:
            lines += ["[thresholds]", *(f"{key} = {value!r}" for key, value in self.thresholds.items()), ""]
        for node in self.nodes.values():
            lines += [
                "[[node]]",
                f'name = "{node.name}"',
                f'engine = "{node.engine}"',
                f'url = "{node.url}"',
                f'role = "{node.role}"',
            ]
            if not remote:
                lines.append(f'data_dir = "{node.data_dir}"')
            if logs:
                lines.append(f'log_file = "{node.log_file}"')
            if node.backup_repo is not None and not remote:
                lines.append(f'backup_repo = "{node.backup_repo}"')
            if node.follow is not None and self.topology != "two-groups":
                upstream = next(other.name for other in self.nodes.values() if other.url == node.follow)
                lines.append(f'upstream = "{upstream}"')
            if self.topology == "two-groups" and node.name in EXPLICIT_GROUPS:
                lines.append(f'group = "{EXPLICIT_GROUPS[node.name]}"')
            lines.append("")
        path = self.root / ("remote.toml" if remote else "drconsole.toml")
        path.write_text("\n".join(lines), encoding="utf-8")
        return path

    def triage(
        self, node: str, capsys: pytest.CaptureFixture[str], *, remote: bool = False, logs: bool | None = None
    ) -> Outcome:
        """``drconsole --config C triage --node NODE --json --read-only``, in this process."""
        config = self.config(remote=remote, logs=logs)
        capsys.readouterr()
        code = cli_main(["--config", str(config), "triage", "--node", node, "--json", "--read-only"])
        captured = capsys.readouterr()
        assert "Traceback (most recent call last)" not in captured.err + captured.out
        report = json.loads(captured.out)
        unknown = report.get("unknown")
        return Outcome(
            report["fault"],
            report["severity"],
            (report["recommended"] or [None])[0],
            report["run_on"],
            unknown["node"] if unknown else None,
            code,
            [(row["node"], row["answer"], row["evidence"]) for row in report["path"]],
        )

    def console_triage(self, node: str, *, remote: bool = False, logs: bool | None = None) -> Outcome:
        """The console's walk of ``node``: its triage factory on a snapshot of the configured sources."""
        config = load_config(self.config(remote=remote, logs=logs))

        async def collect() -> Any:
            source = fleet_source(config.nodes, **config.source_options())
            try:
                return await source.collect()
            finally:
                await source.aclose()

        view = triage_factory(config)(asyncio.run(collect()), node)
        path = []
        while not view.current().is_leaf:
            question = view.current().id
            found = view.probe(question)
            path.append((question, {True: "yes", False: "no", None: "unknown"}[found.answer], found.evidence))
            if found.answer is None:
                return Outcome(None, None, None, None, question, None, path)
            view.answer(found.answer)
        recommended = [item.playbook_id for item in view.recommended()]
        return Outcome(
            view.fault(),
            view.severity(),
            recommended[0] if recommended else None,
            view.run_on() if view.fault() else None,
            None,
            None,
            path,
        )
