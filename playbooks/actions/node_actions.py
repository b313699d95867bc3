"""Node actions: a cluster of ``drconsole node serve`` processes seen and steered through their HTTP API.

    node.status        every node: reachable, role, epoch, applied LSN (the cluster steps' guard)
    node.compare_lsn   the best standby (highest applied LSN) and what the data dir holds beyond it
    node.peers         each node's view of its peers (isolated: none reachable; partition: views differ)
    node.wait_healthy  poll until the node (or the cluster's primary) is healthy, optionally caught up
    node.fence         stop a node taking writes: the API; a hung process is killed (STONITH) and its
                       saved state fenced so that a restart cannot bring it back as a primary
    node.promote       bump the epoch on the best standby; refused while a primary still answers unfenced
    node.authority     which of two primaries is authoritative (split brain)
    node.wait_converged  every node answers and all name one primary (a partition healed)

``node_rebuild`` holds the rest (salvage, stop, restart, start, rejoin) and uses the helpers here.

The nodes are the ``nodes`` argument (usually ``{nodes}``, the playbook parameter: URLs, comma
separated), else what the data dir's own node names (its URL, ``--follow``, ``--peer``). The run's
data dir is the node the playbook is about: the failed primary, the node to fence or rejoin.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from engines.errors import EngineError, InvalidArgumentError, NotFoundError, SafetyRefusal
from engines.fsutil import atomic_write_text
from engines.node.client import NodeClient
from engines.node.errors import NodeUnreachableError
from engines.node.state import NodeState, load_state, save_state
from engines.registry import open_engine
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.actions.exclusive import exclusive
from playbooks.actions.node_cluster import Member, cluster_urls, node_url, survey
from playbooks.actions.node_process import ServingProcess, serving_process
from playbooks.netns import ask_inside, same_netns

__all__ = ["members_of", "the_primary", "describe_nodes", "describe_change", "remember", "remembered", "wait_for_node"]

_STOPPED_NAME = "stopped-node.json"  # in the run dir: the command line node.stop saw, for node.rejoin/restart


# ------------------------------------------------------------------------------------------- helpers
def members_of(context: ActionContext, nodes: str | None) -> list[Member]:
    urls = cluster_urls(nodes, context.data_dir)
    return survey(urls) if urls else []


def _primaries(members: list[Member]) -> list[Member]:
    return [member for member in members if member.reachable and member.role == "primary"]


def the_primary(members: list[Member], given: str | None = None) -> Member:
    if given:
        for member in members:
            if member.url == given.rstrip("/") and member.reachable:
                return member
        raise NodeUnreachableError(f"the primary {given} does not answer", hint="check the URL, or wait for it")
    primaries = _primaries(members)
    newest = max((member.epoch or 0 for member in primaries), default=0)
    if len(primaries) > 1 and sum(1 for member in primaries if (member.epoch or 0) == newest) == 1:
        # An older epoch's primary has been superseded (a partition healing before it heard of the
        # promotion: it fences itself on its next peer poll); two in the newest epoch are a split brain.
        primaries = [member for member in primaries if (member.epoch or 0) == newest]
    if len(primaries) != 1:
        named = ", ".join(member.url for member in primaries) or "none"
        raise SafetyRefusal(
            f"expected exactly one reachable primary, found {len(primaries)}: {named}",
            hint="resolve the split brain first (playbook split-brain), or name it: --param primary=URL",
        )
    return primaries[0]


def _own(context: ActionContext, url: str | None) -> str | None:
    """The URL of the run's own node (the data dir's): ``url``, else where its serving process listens."""
    return (url or "").rstrip("/") or node_url(context.data_dir)


def describe_nodes(context: ActionContext, **args: Any) -> list[str]:
    urls = cluster_urls(args.get("nodes"), context.data_dir)
    where = ", ".join(urls) if urls else "the nodes the data dir names (none found)"
    return [f"asks {where} over HTTP (GET /health, /replication)"]


def describe_change(what: str) -> Any:
    def describe(context: ActionContext, **args: Any) -> list[str]:
        if "nodes" in args:
            return [*describe_nodes(context, **args), f"{what}; audited"]
        own = args.get("url") or node_url(context.data_dir)
        return [f"the node of {context.target()} ({own or 'no process serves it now'})", f"{what}; audited"]

    return describe


def _stopped_file(context: ActionContext) -> Path:
    return context.run_dir / _STOPPED_NAME


def remember(context: ActionContext, serving: ServingProcess) -> None:
    keep = {
        key: value for key, value in serving.environ.items() if key in ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "HOME")
    }
    context.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        _stopped_file(context),
        json.dumps(
            {
                "cmdline": list(serving.cmdline),
                "cwd": serving.cwd,
                "environ": keep,
                "url": serving.url,
                "netns": serving.netns,
            }
        )
        + "\n",
    )


def remembered(context: ActionContext) -> ServingProcess | None:
    path = _stopped_file(context)
    if not path.exists():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    return ServingProcess(
        0,
        tuple(saved["cmdline"]),
        saved.get("cwd") or "",
        {**os.environ, **saved.get("environ", {})},
        saved.get("netns"),
    )


def wait_for_node(url: str, *, timeout: float, role: str | None = None, caught_up: bool = False) -> Member:
    deadline = time.monotonic() + timeout
    member = Member(url)
    while True:
        member = survey([url], timeout=1.0)[0]
        good = member.reachable and (role is None or member.role == role)
        if good and caught_up and member.role == "standby":
            good = bool(member.connected) and member.lag_records == 0
        if good:
            return member
        if time.monotonic() >= deadline:
            raise NodeUnreachableError(
                f"{url} is not {'a ' + role if role else 'healthy'}"
                f"{' and caught up' if caught_up else ''} after {timeout:g} s: "
                f"{member.describe()}",
                hint="see the node's log",
            )
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------- reads
@action("node.status", writes=False, describe=describe_nodes)
def status(context: ActionContext, *, nodes: str | None = None, expect_one_primary: bool = False) -> ActionResult:
    """Every node of the cluster: reachable, role, epoch, applied LSN (``cluster`` false: no nodes found).

    ``expect_one_primary``: a check after a recovery; it fails unless exactly one node is primary.
    """
    members = members_of(context, nodes)
    if not members:
        return ActionResult(
            True,
            "no nodes: the data dir is not served by a node and no --param nodes was given; "
            "nothing to do for the cluster",
            {"cluster": False, "members": []},
        )
    primaries = _primaries(members)
    unreachable = [member.url for member in members if not member.reachable]
    standbys = [member.url for member in members if member.reachable and member.role == "standby"]
    ok = len(primaries) == 1 or not expect_one_primary
    return ActionResult(
        ok,
        "; ".join(member.describe() for member in members),
        {
            "cluster": True,
            "members": [member.to_json() for member in members],
            "primaries": [member.url for member in primaries],
            "standbys": standbys,
            "unreachable": unreachable,
            "reachable": len(members) - len(unreachable),
            "total": len(members),
            "split_brain": len(primaries) > 1,
            "primary_down": not primaries and bool(standbys),
        },
    )


@action("node.compare_lsn", writes=False, describe=describe_nodes)
def compare_lsn(context: ActionContext, *, nodes: str | None = None) -> ActionResult:
    """The best standby (highest applied LSN), and how far the data dir's own log is ahead of it."""
    members = members_of(context, nodes)
    standbys = sorted(
        (member for member in members if member.reachable and member.role == "standby"),
        key=lambda member: member.applied_lsn or 0,
        reverse=True,
    )
    local_lsn = None
    data_dir = context.data_dir
    if data_dir is not None and data_dir.exists():
        try:
            with open_engine(data_dir, mode="ro") as engine:
                local_lsn = engine.last_lsn
        except EngineError as exc:
            context.log(f"{data_dir} does not open read-only ({exc.message}): its LSN is unknown", "warning")
    if not standbys:
        return ActionResult(False, "no reachable standby to compare", {"best": None, "local_lsn": local_lsn})
    best = standbys[0]
    ahead = None if local_lsn is None else max(0, local_lsn - (best.applied_lsn or 0))
    tail = (
        f"; {data_dir} holds LSN {local_lsn}: {ahead} record(s) the standby never applied" if ahead is not None else ""
    )
    return ActionResult(
        True,
        f"best standby {best.name or best.url} at LSN {best.applied_lsn}{tail}",
        {
            "best": best.url,
            "best_lsn": best.applied_lsn,
            "local_lsn": local_lsn,
            "records_ahead": ahead,
            "standbys": [m.to_json() for m in standbys],
        },
    )


