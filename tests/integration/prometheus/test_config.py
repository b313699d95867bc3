"""The sample prometheus.yml: promtool accepts it, and it matches what the rules expect."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from integration.prometheus.rules_support import RULES, SAMPLE_CONFIG, alert_rules, load_yaml, promtool

pytestmark = pytest.mark.usefixtures("prom_tools")


def test_promtool_check_config_accepts_the_sample() -> None:
    result = promtool("check", "config", str(SAMPLE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid prometheus config file syntax" in result.stdout
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout  # the rules file was found and loaded


def test_promtool_check_config_refuses_the_sample_without_its_rules(tmp_path: Path) -> None:
    """The check above is not vacuous: a sample whose rules file is missing fails it."""
    shutil.copy(SAMPLE_CONFIG, tmp_path / SAMPLE_CONFIG.name)
    result = promtool("check", "config", str(tmp_path / SAMPLE_CONFIG.name))
    assert result.returncode != 0
    assert RULES.name in result.stdout + result.stderr


def test_the_sample_scrapes_the_job_the_node_down_rule_selects() -> None:
    config = load_yaml(SAMPLE_CONFIG)
    assert config["rule_files"] == [RULES.name]
    (job,) = [scrape for scrape in config["scrape_configs"] if scrape["job_name"] == "drconsole"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    selected = re.search(r'up\{job="([^"]+)"\}', alert_rules()["DrconsoleNodeDown"]["expr"])
    assert selected is not None and selected.group(1) == job["job_name"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
