"""The ground-truth matrix of the decision tree: topology x state -> conclusion, severity, first playbook.

One row per case. ``state`` is "healthy", a kind of ``drconsole fault list`` (injected for real with
``faults.inject``, the code behind ``drconsole fault inject``), or a state no fault kind
makes: "stale-backup" (the backup-age limit passed), "archive-lag" (the archiver failing: its
directory made immutable, as a read-only backup mount is), "all-killed" (every node of the group
SIGKILLed), "promoted" (the standby promoted through its API: the old primary learns the new epoch
from its peer and fences itself). ``on`` is the node the state is put on,
``target`` the node triaged (``drconsole triage --node TARGET``). ``remote``: the config has URLs only
(the console on another host), ``logs`` says whether it still names the nodes' log files.

Expected: ``fault`` (None: no fault) with its ``severity`` and ``playbook`` (the first recommended),
``run_on`` (the node that playbook is for; default the target), or ``unknown`` (the question the walk
must stop at, exit 1). ``fast`` rows run in ``make test`` (one per fault kind and every healthy
shape); the rest in ``make test-all``. ``needs``: "root" (a tmpfs or chattr; skipped elsewhere with
the reason), "health" (the node's ``/health`` corrupt state, branch ``health``).

Why some rows expect what they do, where the fault's name suggests otherwise:
* ``standby-lag`` is a SIGSTOP (faults/cluster.py says so), as is ``process-hang`` on a member of a
  pair: the truth is a stopped process, which a console on the same host sees (process-hang, run on
  it); read from another host it is a member that does not answer (isolated-node).
* ``isolated-node`` and ``network-partition`` cut a node's network in its own namespace, and
  ``two-node-loss`` needs three nodes: this matrix's fleets are on loopback, pairs at most; the
  cluster drills (tests/integration/cluster/test_cluster_drills.py) triage those three, and
  ``total-cluster-loss``, end to end on live nodes, every engine (one of each in ``make test``).
* ``host-loss`` takes a node's host away (the node in a namespace of its own, its data dir and local
  repository): nothing is left on it to triage; the responder runs the host-loss playbook on the
  replacement host, which the host-loss drill does end to end on live nodes, every engine
  (tests/integration/drills/test_host_loss_drill.py, lsm in ``make test``).
* ``accidental-deletion`` deletes keys through the engine: valid writes, no probe can see them; the
  responder reports it (the accidental-deletion playbook), triage rightly finds no fault.
* ``manifest-lost`` and ``meta-corrupt`` are found at a restart (a live lsm node rewrites its
  manifest at its next flush, a cow node its meta page at its next commit): the node is stopped,
  damaged, and cannot start; nothing is lost, so the index is rebuilt, not restored.
* ``backup-corrupt`` leaves no usable recent backup: stale-backup (P2), take a full backup now.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Case", "CASES", "ENGINES"]

ENGINES = ("lsm", "cow", "rocksdb")


@dataclass(frozen=True)
class Case:
    topology: str
    state: str
    engine: str
    target: str
    fault: str | None
    severity: str | None
    playbook: str | None
    run_on: str | None = None
    on: str | None = None
    remote: bool = False
    logs: bool | None = None
    unknown: str | None = None
    fast: bool = False
    needs: str = ""

    @property
    def id(self) -> str:
        where = "-remote" if self.remote else ""
        seen = "" if self.on in (None, self.target) else f"-on-{self.on}"
        return f"{self.topology}{where}-{self.state}-{self.engine}{seen}-triage-{self.target}"


def _healthy() -> list[Case]:
    rows = []
    for topology, nodes in (
        ("single", ["n1"]),
        ("pair", ["p", "s"]),
        ("independent", ["orders", "ledger", "cache"]),
        ("two-groups", ["a1", "a2", "b1", "b2"]),
    ):
        for remote in (False, True):
            for node in nodes:
                rows.append(Case(topology, "healthy", "lsm", node, None, None, None, remote=remote, fast=True))
    return rows


def _per_engine(
    state: str,
    fault: str | None,
    severity: str | None,
    playbook: str | None,
    engines: tuple[str, ...],
    *,
    fast_engine: str | None,
    needs: str = "",
    topology: str = "single",
    target: str = "n1",
    **extra: object,
) -> list[Case]:
    return [
        Case(
            topology, state, engine, target, fault, severity, playbook, fast=engine == fast_engine, needs=needs, **extra
        )
        for engine in engines
    ]  # type: ignore[arg-type]


CASES: list[Case] = [
    *_healthy(),
    # ---------------------------------------------------------------- one node, its data dir here
    *_per_engine("wal-corrupt-tail", "wal-corruption", "P0", "wal-truncate", ENGINES, fast_engine="lsm"),
    *_per_engine("wal-corrupt-middle", "wal-corruption", "P0", "wal-truncate", ENGINES, fast_engine="rocksdb"),
    *_per_engine("page-corrupt", "data-corruption", "P0", "data-recovery", ("cow",), fast_engine="cow"),
    *_per_engine("meta-corrupt", "index-lost", "P0", "rebuild-manifest", ("cow",), fast_engine="cow"),
    *_per_engine("sstable-corrupt", "data-corruption", "P0", "data-recovery", ("lsm",), fast_engine="lsm"),
    *_per_engine("sst-corrupt", "data-corruption", "P0", "data-recovery", ("rocksdb",), fast_engine="rocksdb"),
    *_per_engine("manifest-lost", "index-lost", "P0", "rebuild-manifest", ("lsm", "rocksdb"), fast_engine="lsm"),
    *_per_engine("process-kill", "process-crash", "P1", "process-crash", ENGINES, fast_engine="cow"),
    *_per_engine("process-hang", "process-hang", "P1", "process-hang", ENGINES, fast_engine="lsm"),
    *_per_engine("accidental-deletion", None, None, None, ENGINES, fast_engine="rocksdb"),
    *_per_engine("ransomware", "ransomware", "P0", "ransomware", ENGINES, fast_engine="cow"),
    *_per_engine("backup-corrupt", "stale-backup", "P2", "backup-full", ENGINES, fast_engine="lsm"),
    *_per_engine("config-broken", "config-error", "P1", "config-recovery", ENGINES, fast_engine="rocksdb"),
    *_per_engine("disk-full", "disk-full", "P0", "disk-space", ENGINES, fast_engine="lsm", needs="root"),
    *_per_engine("memory-pressure", "memory-exhausted", "P1", "memory-recovery", ENGINES, fast_engine="cow"),
    *_per_engine("stale-backup", "stale-backup", "P2", "backup-full", ENGINES, fast_engine="rocksdb"),
    *_per_engine("archive-lag", "archive-lag", "P2", "backup-incremental", ENGINES, fast_engine="lsm", needs="root"),
    # ---------------------------------------------------------------- one node read over HTTP only
    Case("single", "process-kill", "lsm", "n1", None, None, None, remote=True, unknown="remote-crashed", fast=True),
    Case("single", "process-kill", "rocksdb", "n1", "process-crash", "P1", "process-crash", remote=True, logs=True),
    Case(
        "single",
        "sstable-corrupt",
        "lsm",
        "n1",
        "data-corruption",
        "P0",
        "data-recovery",
        remote=True,
        needs="health",
        fast=True,
    ),
    Case("single", "page-corrupt", "cow", "n1", "data-corruption", "P0", "data-recovery", remote=True, needs="health"),
    Case(
        "single", "sst-corrupt", "rocksdb", "n1", "data-corruption", "P0", "data-recovery", remote=True, needs="health"
    ),
    # ---------------------------------------------------------------- a primary and its standby
    *_per_engine(
        "primary-loss",
        "primary-down",
        "P1",
        "failover",
        ENGINES,
        fast_engine="lsm",
        topology="pair",
        target="s",
        on="p",
        run_on="p",
    ),
    Case("pair", "primary-loss", "cow", "p", "primary-down", "P1", "failover", run_on="p", on="p"),
    Case("pair", "primary-loss", "rocksdb", "s", "primary-down", "P1", "failover", run_on="p", on="p", remote=True),
    *_per_engine(
        "split-brain",
        "split-brain",
        "P0",
        "split-brain",
        ENGINES,
        fast_engine="rocksdb",
        topology="pair",
        target="p",
        on="s",
    ),
    Case("pair", "split-brain", "lsm", "s", "split-brain", "P0", "split-brain", on="s", remote=True),
    *_per_engine(
        "standby-lag",
        "process-hang",
        "P1",
        "process-hang",
        ENGINES,
        fast_engine="cow",
        topology="pair",
        target="p",
        on="s",
        run_on="s",
    ),
    Case("pair", "standby-lag", "lsm", "p", "isolated-node", "P1", "isolated-node", on="s", run_on="s", remote=True),
    *_per_engine(
        "process-hang",
        "process-hang",
        "P1",
        "process-hang",
        ENGINES,
        fast_engine="lsm",
        topology="pair",
        target="s",
        on="p",
        run_on="p",
    ),
    Case("pair", "process-hang", "cow", "s", "process-hang", "P1", "process-hang", on="s", run_on="s"),
    Case("pair", "process-kill", "rocksdb", "p", "process-crash", "P1", "process-crash", on="s", run_on="s"),
    # states no single fault kind makes: both nodes killed; the standby promoted (the old primary fences itself)
    Case("pair", "all-killed", "lsm", "s", "total-cluster-loss", "P0", "total-cluster-loss", remote=True),
    Case("pair", "promoted", "cow", "s", "fenced-node", "P1", "rebuild-primary", run_on="p"),
    # ---------------------------------------------------------------- several groups in one config
    Case(
        "independent", "process-kill", "lsm", "ledger", "process-crash", "P1", "process-crash", on="ledger", fast=True
    ),
    Case("independent", "process-kill", "lsm", "orders", None, None, None, on="ledger", fast=True),
    Case("two-groups", "split-brain", "lsm", "a1", "split-brain", "P0", "split-brain", on="a2", fast=True),
    Case("two-groups", "split-brain", "lsm", "b1", None, None, None, on="a2"),
    Case("two-groups", "primary-loss", "cow", "b2", "primary-down", "P1", "failover", on="b1", run_on="b1"),
    Case("two-groups", "primary-loss", "cow", "a2", None, None, None, on="b1"),
]
