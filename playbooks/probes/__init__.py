"""Probes that answer the decision tree's questions: local evidence (``local``) and the fleet (``fleet``)."""

from playbooks.probes import fleet, local  # noqa: F401  (registration)
from playbooks.probes.base import PROBES, Answer, Probe, ProbeContext, probe

__all__ = ["PROBES", "Answer", "Probe", "ProbeContext", "probe"]
