"""Item 2 of issue 19: every sync call site is needed by some power-loss test (slow: ~N pytest runs)."""

from __future__ import annotations

import pytest
from mutations import report, run, why_not_needed


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_sync_call_site_is_caught_when_removed() -> None:
    outcomes, everything = run()
    print(report(outcomes, everything))
    assert len(outcomes) >= 20, "too few sync sites recorded: is the power-cut file system installed?"
    uncaught = [o.site for o in outcomes if o.caught_by is None and why_not_needed(o.site) is None]
    assert uncaught == [], f"sync sites no power-loss test needs: {uncaught}"
    assert everything.returncode != 0, "the power-loss tests pass with every sync a no-op"
