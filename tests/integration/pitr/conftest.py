"""The node fixtures of tests/integration/node serve these tests too."""

from integration.node.conftest import node_process, node_thread  # noqa: F401
