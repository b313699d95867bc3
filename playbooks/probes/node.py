"""Probes about the target node that answer from whatever is at hand: its data dir here, or the snapshot.

A node whose data dir is on this host is looked at directly (read-only); a node read over HTTP
answers from what it reports (``/health`` with its ``corrupt`` state and corruption detail, disk,
memory, replication, backups). Each probe says which it used. The healthy path of a remote node
needs nothing but the snapshot, so a healthy remote fleet triages to "no fault" without a data dir.
"""

from __future__ import annotations

from typing import Any

import psutil

from engines.errors import EngineError
from fleet.snapshot import Health, NodeSnapshot
from playbooks.evidence import disk_usage, human_bytes
from playbooks.probes.base import Answer, ProbeContext, probe
from playbooks.probes.fleet import target_node
from playbooks.probes.local import largest_process, verify_report

__all__ = ["is_wal_problem", "DISK_FULL_FREE_BYTES"]

DISK_FULL_FREE_BYTES = 4 * 2**20  # less than this free, or 99.5 % used: writes fail (ENOSPC) now


def _remote(context: ProbeContext) -> tuple[NodeSnapshot | None, Answer | None]:
    """The target as the snapshot shows it, or why a remote question cannot be answered."""
    node = target_node(context)
    if node is None:
        if context.node is None:
            return None, Answer(None, "no node named and no data dir: triage one node (--node NAME or --data-dir D)")
        return None, Answer(None, f"{context.node} is not in the fleet snapshot and its data dir is not on this host")
    return node, None


@probe("node.local")
def data_here(context: ProbeContext) -> Answer:
    """Is the node's data dir on this host (so its files and process can be looked at directly)?"""
    if context.data_dir is not None:
        return Answer(True, f"data dir {context.data_dir} is on this host")
    node = target_node(context)
    where = f" (read over {node.source} at {node.address})" if node is not None and node.address else ""
    return Answer(
        False,
        f"no data dir for {context.node or 'the target'} on this host{where}: the node's own report is the evidence",
    )


@probe("node.answers")
def node_answers(context: ProbeContext) -> Answer:
    """Does the node answer its health check?"""
    node, why = _remote(context)
    if node is None:
        return why  # type: ignore[return-value]
    if node.reachable and node.health != Health.DOWN:
        return Answer(True, f"{node.name} answers: {node.health.value} ({node.health_reason})")
    since = f" since {node.unreachable_since:%H:%M:%S %Z}" if node.unreachable_since else ""
    return Answer(False, f"{node.name} does not answer{since}: {node.health_reason}")


def _reported_corruption(node: NodeSnapshot | None) -> Answer | None:
    """Yes from the node's own report (``/health`` status corrupt, with file and offset), else None."""
    if node is None or not node.reachable or (node.health != Health.CORRUPT and node.corruption is None):
        return None
    found = node.corruption
    if found is None:
        return Answer(True, f"{node.name} reports corrupt: {node.health_reason}")
    where = f" in {found.file}" if found.file else ""
    offset = f" at offset {found.offset}" if found.offset is not None else ""
    by = f", found by {found.found_by}" if found.found_by else ""
    since = f" since {found.since:%H:%M:%S %Z}" if found.since else ""
    return Answer(
        True,
        f"{node.name} reports corrupt: {found.detail or node.health_reason}{where}{offset}{by}{since}",
        {"problems": [{"kind": "reported", "file": found.file, "offset": found.offset, "detail": found.detail}]},
    )


