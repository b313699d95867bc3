"""``when`` conditions and ``{placeholder}`` arguments."""

from __future__ import annotations

import pytest

from playbooks.conditions import parse_condition
from playbooks.templating import placeholders, render_args


def test_conditions_compare_and_combine() -> None:
    namespace = {
        "params": {"repo": "/backup", "level": "full"},
        "backend": "lsm",
        "steps": {"check": {"ok": False, "lost": ["x"]}, "inspect": {"crash_type": "OOM"}},
        "previous": {},
    }
    assert parse_condition("steps.check.ok == false").evaluate(namespace)
    assert parse_condition("steps.check.ok == false and params.repo").evaluate(namespace)
    assert not parse_condition("steps.check.ok == false and params.missing").evaluate(namespace)
    assert parse_condition("not params.missing").evaluate(namespace)
    assert parse_condition("steps.inspect.crash_type != 'RUNNING'").evaluate(namespace)
    assert parse_condition("params.level == 'quick' or backend == \"lsm\"").evaluate(namespace)
    assert parse_condition("steps.check.lost").evaluate(namespace)
    assert not parse_condition("steps.skipped.ok").evaluate(namespace)  # absent -> None -> false
    assert not parse_condition("steps.check.count > 3").evaluate(namespace)  # None compares false


@pytest.mark.parametrize("text", ["", "steps.check.ok ==", "nonsense.x", "params.a == b", "params.a params.b", "not"])
def test_bad_conditions_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError):
        parse_condition(text)


def test_placeholders_keep_types_and_fail_on_unset_text() -> None:
    variables = {"repo": "/backup", "until_lsn": 42, "until": None, "run_dir": "/state/runs/r1"}
    rendered = render_args(
        {
            "repo": "{repo}",
            "until_lsn": "{until_lsn}",
            "until": "{until}",
            "into": "{run_dir}/pitr",
            "flags": ["{repo}"],
        },
        variables,
    )
    assert rendered == {
        "repo": "/backup",
        "until_lsn": 42,
        "until": None,
        "into": "/state/runs/r1/pitr",
        "flags": ["/backup"],
    }
    with pytest.raises(KeyError):
        render_args({"into": "{until}/x"}, variables)
    assert sorted(placeholders({"a": "{x}/{y}", "b": ["{z}"], "c": 3})) == ["x", "y", "z"]
