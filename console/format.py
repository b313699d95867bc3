"""How figures read on screen: sizes, durations, ratios, bars, sparklines, status symbol + word.

Pure functions of their arguments (no clock, no I/O), so widgets stay thin and tests compare
exact strings. Status is always a symbol and a word; colour is added on top by the theme's
``$status-*`` variables, never instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from playbooks.fleet import AlertSeverity, Health
# One duration format for the screens, the reports and the notifications (the incident model's).
from playbooks.incident_model import duration_text

__all__ = [
    "HEALTH_STYLE",
    "SEVERITY_STYLE",
    "bar",
    "bytes_text",
    "clock_text",
    "local_clock_text",
    "coarse_duration_text",
    "count_text",
    "duration_text",
    "health_markup",
    "percent_text",
    "severity_markup",
    "sparkline",
]

# health -> (symbol, word, status variable)
HEALTH_STYLE: dict[Health, tuple[str, str, str]] = {
    Health.OK: ("✔", "OK", "status-ok"),
    Health.DEGRADED: ("▲", "DEGRADED", "status-warn"),
    Health.DOWN: ("✖", "DOWN", "status-crit"),
    Health.CORRUPT: ("✖", "CORRUPT", "status-crit"),
    Health.RECOVERING: ("↻", "RECOVERING", "status-warn"),
    Health.FENCED: ("■", "FENCED", "status-warn"),
    Health.UNKNOWN: ("?", "UNKNOWN", "status-unknown"),
}
SEVERITY_STYLE: dict[AlertSeverity, tuple[str, str, str]] = {
    AlertSeverity.CRITICAL: ("✖", "CRIT", "status-crit"),
    AlertSeverity.WARNING: ("▲", "WARN", "status-warn"),
}
_SPARKS = "▁▂▃▄▅▆▇█"


def health_markup(health: Health, *, bold: bool = True) -> str:
    symbol, word, variable = HEALTH_STYLE[health]
    return f"[{'bold ' if bold else ''}${variable}]{symbol} {word}[/]"


def severity_markup(severity: AlertSeverity) -> str:
    symbol, word, variable = SEVERITY_STYLE[severity]
    return f"[bold ${variable}]{symbol} {word}[/]"


def bytes_text(size: float | None) -> str:
    """1536 -> "1.5K"; binary units, short enough for a card; "—" when unknown."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            if unit == "B":
                return f"{value:.0f}B"
            return f"{value:.1f}{unit}" if abs(value) < 10 else f"{value:.0f}{unit}"
        value /= 1024
    return f"{value:.0f}T"  # not reached


def count_text(count: int | None) -> str:
    if count is None:
        return "—"
    return f"{count:,}"


def percent_text(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.0f}%"


def coarse_duration_text(seconds: float | None) -> str:
    """A duration that changes at most once a minute: "<1m", "34m", "3h12m", "1d2h"."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return "<1m"
    return duration_text(seconds - seconds % 60)


def clock_text(moment: datetime | None, tz: tzinfo | None = None) -> str:
    """HH:MM:SS in ``tz`` (None: UTC, the one convention of the console, the alerts and the reports)."""
    if moment is None:
        return "—"
    return moment.astimezone(tz or UTC).strftime("%H:%M:%S")


def local_clock_text(moment: datetime) -> str | None:
    """"HH:MM CET": the same moment on the host's local clock, or None when the host runs on UTC."""
    local = moment.astimezone()
    if local.utcoffset() == timedelta(0):
        return None
    return f"{local:%H:%M} {local.tzname() or local.strftime('%z')}"


def bar(ratio: float | None, width: int) -> str:
    """A usage bar of ``width`` cells: "██████░░░░"."""
    if width <= 0:
        return ""
    if ratio is None:
        return "·" * width
    filled = round(max(0.0, min(1.0, ratio)) * width)
    return "█" * filled + "░" * (width - filled)


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters, scaled to their own min..max."""
    if width <= 0 or not values:
        return ""
    recent = list(values)[-width:]
    low, high = min(recent), max(recent)
    if high == low:
        return _SPARKS[0] * len(recent)
    scale = (len(_SPARKS) - 1) / (high - low)
    return "".join(_SPARKS[round((value - low) * scale)] for value in recent)
