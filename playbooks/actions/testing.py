"""Actions for the test suite only: registered when ``DRCONSOLE_TEST_ACTIONS=1``.

``test.sleep`` makes a step slow (with progress), so a test can kill a run mid-step; ``test.fail``
fails a given number of times (counted in a file) to exercise retry, continue and rollback.
"""

from __future__ import annotations

import time
from pathlib import Path

from engines.errors import EngineError
from playbooks.actions.base import ActionContext, ActionResult, action

__all__: list[str] = []


@action("test.sleep", writes=False)
def sleep(
    context: ActionContext, *, seconds: float = 1.0, resumed_seconds: float | None = None, marker: str | None = None
) -> ActionResult:
    """Sleep, reporting progress; append a line to ``marker`` each time the step starts."""
    if context.resuming and resumed_seconds is not None:
        seconds = resumed_seconds
    if marker:
        with open(marker, "a", encoding="utf-8") as handle:
            handle.write(f"{context.step} started{' (resumed)' if context.resuming else ''}\n")
    ticks = max(1, int(float(seconds) * 10))
    for tick in range(ticks):
        time.sleep(float(seconds) / ticks)
        context.progress(tick + 1, ticks, "ticks", "sleep")
    return ActionResult(True, f"slept {seconds} s")


@action("test.fail", writes=True)
def fail(context: ActionContext, *, counter: str, times: int = 1) -> ActionResult:
    """Raise the first ``times`` calls (counted in the file ``counter``), then succeed."""
    path = Path(counter)
    calls = int(path.read_text() or 0) if path.exists() else 0
    path.write_text(str(calls + 1))
    if calls < int(times):
        raise EngineError(f"test failure {calls + 1} of {times}")
    return ActionResult(True, f"succeeded on call {calls + 1}")
