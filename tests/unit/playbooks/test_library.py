"""The shipped library: every file loads, the tree is whole, and the contract's ids are all there."""

from __future__ import annotations

from playbooks.actions import REGISTRY
from playbooks.loader import LIBRARY_DIR, Library, load_playbook_file
from playbooks.probes import PROBES
from playbooks.tree import Leaf

# The ids of issue 7 are part of the contract: each is a playbook, or pending with a reason.
CONTRACT_IDS = {
    "emergency-response",
    "data-recovery",
    "recover-cow",
    "recover-lsm",
    "recover-rocksdb",
    "wal-replay",
    "wal-truncate",
    "disk-space",
    "memory-recovery",
    "process-crash",
    "config-recovery",
    "backup-full",
    "backup-incremental",
    "backup-verify",
    "restore",
    "pitr",
    "failover",
    "rebuild-primary",
    "split-brain",
    "isolated-node",
    "network-partition",
    "total-cluster-loss",
    "cache-corruption",
    "accidental-deletion",
    "ransomware",
    "emergency-shutdown",
    "data-salvage",
    "post-recovery-validation",
    "verify-recovery",
    "dr-drill",
}


def test_every_library_file_loads_on_its_own() -> None:
    files = sorted(path for path in LIBRARY_DIR.glob("*.toml") if path.name != "tree.toml")
    assert len(files) >= 20
    for path in files:
        playbook = load_playbook_file(path)
        assert playbook.id == path.stem
        assert playbook.guide, f"{path.name} does not say which guide procedure it implements"


def test_contract_ids_are_playbooks_or_pending_with_a_reason() -> None:
    library = Library.load()
    pending = library.pending()
    assert CONTRACT_IDS <= set(library.playbooks) | set(pending)
    assert all(reason.strip() for reason in pending.values())
    assert not set(pending) & set(library.playbooks)


def test_every_step_names_a_registered_action_with_valid_arguments() -> None:
    library = Library.load()
    for playbook in library.playbooks.values():
        for step in playbook.steps:
            if step.action is None:
                continue
            entry = REGISTRY.get(step.action)
            assert entry.check_arguments(step.args) == [], (playbook.id, step.id)
            if step.verify:
                assert not REGISTRY.get(step.verify).writes


def test_destructive_steps_are_marked_for_every_data_changing_recovery_action() -> None:
    library = Library.load()
    for playbook in library.playbooks.values():
        for step in playbook.steps:
            if step.action in ("engine.repair", "wal.truncate", "backup.restore", "config.repair"):
                assert step.destructive, f"{playbook.id}/{step.id} ({step.action}) must be marked destructive"


def test_tree_has_no_dangling_branch_and_every_leaf_names_a_known_playbook() -> None:
    library = Library.load()
    tree = library.tree
    assert tree is not None
    assert tree.root in tree.nodes
    reached: set[str] = set()
    leaves: list[Leaf] = []

    def visit(node_id: str) -> None:
        if node_id in reached:
            return
        reached.add(node_id)
        node = tree.nodes[node_id]
        assert node.probe in PROBES
        for branch in (node.yes, node.no):
            next_node, leaf = tree.resolve(branch)
            if leaf is not None:
                leaves.append(leaf)
            else:
                assert next_node is not None
                visit(next_node)

    visit(tree.root)
    assert reached == set(tree.nodes)
    assert leaves
    for leaf in leaves:
        for playbook_id in leaf.recommend:
            assert playbook_id in library.playbooks or playbook_id in tree.pending, playbook_id


def test_tree_covers_the_guides_questions() -> None:
    tree = Library.load().tree
    assert tree is not None
    probes = {node.probe for node in tree.nodes.values()}
    # Orbit: start? corruption? disk? memory? crashed? configuration? / Lightning: running? files? backup?
    # / replication and clusters.
    for needed in (
        "node.opens",
        "engine.verify_quick",
        "disk.full",
        "memory.exhausted",
        "process.crashed",
        "config.broken",
        "node.running",
        "data.files_present",
        "backup.recent",
        "replication.primary_down",
        "replication.split_brain",
        "cluster.isolated_node",
        "cluster.partition",
        "cluster.minority_survives",
        "cluster.all_down",
    ):
        assert needed in probes, needed


def test_every_leaf_takes_its_severity_from_the_fault_table() -> None:
    """One source: a leaf names its fault kind, its severity is that kind's level; healthy has none."""
    from playbooks.loader import _leaves
    from playbooks.severity import FAULT_SEVERITY

    tree = Library.load().tree
    assert tree is not None
    leaves = [leaf for _where, leaf in _leaves(tree)]
    healthy = [leaf for leaf in leaves if leaf.fault is None]
    assert len(healthy) == 1 and healthy[0].recommend == [] and healthy[0].severity is None
    for leaf in leaves:
        if leaf.fault is not None:
            assert leaf.recommend, leaf
            assert leaf.severity == FAULT_SEVERITY[leaf.fault], leaf
    assert {leaf.fault for leaf in leaves} >= {
        "data-corruption",
        "split-brain",
        "index-lost",
        "primary-down",
        "process-crash",
        "stale-backup",
        "archive-lag",
        None,
    }