@action("node.peers", writes=False, describe=describe_nodes)
def peers(context: ActionContext, *, nodes: str | None = None) -> ActionResult:
    """Each node's peers: isolated (none reachable), or a partition (nodes name different primaries)."""
    members = members_of(context, nodes)
    isolated = [m.url for m in members if m.reachable and m.peers_total and not m.peers_reachable]
    unreachable = [m.url for m in members if not m.reachable]
    views = {
        m.url if m.role == "primary" else (m.upstream or "") for m in members if m.reachable and m.role != "fenced"
    }
    views.discard("")
    lines = [
        f"{m.url}: {m.peers_reachable}/{m.peers_total} peers reachable" if m.reachable else f"{m.url}: unreachable"
        for m in members
    ]
    own = node_url(context.data_dir)
    return ActionResult(
        True,
        "; ".join(lines) or "no nodes",
        {
            "isolated": isolated,
            "unreachable": unreachable,
            "primaries_named": sorted(views),
            "partition": len(views) > 1,
            "cut_off": bool(isolated or unreachable),
            "self_cut_off": own is not None and (own in isolated or own in unreachable),
            "own": own,
        },
    )


@action("node.wait_healthy", writes=False, describe=describe_nodes)
def wait_healthy(
    context: ActionContext,
    *,
    nodes: str | None = None,
    url: str | None = None,
    role: str | None = None,
    caught_up: bool = False,
    timeout: float = 30.0,
) -> ActionResult:
    """Poll until the node (``url``; else the primary when ``role`` is primary; else the data dir's) is healthy."""
    target = (url or "").rstrip("/")
    if not target and role == "primary":
        target = the_primary(members_of(context, nodes)).url
    target = target or node_url(context.data_dir) or ""
    if not target:
        raise NotFoundError(
            "no node to wait for: no url given and no process serves the data dir",
            hint="start the node, or pass --param nodes=URL,...",
        )
    clock = time.monotonic()
    member = wait_for_node(target, timeout=float(timeout), role=role or None, caught_up=bool(caught_up))
    return ActionResult(
        True,
        f"{member.describe()} (after {time.monotonic() - clock:.1f} s)",
        {"url": target, "member": member.to_json()},
    )


