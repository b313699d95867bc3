"""Node actions that rebuild: salvage a diverged tail, stop, restart and start a node, rejoin it.

    node.salvage       give the new primary the acknowledged writes only the old one holds
    node.stop          stop the process serving the data dir (what a supervisor's stop does)
    node.restart       stop and start the node with its own command line (a hung or isolated node)
    node.start         start ``node serve`` on the data dir (total cluster loss: seeds first)
    node.rejoin        the old primary rejoins as a standby of the new one; a diverged one is reseeded

The nodes, the target and the helpers are those of ``node_actions``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from engines.backup import restore_backup
from engines.errors import NotFoundError, SafetyRefusal
from engines.fsutil import QUARANTINE_DIR, atomic_write_text, fsync_dir, utc_stamp
from engines.node.client import NodeClient
from engines.node.errors import NodeBadRequestError, NodeRefusedError
from engines.node.handover import decode_bytes, encode_bytes
from engines.node.state import NodeState, save_state
from engines.registry import open_engine
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.actions.exclusive import exclusive
from playbooks.actions.node_actions import (
    describe_change,
    members_of,
    remember,
    remembered,
    the_primary,
    wait_for_node,
)
from playbooks.actions.node_cluster import Member, divergence, histories_of, node_url, read_tail, survey
from playbooks.actions.node_process import ServingProcess, relaunch, serving_process, stop_process

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[2]
_APPLY_BYTES = 4 * 2**20  # base64 bytes per POST /admin/apply (the node takes up to 48 MiB)


# ------------------------------------------------------------------------------------------- salvage
def _salvage_file(context: ActionContext, rows: list[dict[str, Any]]) -> Path:
    path = context.quarantine() / f"diverged-{utc_stamp()}.jsonl"
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
    return path


def _batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``rows`` cut into requests of about ``_APPLY_BYTES`` each (one row at least)."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for row in rows:
        weight = sum(len(value or "") for value in row.values()) + 64
        if batches[-1] and size + weight > _APPLY_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(row)
        size += weight
    return [batch for batch in batches if batch]


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="backslashreplace")


@action(
    "node.salvage",
    writes=True,
    describe=describe_change(
        "reads the data dir's WAL after the split; "
        "compare-and-set on the primary for keys it did not "
        "change (POST /admin/apply)"
    ),
)
def salvage(
    context: ActionContext, *, nodes: str | None = None, primary: str | None = None, release: bool | str = False
) -> ActionResult:
    """Give the primary the acknowledged writes only this data dir holds (its log after the split).

    A key is re-applied when the primary still holds what it held at the split (it never changed
    it); a key both sides changed is a conflict, left as the primary has it. The primary does the
    compare-and-set itself (``POST /admin/apply``, one batch). Every divergent record is kept in the
    run's quarantine as JSON lines, for reconciliation by the application. ``release``: end the
    primary's write hold afterwards (a failover's handover), whatever happened here.
    A data dir still served by a live node cut off from here is not read: its tail is still growing;
    it is salvaged when the node rejoins (rebuild-primary).
    """
    data_dir = context.require_data_dir()
    members = members_of(context, nodes)
    winner = the_primary(members, primary)
    try:
        return _salvage_into(context, data_dir, winner)
    finally:
        if str(release).lower() in ("1", "true", "yes"):
            with NodeClient(winner.url, timeout=10.0) as client:
                released = client.admin("release-writes")
            context.log(f"{winner.url} takes client writes again (held {released.get('held_seconds', 0)} s)")


def _salvage_into(context: ActionContext, data_dir: Path, winner: Member) -> ActionResult:
    own = node_url(data_dir)
    if own == winner.url:
        return ActionResult(True, f"{data_dir} is the primary's own data dir: nothing to salvage", {"applied": 0})
    serving = serving_process(data_dir)
    if (
        serving is not None
        and own is not None
        and own not in {m.url for m in survey([own], timeout=1.0) if m.reachable}
    ):
        return ActionResult(
            True,
            f"{data_dir} is still served by pid {serving.pid} ({own}), which does not answer "
            "here: its log after the split is still growing; it is salvaged when the node "
            "rejoins (rebuild-primary)",
            {"applied": 0, "deferred": True},
        )
    history, role = histories_of(data_dir)
    split = divergence(history, role, winner.history, winner.epoch)
    if split is None:
        return ActionResult(
            True, f"{data_dir} and {winner.url} share one timeline: nothing diverged", {"applied": 0, "split": None}
        )
    tail = read_tail(data_dir, split)
    keys = list(tail.newest)
    rows = [
        {
            "key": encode_bytes(key),
            "value": encode_bytes(tail.newest[key]),
            "expect": encode_bytes(tail.before.get(key)),
        }
        for key in keys
    ]
    outcomes: list[dict[str, Any]] = []
    with NodeClient(winner.url, timeout=60.0) as client:
        for batch in _batches(rows):
            outcomes += client.admin("apply", rows=batch)["rows"]
    counts = {"applied": 0, "present": 0, "conflict": 0}
    saved_rows, conflicts = [], []
    for key, outcome in zip(keys, outcomes):
        counts[outcome["outcome"]] += 1
        if outcome["outcome"] == "conflict":
            conflicts.append(_text(key))
        current = decode_bytes(outcome.get("current"), "current")
        saved_rows.append(
            {
                "key": _text(key),
                "value": _text(tail.newest[key]),
                "primary_value": _text(current),
                "outcome": outcome["outcome"],
            }
        )
    saved = _salvage_file(context, saved_rows) if saved_rows else None
    lost = (
        [
            f"{len(conflicts)} key(s) changed on both sides after LSN {split} (kept in {saved}): "
            f"{', '.join(str(key) for key in conflicts[:5])}"
        ]
        if conflicts
        else []
    )
    if tail.gap is not None:
        lost.append(
            f"LSNs {tail.gap[0]}..{tail.gap[1]} of {data_dir} are no longer in its WAL (flushed and "
            "recycled); compare `engine export` of both sides for them"
        )
    return ActionResult(
        True,
        f"{tail.records} record(s) after LSN {split} in {data_dir}: {counts['applied']} key(s) "
        f"re-applied to {winner.url}, {counts['present']} already there, "
        f"{counts['conflict']} conflict(s)",
        {
            "split": split,
            "records": tail.records,
            **counts,
            "conflicts": counts["conflict"],
            "conflict_keys": conflicts[:100],
            "file": str(saved) if saved else None,
            "lost": lost,
        },
        touched=[str(saved)] if saved else [],
    )


# ------------------------------------------------------------------------------------------- processes
@action("node.stop", writes=True, describe=describe_change("SIGTERM to the process serving the data dir"))
def stop(context: ActionContext, *, grace_seconds: float = 10.0) -> ActionResult:
    """Stop the process serving the data dir (SIGTERM, SIGKILL after the grace period); its command line is kept."""
    data_dir = context.require_data_dir()
    serving = serving_process(data_dir)
    if serving is None:
        return ActionResult(True, f"no process serves {data_dir}: already stopped", {"stopped": False})
    remember(context, serving)
    how = stop_process(serving.pid, grace_seconds=float(grace_seconds))
    return ActionResult(
        True,
        f"stopped pid {serving.pid} ({how}); its command line is kept for the restart",
        {"stopped": True, "pid": serving.pid, "how": how, "url": serving.url},
    )


def _start(context: ActionContext, serving: ServingProcess) -> int:
    return relaunch(serving, context.run_dir / "node.log", drop=("--follow",))


@action("node.restart", writes=True, describe=describe_change("stop and start the node with its own command line"))
def restart(context: ActionContext, *, timeout: float = 30.0) -> ActionResult:
    """Restart the node serving the data dir with the same command line (a hung or isolated node)."""
    data_dir = context.require_data_dir()
    serving = serving_process(data_dir)
    if serving is not None:
        remember(context, serving)
        how = stop_process(serving.pid, grace_seconds=5.0)
    else:
        serving, how = remembered(context), "not running"
        if serving is None:
            raise NotFoundError(
                f"no process serves {data_dir} and this run has not stopped one: its command line is unknown",
                hint="start it by hand: drconsole node serve --data-dir ...",
            )
    pid = relaunch(serving, context.run_dir / "node.log")
    member = wait_for_node(serving.url or "", timeout=float(timeout)) if serving.url else None
    return ActionResult(
        True,
        f"restarted {data_dir} (old process: {how}; new pid {pid})" + (f": {member.describe()}" if member else ""),
        {"pid": pid, "url": serving.url},
    )


@action("node.start", writes=True, describe=describe_change("starts drconsole node serve on the data dir"))
def start(
    context: ActionContext,
    *,
    port: int | str | None = None,
    follow: str | None = None,
    host: str | None = None,
    archive: str | None = None,
    timeout: float = 30.0,
) -> ActionResult:
    """Start ``drconsole node serve`` on the data dir (port given), as a standby when ``follow`` is.

    ``host``: the address it listens on (default loopback); another one is a network the clients
    reach it over (a replacement host's), so it is allowed and advertised as such. ``archive``: the
    repository its WAL goes to (``--archive``; a node rebuilt from a repository goes on archiving there).
    """
    data_dir = context.require_data_dir()
    running = serving_process(data_dir)
    if running is not None:
        return ActionResult(
            True,
            f"{data_dir} is already served by pid {running.pid} ({running.url})",
            {"url": running.url, "started": False},
        )
    if port in (None, ""):
        return ActionResult(
            True,
            f"no port given: start it by hand: drconsole node serve --data-dir {data_dir} --port P",
            {"started": False},
        )
    command = [
        sys.executable,
        "-m",
        "console.cli",
        "node",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(int(port)),
        "--log-level",
        "warning",
    ]
    if follow:
        command += ["--follow", str(follow)]
    if archive:
        command += ["--archive", str(archive)]
    address = host or "127.0.0.1"
    url = f"http://{address}:{int(port)}"
    if address != "127.0.0.1":
        command += ["--host", address, "--allow-remote", "--advertise-url", url]
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    pid = relaunch(ServingProcess(0, tuple(command), str(ROOT), environ), context.run_dir / "node.log")
    member = wait_for_node(url, timeout=float(timeout))
    return ActionResult(True, f"started pid {pid}: {member.describe()}", {"url": url, "pid": pid, "started": True})


@action(
    "node.repoint",
    writes=True,
    describe=describe_change("POST /admin/rejoin on each standby that follows another node than the primary"),
)
def repoint(
    context: ActionContext, *, nodes: str | None = None, primary: str | None = None, timeout: float = 30.0
) -> ActionResult:
    """Every reachable standby that follows another node than the primary follows the primary now.

    After a failover the other standbys still follow the old primary. ``/admin/rejoin`` makes each
    follow the new one: one whose log is a prefix of the new primary's is just demoted onto it; one
    that applied records the new primary never had sets them aside itself (exported, its data dir
    kept in quarantine). A standby that does not answer is left to its own playbook.
    """
    members = members_of(context, nodes)
    winner = the_primary(members, primary)
    moved: list[dict[str, Any]] = []
    for member in members:  # an unreachable one has no known role: not one of these
        if member.url == winner.url or member.role != "standby" or (member.upstream or "").rstrip("/") == winner.url:
            continue
        with NodeClient(member.url, timeout=60.0) as client:
            answer = client.admin("rejoin", primary=winner.url)
        moved.append({"url": member.url, "diverged": bool(answer.get("diverged"))})
    for entry in moved:
        wait_for_node(str(entry["url"]), timeout=float(timeout), role="standby")
    if not moved:
        return ActionResult(True, f"every reachable standby follows {winner.url}", {"moved": [], "primary": winner.url})
    return ActionResult(
        True,
        f"{len(moved)} standby(s) now follow {winner.url}: "
        + ", ".join(f"{m['url']}{' (diverged tail set aside)' if m['diverged'] else ''}" for m in moved),
        {"moved": moved, "primary": winner.url},
    )


# ------------------------------------------------------------------------------------------- rejoin
def _checkpoint_from(primary: Member, staging: Path) -> int:
    """A consistent copy of the primary's data, written by the primary into ``staging`` (same host)."""
    with NodeClient(primary.url, timeout=120.0) as client:
        answer = client.admin("checkpoint", dest=str(staging))
    if not staging.is_dir():
        raise NotFoundError(
            f"{primary.url} wrote its checkpoint to {staging} on its own host, not this one",
            hint="reseed from a backup of the primary: playbook restore, then rejoin",
        )
    return int(answer.get("lsn", 0))


def _standby_state(primary: Member) -> NodeState:
    return NodeState(
        role="standby", upstream=primary.url, known_epoch=primary.epoch or 0, history=list(primary.history)
    )


def _reseed(context: ActionContext, data_dir: Path, primary: Member, repo: str | None) -> dict[str, Any]:
    """Build a standby beside the data dir from the primary's checkpoint (or, with ``repo``, from the
    newest backup there), then swap it in whole; the old data dir moves to
    ``<parent>/.quarantine/rejoin-<ts>-<name>``, never deleted. The standby then follows the primary
    from the LSN it was seeded at."""
    parent, name = data_dir.parent, data_dir.name
    staging = parent / f".{name}.reseed-{context.run_id}"
    if staging.exists():
        raise SafetyRefusal(
            f"{staging} exists (a reseed cut off before?); it is left as it is",
            hint="move it aside, then resume the run",
        )
    lsn = restore_backup(repo, staging).lsn if repo else _checkpoint_from(primary, staging)
    save_state(staging, _standby_state(primary))
    fsync_dir(staging)
    aside = parent / QUARANTINE_DIR / f"rejoin-{utc_stamp()}-{name}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(data_dir, "reseed it"):
        os.rename(data_dir, aside)
    os.rename(staging, data_dir)
    fsync_dir(parent)
    fsync_dir(aside.parent)
    return {"reseeded": True, "checkpoint_lsn": lsn, "quarantine": str(aside)}


@action(
    "node.rejoin",
    writes=True,
    describe=describe_change(
        "POST /admin/rejoin or /admin/demote; a diverged "
        "data dir moves to quarantine and is reseeded "
        "from the primary's checkpoint"
    ),
)
def rejoin(
    context: ActionContext,
    *,
    nodes: str | None = None,
    primary: str | None = None,
    repo: str | None = None,
    timeout: float = 60.0,
) -> ActionResult:
    """The data dir's node rejoins as a standby of the primary; a diverged one is reseeded from it.

    Running: ``/admin/rejoin {primary}`` (the node sets a diverged tail aside itself), else
    ``/admin/demote`` when its log did not diverge. Stopped: a data dir
    whose log went past the split is quarantined whole and rebuilt from the primary's checkpoint
    (salvage its tail first: node.salvage); one that did not diverge just has its saved state
    turned into a standby's. A node this run stopped is started again with its own command line.
    ``repo``: reseed from the newest backup of the primary there instead (a primary on another host).
    """
    data_dir = context.require_data_dir()
    members = members_of(context, nodes)
    winner = the_primary(members, primary)
    own = node_url(data_dir)
    if own == winner.url:
        return ActionResult(True, f"{data_dir} is the primary's own data dir: nothing to rejoin", {"rejoined": False})
    if own:
        with NodeClient(own, timeout=60.0) as client:
            try:
                # The node sets a diverged tail aside itself (exported, its data dir quarantined)
                # and follows the primary from a fresh data dir.
                answer = client.admin("rejoin", primary=winner.url)
                how = "rejoin"
            except (NodeBadRequestError, NodeRefusedError):  # no /admin/rejoin here, or it found no fork
                # point (two primaries in one epoch): demote, unless its log diverged
                mine = next((m for m in members if m.url == own), None) or survey([own])[0]
                split = divergence(mine.history, mine.role, winner.history, winner.epoch)
                if split is not None and (mine.applied_lsn or 0) > split:
                    raise SafetyRefusal(
                        f"{own} went {(mine.applied_lsn or 0) - split} record(s) past the split at "
                        f"LSN {split}: it cannot follow {winner.url} as it is",
                        hint="salvage its tail (node.salvage), stop it (node.stop), then rejoin: "
                        "it is reseeded from the primary",
                    ) from None
                answer, how = client.demote(winner.url), "demote"
        member = wait_for_node(own, timeout=float(timeout), role="standby", caught_up=True)
        return ActionResult(
            True,
            f"{own} rejoined as a standby of {winner.url} ({how}): {member.describe()}",
            {"rejoined": True, "how": how, "answer": answer, "url": own},
        )
    if not data_dir.exists():
        raise NotFoundError(f"{data_dir} does not exist", hint="restore it from a backup, then rejoin")
    history, role = histories_of(data_dir)
    split = divergence(history, role, winner.history, winner.epoch)
    with open_engine(data_dir, mode="ro") as engine:
        last = engine.last_lsn
    diverged = split is not None and last > split
    if diverged:
        details = _reseed(context, data_dir, winner, repo)
        source = f"the backup in {repo}" if repo else f"{winner.url}'s checkpoint"
        what = (
            f"{data_dir} went {last - (split or 0)} record(s) past the split at LSN {split}: moved to "
            f"{details['quarantine']} and reseeded from {source} at LSN {details['checkpoint_lsn']}"
        )
    else:
        with exclusive(data_dir, "make it a standby"):
            save_state(data_dir, _standby_state(winner))
        details = {"reseeded": False}
        what = f"{data_dir} did not diverge (LSN {last}, split {split}): its saved state now follows {winner.url}"
    serving = remembered(context)
    if serving is None or not serving.url:
        return ActionResult(
            True,
            f"{what}; start the node: it comes up as a standby of {winner.url}",
            {"rejoined": True, "started": False, **details},
            touched=[str(data_dir)],
        )
    pid = _start(context, serving)
    member = wait_for_node(serving.url, timeout=float(timeout), role="standby", caught_up=True)
    return ActionResult(
        True,
        f"{what}; started again (pid {pid}): {member.describe()}",
        {"rejoined": True, "started": True, "pid": pid, "url": serving.url, **details},
        touched=[str(data_dir)],
    )
