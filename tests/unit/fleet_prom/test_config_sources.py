"""``[prometheus]`` and ``[alertmanager]`` in drconsole.toml: good values load, bad ones name file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import ConfigError, load_config

NODE = """
[[node]]
name = "orders-a"
url = "http://127.0.0.1:8081"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drconsole.toml"
    path.write_text(text + NODE, encoding="utf-8")
    return path


def test_both_sections_load_with_their_defaults(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            '[prometheus]\nurl = "http://127.0.0.1:9090/"\n\n'
            '[alertmanager]\nurl = "https://am.example:9093"\ntimeout_seconds = 0.5\n',
        )
    )
    assert (config.prometheus.url, config.prometheus.timeout_seconds, config.prometheus.rate_window) == (
        "http://127.0.0.1:9090",
        2.0,
        "1m",
    )
    assert (config.alertmanager.url, config.alertmanager.timeout_seconds) == ("https://am.example:9093", 0.5)


def test_without_the_sections_nothing_changes(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.prometheus.url is None and config.alertmanager.url is None


@pytest.mark.parametrize(
    ("text", "line", "field", "said"),
    [
        ('[prometheus]\nurl = "127.0.0.1:9090"\n', 2, "prometheus.url", "url must be http:// or https:// with a host"),
        ('[prometheus]\nurl = "http://127.0.0.1:99999"\n', 2, "prometheus.url", "bad port"),
        ('[alertmanager]\n\nurl = "http://am?x=1"\n', 3, "alertmanager.url", "must not carry a query"),
        (
            '[prometheus]\nurl = "http://p:9090"\nrate_window = "5 minutes"\n',
            3,
            "prometheus.rate_window",
            "must be a Prometheus duration",
        ),
        (
            '[alertmanager]\nurl = "http://a:9093"\ntimeout_seconds = 0\n',
            3,
            "alertmanager.timeout_seconds",
            "greater than 0",
        ),
        ('[prometheus]\nurll = "http://p:9090"\n', 2, "prometheus.urll", "unknown field"),
    ],
)
def test_a_bad_value_names_file_line_and_field(tmp_path: Path, text: str, line: int, field: str, said: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert (error.line, error.field, error.exit_code) == (line, field, 2)
    assert said in error.message and error.message.startswith(f"{path}:{line}: {field}: ")
