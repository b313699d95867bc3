"""The shipped alert rules: promtool accepts them, their unit tests pass, and those tests would catch
a weakened rule; every alert links to a real decision-tree question and a console rule id."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from integration.prometheus.rules_support import (
    RULE_TESTS,
    RULES,
    TREE,
    alert_rules,
    load_yaml,
    promtool,
    seconds,
    with_rule_changed,
)

from fleet.alerts import RULES as CONSOLE_RULES
from playbooks.loader import load_tree_file

pytestmark = pytest.mark.usefixtures("prom_tools")

REFERENCE_ALERTS = {  # the Orbit guide's orbit_alerts.yml, renamed; plus replication lag, split brain, corruption
    "DrconsoleHighWriteLatency",
    "DrconsoleHighReadLatency",
    "DrconsoleDiskSpaceLow",
    "DrconsoleMemoryHigh",
    "DrconsoleNodeDown",
    "DrconsoleErrorRateHigh",
    "DrconsoleReplicationLagHigh",
    "DrconsoleReplicationLagCritical",
    "DrconsoleSplitBrain",
    "DrconsoleTwoPrimariesSameEpoch",
    "DrconsoleCorruptionDetected",
    # issue 17: the archive's time bound and the backups' age
    "DrconsoleArchiveLagging",
    "DrconsoleBackupTooOld",
    "DrconsoleVerifiedBackupTooOld",
}
THRESHOLD = re.compile(r">\s*([0-9.]+)\s*$")


def test_promtool_check_rules_accepts_every_rule() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout
    assert set(alert_rules()) == REFERENCE_ALERTS


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_pending_firing_and_resolved() -> None:
    """Each alert has a check where it fires and a later one where it is gone; one with `for` also a
    check before `for` has passed where it is not firing yet."""
    checks: dict[str, list[tuple[float, bool]]] = {}
    for group in load_yaml(RULE_TESTS)["tests"]:
        for check in group.get("alert_rule_test", []):
            checks.setdefault(check["alertname"], []).append((seconds(check["eval_time"]), bool(check["exp_alerts"])))
    for alert, rule in alert_rules().items():
        timeline = sorted(checks.get(alert, []))
        fired = [when for when, firing in timeline if firing]
        assert fired, f"{alert}: no check where it fires"
        assert any(when > fired[0] and not firing for when, firing in timeline), f"{alert}: never resolves"
        if "for" in rule:
            assert any(when < fired[0] and not firing for when, firing in timeline), f"{alert}: no pending check"


def test_every_alert_links_to_triage_and_a_console_rule() -> None:
    questions = load_tree_file(TREE)[0].nodes
    for alert, rule in alert_rules().items():
        assert rule["labels"]["severity"] in ("warning", "critical"), alert
        assert rule["labels"]["rule"] in CONSOLE_RULES, alert
        assert rule["annotations"]["triage"] in questions, f"{alert}: triage names no question of {TREE.name}"
        assert {"summary", "description"} <= set(rule["annotations"]), alert


def _mutants(workdir: Path) -> list[tuple[str, str, Path]]:
    """(alert, what was weakened, unit-test file) for a threshold lowered 10 % and a `for` halved."""
    mutants = []
    for alert, rule in alert_rules().items():
        expr = rule["expr"].strip()
        match = THRESHOLD.search(expr)
        if match:
            lowered = float(match.group(1)) * 0.9
            mutants.append(
                (
                    alert,
                    f"threshold {match.group(1)} -> {lowered:g}",
                    with_rule_changed(
                        workdir / f"{alert}-threshold", alert, expr=f"{expr[: match.start(1)]}{lowered:g}"
                    ),
                )
            )
        if "for" in rule:
            halved = f"{seconds(rule['for']) / 2:g}s"
            mutants.append(
                (
                    alert,
                    f"for {rule['for']} -> {halved}",
                    with_rule_changed(workdir / f"{alert}-for", alert, **{"for": halved}),
                )
            )
    return mutants


def test_unit_tests_catch_a_lowered_threshold_or_a_shorter_for(tmp_path: Path) -> None:
    mutants = _mutants(tmp_path)
    # Every alert but the node's own flags (split brain, corruption: `== 1`, no `for`) has a threshold or a `for`.
    assert {alert for alert, _, _ in mutants} == set(alert_rules()) - {
        "DrconsoleSplitBrain",
        "DrconsoleCorruptionDetected",
    }
    # All at once: each promtool run is a fraction of a second of CPU, mostly start-up.
    runs = [
        (
            alert,
            change,
            subprocess.Popen(
                ["promtool", "test", "rules", str(tests)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ),
        )
        for alert, change, tests in mutants
    ]
    survived = []
    for alert, change, process in runs:
        output, _ = process.communicate(timeout=60)
        if process.returncode == 0 or f"alertname: {alert}," not in output:
            survived.append(f"{alert}: {change}")
    assert not survived, f"the unit tests did not notice: {survived}"
