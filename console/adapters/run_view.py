"""How the Run screen words and draws what the playbooks' runner reports; presentation only.

The event stream is ``playbooks.events.RunEvent`` and a step's final status is the runner's own
(``playbooks.runner.StepOutcome.status``: succeeded, problem, skipped, failed, refused; planned in
a dry run). The screen adds only what a step is *while* the run goes: ``running`` (after
``step_started``), ``waiting`` (after ``needs_confirmation``), and ``not-run`` for a planned step
the run never reached. A run's status is the runner's ``RunResult.status``; ``succeeded`` is shown
as such only once the node is verified (console.adapters.run_state.RunState.status says which).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from console.format import bytes_text, duration_text

__all__ = ["RUN_STYLE", "STEP_STYLE", "VERIFY_ACTIONS", "progress_figures", "step_word", "verified_text"]

# status -> (symbol, word, theme variable). Symbol and word, never colour alone.
STEP_STYLE: dict[str, tuple[str, str, str]] = {
    "planned": ("○", "planned", "status-unknown"),
    "not-run": ("·", "not run", "status-unknown"),
    "running": ("◐", "running", "accent"),
    "waiting": ("◆", "confirm?", "status-warn"),
    "succeeded": ("✔", "done", "status-ok"),
    # A diagnostic step that found what it looks for ("Find the damage"): the run goes on; not a failure.
    "problem": ("⚑", "found", "status-warn"),
    "skipped": ("⊘", "skipped", "status-unknown"),
    "failed": ("✖", "failed", "status-crit"),
    "refused": ("✖", "refused", "status-crit"),
}

# RunState.status -> (symbol and word, theme variable)
RUN_STYLE: dict[str, tuple[str, str]] = {
    "idle": ("", "dim"),
    "cannot": ("✖ CANNOT ACT", "status-crit"),
    "planning": ("… PLANNING", "dim"),
    "ready": ("○ READY", "accent"),
    "running": ("◐ RUNNING", "accent"),
    "waiting": ("◆ WAITING FOR CONFIRMATION", "status-warn"),
    "verifying": ("◐ VERIFYING", "accent"),
    "succeeded": ("✔ SUCCEEDED", "status-ok"),
    "unverified": ("◇ DONE, NOT VERIFIED", "status-warn"),
    "failed": ("✖ FAILED", "status-crit"),
    "refused": ("✖ REFUSED", "status-crit"),
    "cancelled": ("■ CANCELLED", "status-warn"),
}

# Actions whose success says the node's data checks out (verification steps of a local run).
VERIFY_ACTIONS = frozenset({"engine.verify", "engine.smoke_test", "checks.smoke", "checks.verify_recovery"})


def step_word(status: str) -> tuple[str, str, str]:
    """The symbol, word and theme variable of a step status (an unknown one is shown as failed)."""
    return STEP_STYLE.get(status, STEP_STYLE["failed"])


def progress_figures(done: int | None, total: int | None, unit: str | None, eta_seconds: float | None) -> str:
    """``12.0M of 40.0M · ETA 3s`` for bytes, ``3/10 ticks`` otherwise; "" without figures."""
    if done is None or not total:
        return ""
    if unit == "bytes":
        text = f"{bytes_text(done)} of {bytes_text(total)}"
    else:
        text = f"{done}/{total}" + (f" {unit}" if unit else "")
    if eta_seconds is not None and done < total:
        text += f" · ETA {duration_text(eta_seconds)}"
    return text


def verified_text(at: datetime, tz: tzinfo | None) -> str:
    """``node ready at 12:04:09 UTC`` in the console's zone (UTC unless told)."""
    local = at.astimezone(tz) if tz is not None else at
    zone = local.tzname() or "UTC"
    return f"node ready at {local:%H:%M:%S} {zone}"
