"""Probes that answer the decision tree's questions, each module registering its own.

``fleet`` (replication groups and clusters, from the fleet snapshot), ``node`` (the target node from
its data dir here or its own report), ``local`` (a data dir's files and process), ``store`` (the
store's index), ``process`` (crashes from logs, group members' processes), ``protection`` (backups
and the WAL archive).
"""

from playbooks.probes import fleet, local, node, process, protection, store  # noqa: F401  (registration)
from playbooks.probes.base import PROBES, Answer, Probe, ProbeContext, probe

__all__ = ["PROBES", "Answer", "Probe", "ProbeContext", "probe"]
