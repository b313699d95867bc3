"""The action registry and every action a playbook step can name.

Importing this package registers them all: ``engine.*`` (engine_actions, safety, salvage),
``wal.*``, ``backup.*``, ``disk.*``/``memory.*``/``process.*``/``system.*``/``manual.*``/``triage.*``
(system_actions; disk_space: what a full disk can have back, files not ours, the verdict),
``config.*``, ``checks.*``/``report.*``, ``drill.*``, ``node.*`` (node_actions, node_rebuild: the
cluster through the node API); and ``test.*`` only when ``DRCONSOLE_TEST_ACTIONS=1`` (the test suite).
"""

import os

from playbooks.actions import (  # noqa: F401  (registration)
    backup_actions,
    checks,
    config_actions,
    disk_space,
    drill_actions,
    engine_actions,
    node_actions,
    node_rebuild,
    refill_actions,
    safety,
    salvage,
    system_actions,
    wal_actions,
)
from playbooks.actions.base import REGISTRY, Action, ActionContext, ActionResult, Registry, action

if os.environ.get("DRCONSOLE_TEST_ACTIONS") == "1":
    from playbooks.actions import testing  # noqa: F401

__all__ = ["REGISTRY", "Action", "ActionContext", "ActionResult", "Registry", "action"]
