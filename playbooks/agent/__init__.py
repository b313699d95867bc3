"""The node as the agent of its own recovery (as Patroni's REST API is for PostgreSQL).

    protocol.py   the routes and the JSON that travels (``StartRequest``, results, events, errors)
    client.py     ``AgentClient`` (HTTP) and ``RemoteRunner`` (the local ``Runner``'s interface)
    select.py     ``runner_for(node)``: RemoteRunner when the node has a url, else ``LocalRunner``
    cancel.py     ``CancellableRegistry``: a cancelled run refuses its next action
    incident.py   the responder-side incident of a remote run ("recovery verified at T")
    service.py    the node side: ``Agent`` (runs, drain/reopen, /ready, events) and its routes
    marker.py     ``node-agent.json`` in a served data dir: where its agent listens, its token file

``node serve`` (console/cli/node.py) mounts the routes on the node's Starlette app; engines never
import this package.
"""

from __future__ import annotations

from playbooks.agent.client import AgentClient, RemoteRunner
from playbooks.agent.select import LocalRunner, NodeRunner, runner_for

__all__ = ["AgentClient", "RemoteRunner", "LocalRunner", "NodeRunner", "runner_for"]