@action("node.authority", writes=False, describe=describe_nodes)
def authority(context: ActionContext, *, nodes: str | None = None, keep: str | None = None) -> ActionResult:
    """Which primary is authoritative: ``keep`` if given, else the highest epoch, then the most writes (LSN).

    ``is_self``: the data dir's own node is that one (the split-brain steps then leave it alone).
    """
    members = members_of(context, nodes)
    live = _primaries(members)
    if not live:
        raise NodeUnreachableError(
            "no reachable primary: nothing to choose from", hint="fail over instead (playbook failover)"
        )
    if keep:
        chosen = the_primary(members, keep)
        why = "named by the responder"
    else:
        chosen = max(live, key=lambda m: (m.epoch or 0, m.applied_lsn or 0))
        why = "highest epoch, then highest LSN (the side that took the most writes)"
    own = node_url(context.data_dir)
    others = [m.url for m in live if m.url != chosen.url]
    return ActionResult(
        True,
        f"authoritative: {chosen.describe()} ({why})"
        + (f"; to fence: {', '.join(others)}" if others else "; no other primary"),
        {"authoritative": chosen.url, "is_self": own == chosen.url, "others": others, "own": own},
    )


@action("node.wait_converged", writes=False, describe=describe_nodes)
def wait_converged(context: ActionContext, *, nodes: str | None = None, timeout: float = 30.0) -> ActionResult:
    """Wait until every node answers and all name one primary (a partition healing on its own)."""
    deadline = time.monotonic() + float(timeout)
    while True:
        members = members_of(context, nodes)
        primaries = _primaries(members)
        named = {m.upstream for m in members if m.reachable and m.role == "standby"} | {m.url for m in primaries}
        if members and all(m.reachable for m in members) and len(primaries) == 1 and named == {primaries[0].url}:
            return ActionResult(
                True,
                f"converged: every node answers and follows {primaries[0].url}",
                {"converged": True, "primary": primaries[0].url},
            )
        if time.monotonic() >= deadline:
            return ActionResult(
                False,
                f"not converged after {float(timeout):g} s: " + "; ".join(m.describe() for m in members),
                {"converged": False},
            )
        time.sleep(0.2)


