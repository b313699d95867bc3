"""How figures read on screen: sizes, durations, ratios, bars, sparklines, status symbol + word.

Pure functions of their arguments (no clock, no I/O), so widgets stay thin and tests compare
exact strings. Status is always a symbol and a word; colour is added on top by the theme's
``$status-*`` variables, never instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from fleet import AlertSeverity, FleetSnapshot, Health, NodeSnapshot, Thresholds

# One duration format for the screens, the reports and the notifications (the incident model's).
from playbooks.incident_model import duration_text

__all__ = [
    "HEALTH_STYLE",
    "LAGGING_STYLE",
    "fleet_tally",
    "lagging_seconds",
    "quiet_fleet_note",
    "rate_text",
    "shown_health",
    "upstream_name",
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
    "spark_rows",
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
# A serving standby further behind than ``Thresholds.standby_lag_warning_seconds``: not "OK" on a wall.
LAGGING_STYLE = ("▲", "LAGGING", "status-warn")
SEVERITY_STYLE: dict[AlertSeverity, tuple[str, str, str]] = {
    AlertSeverity.CRITICAL: ("✖", "CRIT", "status-crit"),
    AlertSeverity.WARNING: ("▲", "WARN", "status-warn"),
}
_SPARKS = "▁▂▃▄▅▆▇█"


def health_markup(health: Health | tuple[str, str, str], *, bold: bool = True) -> str:
    """``health`` (or a ``shown_health`` style) as markup: symbol and word in its status colour."""
    symbol, word, variable = health if isinstance(health, tuple) else HEALTH_STYLE[health]
    return f"[{'bold ' if bold else ''}${variable}]{symbol} {word}[/]"


def lagging_seconds(node: NodeSnapshot, thresholds: Thresholds) -> float | None:
    """How far behind a serving standby is, when that is past the warning threshold; else None."""
    lag = node.replication.lag_seconds
    standby = node.role == "standby" or node.replication.upstream is not None
    if not standby or not node.reachable or lag is None or lag <= thresholds.standby_lag_warning_seconds:
        return None
    return lag


def shown_health(node: NodeSnapshot, thresholds: Thresholds) -> tuple[str, str, str]:
    """(symbol, word, status variable) a person should read: the node's health, except that a healthy
    standby lagging past the threshold reads "▲ LAGGING", never "✔ OK"."""
    if node.health == Health.OK and lagging_seconds(node, thresholds) is not None:
        return LAGGING_STYLE
    return HEALTH_STYLE[node.health]


def fleet_tally(snapshot: FleetSnapshot, thresholds: Thresholds) -> list[tuple[tuple[str, str, str], int]]:
    """Each shown state with its node count, worst last (the order of ``HEALTH_STYLE``, LAGGING after OK)."""
    order = [HEALTH_STYLE[Health.OK], LAGGING_STYLE] + [
        HEALTH_STYLE[health] for health in Health if health != Health.OK
    ]
    counts: dict[tuple[str, str, str], int] = {}
    for node in snapshot.nodes:
        style = shown_health(node, thresholds)
        counts[style] = counts.get(style, 0) + 1
    return [(style, counts[style]) for style in order if counts.get(style)]


def quiet_fleet_note(snapshot: FleetSnapshot, thresholds: Thresholds) -> str:
    """What the alert strip says when no alert fires: "" when every node reads OK, else which do not
    (alerts wait for their rule: a node-down alert only fires after ``node_down_seconds``)."""
    if snapshot.alerts:
        return ""
    not_ok = [
        (node.name, shown_health(node, thresholds)[1])
        for node in snapshot.nodes
        if shown_health(node, thresholds)[1] != "OK"
    ]
    if not not_ok:
        return ""
    words: dict[str, list[str]] = {}
    for name, word in not_ok:
        words.setdefault(word, []).append(name)
    parts = [
        f"{len(names)} {word}" + (f" ({', '.join(names)})" if len(names) <= 3 else "") for word, names in words.items()
    ]
    return f"no alert has fired yet, but {len(not_ok)} of {len(snapshot.nodes)} nodes are not OK: {'; '.join(parts)}"


def upstream_name(node: NodeSnapshot, snapshot: FleetSnapshot | None) -> str | None:
    """The name of the node ``node`` follows (its upstream is often a URL), else the upstream as given."""
    upstream = node.replication.upstream
    if upstream is None or snapshot is None:
        return upstream
    for other in snapshot.nodes:
        if upstream in (other.name, other.address) or (
            other.address and upstream.rstrip("/") == other.address.rstrip("/")
        ):
            return other.name
    return upstream


def rate_text(per_second: float | None) -> str:
    """Requests per second, short: "0", "3.2", "350", "12k"; "—" when unknown."""
    if per_second is None:
        return "—"
    if per_second >= 10_000:
        return f"{per_second / 1000:.0f}k"
    if per_second >= 100:
        return f"{per_second:.0f}"
    return f"{per_second:.1f}".removesuffix(".0")


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
    """ "HH:MM CET": the same moment on the host's local clock, or None when the host runs on UTC."""
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


def spark_rows(values: Sequence[float], width: int, rows: int, *, floor: float | None = None) -> list[str]:
    """The last ``width`` values as a bar chart ``rows`` high (top row first), eight levels per row.

    Scaled to ``floor`` (or the values' minimum) .. their maximum; a flat series is one low line.
    """
    if width <= 0 or rows <= 0:
        return []
    recent = list(values)[-width:]
    if not recent:
        return [""] * rows
    low = min(recent) if floor is None else min(floor, min(recent))
    high = max(recent)
    levels = rows * 8
    heights = [1 if high == low else max(1, round((value - low) / (high - low) * levels)) for value in recent]
    lines = []
    for row in range(rows - 1, -1, -1):  # the top row first
        base = row * 8
        lines.append(
            "".join(
                " " if height <= base else ("█" if height >= base + 8 else _SPARKS[height - base - 1])
                for height in heights
            )
        )
    return lines
