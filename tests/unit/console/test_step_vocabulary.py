"""The console words every status the runner reports: one vocabulary (playbooks.runner_model), no drift."""

from __future__ import annotations

from console.adapters.run_state import _FINAL
from console.adapters.run_view import RUN_STYLE, STEP_STYLE, step_word
from console.cli.playbook import _SYMBOLS
from playbooks.runner_model import RUN_STATUSES, STEP_STATUSES


def test_every_step_status_has_its_own_symbol_and_word() -> None:
    for status in STEP_STATUSES:
        assert status in STEP_STYLE, status
        assert status in _SYMBOLS, status
    # The screen's own states are the only extra ones, and a status the runner never reports falls back to failed.
    assert set(STEP_STYLE) - set(STEP_STATUSES) == {"running", "waiting", "not-run"}
    assert step_word("no-such-status") == STEP_STYLE["failed"]


def test_the_final_statuses_are_the_runners() -> None:
    assert set(_FINAL) == set(STEP_STATUSES) - {"planned"}
    assert set(RUN_STATUSES) <= set(RUN_STYLE)
