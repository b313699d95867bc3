"""A built-in decision tree (the Orbit guide's emergency flowchart) answered from the fleet snapshot.

It stands in for the playbooks' decision tree (``playbooks/library/tree.toml`` and its probes)
until that lands; the Triage screen says so. Its probes read only the ``FleetSnapshot``; what a
snapshot cannot tell (corruption without a verify, a crash without the node process) is left
for the responder to answer.
"""

from __future__ import annotations

from playbooks.fleet import FleetSnapshot, Thresholds

from console.format import percent_text
from console.triage_view import ProbeAnswer, Recommendation, StaticTriage, TreeNode

__all__ = ["CATALOGUE", "TREE", "snapshot_triage", "STAND_IN_NOTE"]

STAND_IN_NOTE = "built-in flowchart (playbooks' tree not installed)"

TREE = {node.id: node for node in (
    TreeNode("can-start", "Can the service start?", "node.reachable", yes="corruption", no="disk-full"),
    TreeNode("corruption", "Is data corruption detected?", "engine.verify", yes="data-recovery", no="disk-pressure"),
    TreeNode("disk-pressure", "Is disk usage above the alert threshold?", "disk.usage", yes="free-disk",
             no="monitor"),
    TreeNode("disk-full", "Is the disk full?", "disk.usage", yes="free-disk", no="memory"),
    TreeNode("memory", "Is memory exhausted?", "memory.usage", yes="memory-recovery", no="crashed"),
    TreeNode("crashed", "Did the process crash?", "node.process", yes="process-restart", no="config-recovery"),
    TreeNode("data-recovery", conclusion="Execute data recovery (WAL replay, validation)", recommend=("data-recovery",)),
    TreeNode("free-disk", conclusion="Free disk space", recommend=("free-disk-space",)),
    TreeNode("memory-recovery", conclusion="Memory recovery", recommend=("memory-recovery",)),
    TreeNode("process-restart", conclusion="Process restart", recommend=("process-restart",)),
    TreeNode("config-recovery", conclusion="Configuration recovery", recommend=("configuration-recovery",)),
    TreeNode("monitor", conclusion="Monitor performance; no recovery needed"),
)}

CATALOGUE = {recommendation.playbook_id: recommendation for recommendation in (
    Recommendation("data-recovery", "Recover a corrupt data directory", "P0", destructive=True, target_rto_seconds=900),
    Recommendation("free-disk-space", "Free disk space safely", "P1", destructive=True, target_rto_seconds=1800),
    Recommendation("memory-recovery", "Reduce memory pressure", "P1", target_rto_seconds=1800),
    Recommendation("process-restart", "Restart the node process", "P1", target_rto_seconds=600),
    Recommendation("configuration-recovery", "Restore a known-good configuration", "P1", target_rto_seconds=1800),
)}


def snapshot_triage(snapshot: FleetSnapshot | None, node_name: str, thresholds: Thresholds) -> StaticTriage:
    """The built-in tree for ``node_name`` with probe answers read from ``snapshot``."""
    node = snapshot.node(node_name) if snapshot is not None else None
    answers: dict[str, ProbeAnswer] = {}
    if node is None:
        return StaticTriage(node_name, "can-start", TREE, answers, CATALOGUE)
    if node.reachable:
        answers["can-start"] = ProbeAnswer(True, f"{node.name} answers: {node.health_reason}")
    else:
        answers["can-start"] = ProbeAnswer(False, f"{node.name} unreachable: {node.health_reason}")
    if "corrupt" in node.health_reason.lower() or "checksum" in node.health_reason.lower():
        answers["corruption"] = ProbeAnswer(True, node.health_reason)
    else:
        answers["corruption"] = ProbeAnswer(None, "no verify result in the snapshot; run `drconsole engine verify`")
    ratio = node.disk.usage_ratio
    if ratio is not None:
        where = f" on {node.disk.volume_path}" if node.disk.volume_path else ""
        text = f"disk {percent_text(ratio)} used{where}, threshold {percent_text(thresholds.disk_usage)}"
        answers["disk-pressure"] = ProbeAnswer(ratio > thresholds.disk_usage, text)
        answers["disk-full"] = ProbeAnswer(ratio >= 0.99, text)
    else:
        missing = ProbeAnswer(None, "no disk figures in the snapshot" + ("" if node.reachable else " (node unreachable)"))
        answers["disk-pressure"] = answers["disk-full"] = missing
    memory = node.memory.usage_ratio
    if memory is None:
        answers["memory"] = ProbeAnswer(None, "no memory figures in the snapshot"
                                        + ("" if node.reachable else " (node unreachable)"))
    else:
        answers["memory"] = ProbeAnswer(memory > thresholds.memory_usage,
                                        f"host memory {percent_text(memory)} used, threshold "
                                        f"{percent_text(thresholds.memory_usage)}")
    answers["crashed"] = ProbeAnswer(None, "process state is not in the snapshot (node processes come with the node API)")
    return StaticTriage(node_name, "can-start", TREE, answers, CATALOGUE)
