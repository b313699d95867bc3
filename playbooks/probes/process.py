"""Probes of a node's process: did it crash (and how, from its log and the kernel's), is a group member's hung?

Where a node's log is (in this order): ``log_file`` of its ``[[node]]`` (``node serve --log-file``),
else systemd's journal for ``drconsole-node@NAME`` (the shipped unit). The kernel's OOM-kill lines
are read where this user may. The lines used are shown with the answer (``data["lines"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.errors import EngineError
from playbooks.evidence import lock_held, unclean_shutdown
from playbooks.nodelog import START, Ending, classify, journal_lines, kernel_oom_kills, read_log_tail
from playbooks.probes.base import Answer, ProbeContext, probe
from playbooks.probes.fleet import down_primary, fleet_nodes, lost_member, target_node
from playbooks.probes.local import hung_answer

__all__ = ["node_ending"]


def _alive(context: ProbeContext, name: str | None) -> bool | None:
    """Whether the node's process still runs, as far as can be told from here (None: it cannot).

    Its data dir here: whether a process holds its lock. Else its URL refusing connections says no
    process listens there any more (a timeout would be a hung process, or the network).
    """
    data_dir = context.data_dir_of(name)
    if data_dir is not None and data_dir.exists():
        return lock_held(data_dir)
    node = next((item for item in fleet_nodes(context) if item.name == name), None)
    if node is not None and not node.reachable and "connection refused" in node.health_reason:
        return False
    return None


def node_ending(context: ProbeContext, name: str | None) -> tuple[Ending | None, str]:
    """How node ``name``'s last process ended according to its log, and where the log was read."""
    lines: list[str] | None = None
    where = ""
    log_file = context.log_file_of(name)
    if log_file is not None:
        try:
            lines, where = read_log_tail(Path(log_file)), f"log {log_file}"
        except OSError as exc:
            where = f"log {log_file} not readable ({exc.strerror or exc})"
    if lines is None and name is not None:
        found = journal_lines(f"drconsole-node@{name}")
        if found and any(START in line for line in found):
            lines, where = found, f"journal of drconsole-node@{name}"
    if lines is None:
        return (
            None,
            where
            or "no log: set log_file in its [[node]] (node serve --log-file), or run it as the drconsole-node@ unit",
        )
    kernel, kernel_note = kernel_oom_kills()
    note = kernel_note if "not readable" in kernel_note else f"{kernel_note}: no OOM kill of it"
    return classify(lines, alive=_alive(context, name), kernel=kernel, kernel_note=note), where


def _meant_to_serve(context: ProbeContext) -> bool:
    """The target has a URL and does not answer: it should be serving and is not."""
    node = target_node(context)
    return node is not None and not node.reachable and node.source in ("http", "prometheus")


@probe("process.crashed")
def process_crashed(context: ProbeContext) -> Answer:
    """Did the node's process crash or stop (its log, the kernel's OOM kills, the WAL's unclean end)?"""
    data_dir = context.data_dir
    if data_dir is not None and lock_held(data_dir):
        return Answer(False, f"a process is running on {data_dir}")
    ending, where = node_ending(context, context.node)
    data: dict[str, Any] = {"log": where}
    if ending is not None:
        data.update({"kind": ending.kind, "lines": ending.lines})
        if ending.crashed:
            return Answer(True, f"{ending.kind}: {ending.sentence} ({where})", data)
        if ending.kind == "clean-exit":
            if _meant_to_serve(context):
                return Answer(
                    True,
                    f"stopped: {ending.sentence} ({where}), yet its url does not answer: it should be serving",
                    data,
                )
            return Answer(False, f"{ending.sentence} ({where})", data)
    if data_dir is None:
        node = target_node(context)
        if node is not None and node.reachable:
            return Answer(False, f"{node.name} answers: its process runs", data)
        return Answer(
            None,
            f"{context.node or 'the node'} does not answer, its data dir is not on this host and "
            f"{where}: why it stopped cannot be read from here",
            data,
        )
    try:
        found = unclean_shutdown(data_dir)
    except EngineError as exc:
        return Answer(None, f"cannot tell: the dir does not open read-only ({exc.message}); {where}", data)
    if found.torn_tail:
        data["kind"] = data.get("kind") or "unclean"
        return Answer(
            True,
            f"the WAL ends in a torn record ({found.torn_tail}): the writer died mid-append; {where}",
            {**data, "torn_tail": found.torn_tail},
        )
    if found.unflushed_records:
        data["kind"] = data.get("kind") or "unclean"
        return Answer(
            True,
            f"the WAL holds {found.unflushed_records} records (LSN {found.first_lsn}..{found.last_lsn}) "
            f"the store never flushed: the last process stopped without a clean close; {where}",
            {**data, "unflushed_records": found.unflushed_records},
        )
    if _meant_to_serve(context):
        return Answer(
            True,
            f"no process runs on {data_dir} while its url does not answer; the last close was clean "
            f"(the store covers the WAL); {where}",
            {**data, "kind": data.get("kind") or "stopped"},
        )
    return Answer(
        False, f"no process running and the last one closed cleanly (the store covers the whole WAL); {where}", data
    )


# ------------------------------------------------------------------------------------------- group members
def _hung_here(context: ProbeContext, name: str | None, what: str) -> Answer:
    if name is None:
        return Answer(False, f"no {what} found")
    data_dir = context.data_dir_of(name)
    if data_dir is None or not data_dir.exists():
        return Answer(
            False,
            f"{name}'s data dir is not on this host: its process cannot be looked at from here",
            {"subject": name},
        )
    found = hung_answer(data_dir)
    found.data["subject"] = name
    return found


@probe("replication.primary_hung_here")
def primary_hung_here(context: ProbeContext) -> Answer:
    """Is the down primary's process on this host, alive but hung (stopped, or silent on /health)?"""
    node = down_primary(context)
    return _hung_here(context, node.name if node is not None else None, "down primary")


@probe("cluster.member_hung_here")
def member_hung_here(context: ProbeContext) -> Answer:
    """Is that member's process on this host, alive but hung (stopped, or silent on /health)?"""
    node = lost_member(context)
    return _hung_here(context, node.name if node is not None else None, "member that does not answer")


@probe("cluster.member_dead_here")
def member_dead_here(context: ProbeContext) -> Answer:
    """Has that member's process on this host died (no process holds its data dir)?"""
    node = lost_member(context)
    if node is None:
        return Answer(False, "no member that does not answer")
    data_dir = context.data_dir_of(node.name)
    if data_dir is None or not data_dir.exists():
        return Answer(
            False,
            f"{node.name}'s data dir is not on this host: whether its process runs cannot be seen from here",
            {"subject": node.name},
        )
    if lock_held(data_dir):
        return Answer(False, f"a process holds {node.name}'s data dir {data_dir}", {"subject": node.name})
    ending, where = node_ending(context, node.name)
    how = f"; {ending.sentence} ({where})" if ending is not None else f"; {where}"
    return Answer(
        True,
        f"no process holds {node.name}'s data dir {data_dir}{how}",
        {"subject": node.name, "lines": ending.lines if ending is not None else []},
    )
