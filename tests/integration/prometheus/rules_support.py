"""The shipped Prometheus files, read as data, and promtool run on them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "prometheus"
RULES = DEPLOY / "drconsole-alerts.yml"
RULE_TESTS = DEPLOY / "drconsole-alerts.test.yml"
SAMPLE_CONFIG = DEPLOY / "prometheus.yml"
TREE = ROOT / "playbooks" / "library" / "tree.toml"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules(rules: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every alerting rule of a rules document (the shipped one by default), by alert name."""
    document = rules if rules is not None else load_yaml(RULES)
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"] if "alert" in rule}


def promtool(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["promtool", *args], input=stdin, capture_output=True, cwd=cwd, timeout=60)
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    )


_DURATION = re.compile(r"(\d+)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def seconds(duration: str) -> float:
    """A Prometheus duration ("30s", "2m45s", "1h") in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(number + unit for number, unit in parts) != duration:
        raise ValueError(f"unsupported duration {duration!r}")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


def rules_with_changes(workdir: Path, alert: str, **changes: str) -> Path:
    """A copy of the shipped rules file in ``workdir`` with one alert's fields replaced."""
    document = load_yaml(RULES)
    alert_rules(document)[alert].update(changes)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / RULES.name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def with_rule_changed(workdir: Path, alert: str, **changes: str) -> Path:
    """``rules_with_changes`` beside the unit-test groups that check that alert (the others cannot
    notice the change, and each group costs promtool time); the path of those tests."""
    rules_with_changes(workdir, alert, **changes)
    tests = load_yaml(RULE_TESTS)
    tests["tests"] = [
        group
        for group in tests["tests"]
        if any(check["alertname"] == alert for check in group.get("alert_rule_test", []))
    ]
    (workdir / RULE_TESTS.name).write_text(yaml.safe_dump(tests, sort_keys=False))
    return workdir / RULE_TESTS.name