@probe("engine.verify_quick")
def corruption_detected(context: ProbeContext) -> Answer:
    """Is data corruption detected (the node's own report, or every checksum of the data dir here, read-only)?"""
    reported = _reported_corruption(target_node(context))
    if context.data_dir is None:
        if reported is not None:
            return reported
        node, why = _remote(context)
        if node is None:
            return why  # type: ignore[return-value]
        if not node.reachable:
            return Answer(
                None, f"{node.name} does not answer and its data dir is not on this host: nothing to verify from here"
            )
        return Answer(
            False,
            f"{node.name} reports {node.health.value}: its reads"
            + (" and scrub" if node.health == Health.OK else "")
            + " met no checksum failure",
        )
    try:
        report = verify_report(context)
    except EngineError as exc:
        return reported or Answer(None, f"cannot verify: {exc.message}")
    checked = ", ".join(f"{count} {what}" for what, count in sorted(report.checked.items())) or "nothing"
    if report.ok:
        if reported is not None:
            reported.evidence += f"; a verify of {context.data_dir} here found no problem ({checked} checked)"
            return reported
        return Answer(False, f"verify found no problem ({checked} checked)")
    first = report.problems[0]
    where = f" in {first.file}" if first.file else ""
    offset = f" at offset {first.offset}" if first.offset is not None else ""
    more = f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
    return Answer(
        True,
        f"{first.kind}: {first.detail}{where}{offset}{more}",
        {"problems": [problem.model_dump() for problem in report.problems]},
    )


def is_wal_problem(problem: Any) -> bool:
    """A problem of the log: verify's "wal" kind, or one in a WAL segment file."""
    from engines.wal.segments import SEGMENT_SUFFIX

    file = (problem.get("file") if isinstance(problem, dict) else problem.file) or ""
    kind = problem.get("kind") if isinstance(problem, dict) else problem.kind
    return kind == "wal" or file.startswith("wal/") or file.endswith(SEGMENT_SUFFIX)


@probe("wal.damage_only")
def wal_damage_only(context: ProbeContext) -> Answer:
    """Is the damage confined to the write-ahead log?"""
    found = corruption_detected(context)
    problems = found.data.get("problems") or []
    if found.answer is None:
        return Answer(None, found.evidence)
    if not found.answer or not problems:
        return Answer(
            False,
            "no corruption found at all" if not found.answer else f"the node names no damaged file ({found.evidence})",
        )
    if all(is_wal_problem(problem) for problem in problems):
        first = problems[0]
        return Answer(
            True,
            f"only the WAL is damaged: {first.get('detail')} ({first.get('file')} at offset {first.get('offset')})",
        )
    kinds = sorted({str(problem.get("kind")) for problem in problems if not is_wal_problem(problem)})
    return Answer(False, f"the store itself is damaged ({', '.join(kinds)}): {found.evidence}")


# ------------------------------------------------------------------------------------------- resources
def _disk(context: ProbeContext) -> tuple[float, int | None, str] | Answer:
    """(usage ratio, free bytes or None, where) from the snapshot, else measured at the data dir."""
    node = target_node(context)
    if node is not None and node.reachable and node.disk.usage_ratio is not None:
        where = f" on {node.disk.volume_path}" if node.disk.volume_path else ""
        return node.disk.usage_ratio, node.disk.free_bytes, f"node {node.name}{where} (fleet snapshot)"
    if context.data_dir is not None:
        usage = disk_usage(context.data_dir)
        return usage.ratio, usage.free, f"{usage.mount} ({human_bytes(usage.free)} free of {human_bytes(usage.total)})"
    if node is not None and not node.reachable:
        return Answer(None, f"{node.name} does not answer and its data dir is not here: its disk cannot be read")
    return Answer(None, "no data dir, and no fleet snapshot with disk figures")


@probe("disk.full")
def disk_full(context: ProbeContext) -> Answer:
    """Is the disk nearly full (above the alert threshold)?"""
    found = _disk(context)
    if isinstance(found, Answer):
        return found
    ratio, free, where = found
    threshold = context.disk_threshold
    return Answer(
        ratio > threshold,
        f"disk {ratio * 100:.0f} % used on {where}; threshold {threshold * 100:.0f} %",
        {"ratio": ratio, "free": free},
    )


@probe("disk.exhausted")
def disk_exhausted(context: ProbeContext) -> Answer:
    """Is the disk full: so little free that writes fail (ENOSPC) now?"""
    found = _disk(context)
    if isinstance(found, Answer):
        return found
    ratio, free, where = found
    full = ratio >= 0.995 or (free is not None and free < DISK_FULL_FREE_BYTES)
    left = f", {human_bytes(free)} free" if free is not None else ""
    return Answer(
        full,
        f"disk {ratio * 100:.1f} % used on {where}{left}; full means under "
        f"{human_bytes(DISK_FULL_FREE_BYTES)} free or 99.5 % used",
        {"ratio": ratio, "free": free},
    )