@action(
    "node.wait_heal",
    writes=True,
    describe=describe_change("waits until a cut-off node answers here; POST /admin/fence on it if it is a primary"),
)
def wait_heal(context: ActionContext, *, nodes: str | None = None, timeout: float = 60.0) -> ActionResult:
    """A node cut off by the network (alive, serving its own namespace): wait until it answers here.

    Nothing is restarted: a restart does not mend a network. Once it answers, an old primary that
    kept taking writes on its side is fenced in the new primary's epoch (it may not have heard of it
    yet), so its log stops growing before it is salvaged. Not cut off: nothing to wait for.
    """
    data_dir = context.require_data_dir()
    serving = serving_process(data_dir)
    if serving is None or not serving.url or not _cut_off(serving):
        return ActionResult(
            True, f"{data_dir} is not served by a node cut off from here: nothing to wait for", {"cut_off": False}
        )
    context.log(
        f"{serving.url} (pid {serving.pid}) serves its namespace {serving.netns} but not this network: "
        f"waiting up to {float(timeout):g} s for the network to heal",
        "warning",
    )
    clock = time.monotonic()
    try:
        member = wait_for_node(serving.url, timeout=float(timeout))
    except NodeUnreachableError as exc:
        raise NodeUnreachableError(
            f"{serving.url} is still cut off after {float(timeout):g} s",
            hint="fix the network (its links, a firewall rule), then run this again",
        ) from exc
    waited = round(time.monotonic() - clock, 3)
    fenced = False
    if member.role == "primary":
        members = members_of(context, nodes)
        newer = [m for m in _primaries(members) if m.url != serving.url and (m.epoch or 0) > (member.epoch or 0)]
        if newer:
            with NodeClient(serving.url, timeout=5.0) as client:
                client.fence(
                    f"rejoined after a partition: {newer[0].url} is primary in epoch {newer[0].epoch} "
                    f"(run {context.run_id})",
                    epoch=newer[0].epoch,
                )
            fenced = True
    return ActionResult(
        True,
        f"{serving.url} answers again after {waited:g} s"
        + ("; fenced (the new primary's epoch is newer): its writes on its side stop here" if fenced else ""),
        {"cut_off": True, "waited_seconds": waited, "fenced": fenced, "url": serving.url},
    )


# ------------------------------------------------------------------------------------------- fencing and promotion
def _fence_saved_state(data_dir: Path, reason: str) -> None:
    """Fence the node in its saved state: a restart then comes back fenced, not as a primary."""
    with exclusive(data_dir, "fence its saved state"):
        state = load_state(data_dir) or NodeState()
        state.role = "fenced"
        state.fence_reason = reason
        save_state(data_dir, state)


@action(
    "node.fence",
    writes=True,
    describe=describe_change("POST /admin/fence, or kill a hung process and fence its saved state"),
)
def fence(context: ActionContext, *, url: str | None = None, reason: str = "fenced by a playbook") -> ActionResult:
    """Stop the node taking writes: through its API; a hung one is killed and its saved state fenced."""
    target = _own(context, url)
    why = f"{reason} (run {context.run_id})"
    if target:
        try:
            with NodeClient(target, timeout=2.0) as client:
                answer = client.fence(why, force=True)  # a confirmed step
            return ActionResult(
                True,
                f"{target} fenced through its API: role {answer.get('role')}, epoch {answer.get('epoch')}",
                {"fenced": True, "how": "api", "url": target},
            )
        except NodeUnreachableError as exc:
            context.log(f"{target} does not answer ({exc.message}); fencing it on this host", "warning")
    data_dir = context.data_dir
    if data_dir is None or (not (data_dir / "node.json").exists() and serving_process(data_dir) is None):
        return ActionResult(
            True,
            "nothing to fence: no node answers for this data dir and it has never been served",
            {"fenced": False, "how": "none"},
        )
    serving = serving_process(data_dir)
    how = "state"
    if serving is not None and serving.url and _cut_off(serving):
        # Not hung: it serves its own network, which is not ours (a partition). Killing a healthy
        # process for a network fault is not ours to do; it fences itself when it hears the new
        # epoch, and what it takes meanwhile is salvaged when it rejoins (rebuild-primary).
        return ActionResult(
            True,
            f"{serving.url} (pid {serving.pid}) does not answer from here but serves its own "
            f"network namespace {serving.netns or '(unnamed)'}: cut off, not hung; not fenced "
            "now: it fences itself on its next contact with the new primary, and its writes "
            "meanwhile are salvaged when it rejoins",
            {
                "fenced": False,
                "how": "cut-off",
                "cut_off": True,
                "pid": serving.pid,
                "url": serving.url,
                "netns": serving.netns,
            },
        )
    if serving is not None:
        # It holds its data dir but answers nothing (hung, SIGSTOPped): shoot it before anyone else
        # takes writes, as STONITH does; it could wake up and write otherwise.
        remember(context, serving)
        os.kill(serving.pid, 9)
        _wait_gone(serving.pid)
        how = "killed+state"
    _fence_saved_state(data_dir, why)
    killed = f"killed the hung process {serving.pid} and " if serving is not None else ""
    return ActionResult(
        True,
        f"{killed}fenced the saved state of {data_dir}: a restart comes back fenced",
        {"fenced": True, "how": how, "pid": serving.pid if serving else None},
        touched=[str(data_dir / "node.json")],
    )