@probe("memory.exhausted")
def memory_exhausted(context: ProbeContext) -> Answer:
    """Is memory exhausted (host memory in use above the alert threshold)?"""
    from playbooks.memory_culprit import survey_memory

    threshold = context.memory_threshold
    node = target_node(context)
    if node is not None and node.reachable and node.memory.usage_ratio is not None:
        ratio = node.memory.usage_ratio
        return Answer(
            ratio > threshold,
            f"memory {ratio * 100:.0f} % used on node {node.name} (fleet snapshot); threshold {threshold * 100:.0f} %",
            {"ratio": ratio},
        )
    if context.data_dir is None:
        if node is not None and not node.reachable:
            return Answer(None, f"{node.name} does not answer and its host is not this one: its memory cannot be read")
        if node is not None:
            return Answer(None, f"{node.name} reports no memory figures and its host is not this one")
    memory = psutil.virtual_memory()
    ratio = (memory.total - memory.available) / memory.total if memory.total else 0.0
    sentence = (
        f"memory {ratio * 100:.0f} % used on this host ({human_bytes(memory.total - memory.available)} of "
        f"{human_bytes(memory.total)}); threshold {threshold * 100:.0f} %"
    )
    data: dict[str, Any] = {"ratio": ratio}
    if ratio > threshold:
        largest = largest_process()
        if largest is not None:
            data["largest"] = largest
            sentence += f"; largest: pid {largest['pid']} {largest['name']} ({human_bytes(largest['rss_bytes'])})"
        view = survey_memory(context.data_dir, threshold=threshold)
        if view.culprit is not None:
            data["culprit"] = view.culprit.to_json()
        sentence += f"; {view.sentence()}"
    return Answer(ratio > threshold, sentence, data)


# ------------------------------------------------------------------------------------------- replication
@probe("replication.standby_lag")
def standby_lag(context: ProbeContext) -> Answer:
    """Is the node a standby that has fallen too far behind its primary?"""
    node = target_node(context)
    if node is None:
        if context.snapshot is None:
            return Answer(False, "no fleet snapshot: a data dir alone replicates from nothing")
        return Answer(None, f"{context.node} is not in the fleet snapshot")
    if node.role not in ("standby", "replica", "secondary"):
        return Answer(False, f"{node.name} is a {node.role}, not a standby: it lags behind no one")
    lag = node.replication.lag_seconds
    limit = context.lag_threshold_seconds
    records = node.replication.lag_records
    if lag is None and records == 0:
        return Answer(False, f"standby {node.name} has applied every record of {node.replication.upstream}")
    if lag is None:
        lag = _replay_lag(context, node)
    if lag is None:
        return Answer(
            None,
            f"standby {node.name} reports no replication lag in seconds"
            + (f" ({records} records behind)" if records is not None else ""),
        )
    behind = f"{lag:.1f} s" + (f" ({records} records)" if records is not None else "")
    return Answer(
        lag > limit,
        f"standby {node.name} is {behind} behind {node.replication.upstream or 'its primary'}; limit {limit:g} s",
        {"lag_seconds": lag},
    )


def _replay_lag(context: ProbeContext, node: NodeSnapshot) -> float | None:
    """Seconds between the primary's newest write and the standby's newest applied one, from the
    primary's WAL here (the lag of data dirs read locally, which report records but no seconds)."""
    from engines.wal import WalReader

    upstream = context.data_dir_of(node.replication.upstream)
    applied, newest = node.replication.applied_lsn, node.replication.primary_lsn
    if upstream is None or applied is None or newest is None or newest <= applied:
        return None
    times = {}
    try:
        for lsn in (max(1, applied), newest):
            for record in WalReader(upstream / "wal").records(from_lsn=lsn, to_lsn=lsn):
                times[lsn] = record.timestamp_ns / 1e9
    except EngineError:
        return None
    if len(times) < 2:
        return None  # recycled already: the WAL no longer reaches back
    return max(0.0, times[newest] - times[max(1, applied)])