def _cut_off(serving: ServingProcess) -> bool:
    """Running (not stopped), in another network namespace, and answering /health from inside it."""
    if same_netns(serving.pid) or serving.stopped or not serving.url:
        return False
    return ask_inside(serving.pid, serving.url, timeout=1.0) == "answered"


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            finished, _status = os.waitpid(pid, os.WNOHANG)  # our own child: reap it
            if finished:
                return
        except ChildProcessError:
            pass
        if _zombie(pid):
            return
        time.sleep(0.02)


def _zombie(pid: int) -> bool:
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return True


@action("node.promote", writes=True, describe=describe_change("POST /admin/promote on the best standby"))
def promote(
    context: ActionContext, *, nodes: str | None = None, force: bool = False, hold_writes_seconds: float | str = 0
) -> ActionResult:
    """Promote the best standby (highest applied LSN): it takes writes in a new epoch.

    Refused while a primary still answers and is not fenced (two would take writes: a split
    brain), unless ``force``. ``hold_writes_seconds``: the new primary refuses client writes (503)
    until ``node.salvage`` (with ``release``) has applied the old primary's tail, or that many
    seconds (``engines.node.handover``).
    """
    members = members_of(context, nodes)
    if not members:
        raise InvalidArgumentError("no nodes to promote from", hint="pass --param nodes=URL,URL")
    live = _primaries(members)
    forced = str(force).lower() in ("1", "true", "yes")
    if live and context.resuming and len(live) == 1 and all((m.epoch or 0) <= (live[0].epoch or 0) for m in members):
        return ActionResult(
            True,
            f"{live[0].url} is already the primary (the run was cut off after promoting it)",
            {"primary": live[0].url, "epoch": live[0].epoch, "changed": False},
        )
    if live and not forced:
        raise SafetyRefusal(
            f"{', '.join(m.url for m in live)} still answers as primary and is not fenced: "
            "promoting another node would make two primaries",
            hint="fence it first (node.fence), or pass --param force=true if it cannot take writes",
        )
    standbys = sorted(
        (m for m in members if m.reachable and m.role == "standby"), key=lambda m: m.applied_lsn or 0, reverse=True
    )
    if not standbys:
        raise NodeUnreachableError(
            "no reachable standby to promote", hint="restore the primary from a backup instead (playbook restore)"
        )
    best = standbys[0]
    hold = float(hold_writes_seconds or 0)
    with NodeClient(best.url, timeout=10.0) as client:
        answer = client.promote(hold_writes_seconds=hold or None)
    return ActionResult(
        True,
        f"promoted {best.name or best.url} at LSN {best.applied_lsn}: primary in epoch "
        f"{answer.get('epoch')}"
        + (f" ({len(standbys) - 1} other standby(s) must now follow it)" if len(standbys) > 1 else ""),
        {
            "primary": best.url,
            "epoch": answer.get("epoch"),
            "start_lsn": best.applied_lsn,
            "changed": True,
            "forced": forced and bool(live),
            "writes_held": hold or None,
            "other_standbys": [m.url for m in standbys[1:]],
        },
    )
