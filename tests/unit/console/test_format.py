"""How figures read: exact strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from console.format import (
    bar,
    bytes_text,
    clock_text,
    count_text,
    duration_text,
    health_markup,
    percent_text,
    severity_markup,
    sparkline,
)
from console.tui.bigfont import big_rows, big_width
from fleet import AlertSeverity, Health


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "—"),
        (0, "0B"),
        (1023, "1023B"),
        (1536, "1.5K"),
        (20 * 2**20, "20M"),
        (int(9.5 * 2**30), "9.5G"),
        (3 * 2**40, "3.0T"),
    ],
)
def test_bytes(size: int | None, text: str) -> None:
    assert bytes_text(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0s"),
        (38, "38s"),
        (252, "4m12s"),
        (1800, "30m"),
        (3600, "1h"),
        (11520, "3h12m"),
        (93600, "1d2h"),
        (86400, "1d"),
    ],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_ratios_counts_and_clock() -> None:
    assert percent_text(0.914) == "91%" and percent_text(None) == "—"
    assert count_text(1207150) == "1,207,150" and count_text(None) == "—"
    moment = datetime(2024, 5, 14, 12, 3, 31, tzinfo=UTC)
    assert clock_text(moment, UTC) == "12:03:31"
    assert clock_text(moment, timezone(timedelta(hours=2))) == "14:03:31"


def test_bars_and_sparklines() -> None:
    assert bar(0.6, 10) == "██████░░░░"
    assert bar(None, 4) == "····"
    assert bar(1.7, 3) == "███"
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5], 8) == "▁▁▁"
    assert sparkline(range(100), 4) == "▁▃▆█"
    assert sparkline([], 4) == ""


def test_status_is_a_symbol_and_a_word_never_colour_alone() -> None:
    assert health_markup(Health.OK) == "[bold $status-ok]✔ OK[/]"
    assert health_markup(Health.DOWN) == "[bold $status-crit]✖ DOWN[/]"
    assert health_markup(Health.DEGRADED, bold=False) == "[$status-warn]▲ DEGRADED[/]"
    assert severity_markup(AlertSeverity.WARNING) == "[bold $status-warn]▲ WARN[/]"


def test_large_type() -> None:
    assert big_rows("OK") == ("┏━┓ ╻ ╻", "┃ ┃ ┣┳┛", "┗━┛ ╹┗╸")
    assert big_width("OK") == 7
    assert big_rows("ok?") is not None
    assert big_rows("Z") is None and big_rows("") is None


def test_the_clock_is_utc_unless_told_otherwise_and_local_time_is_named() -> None:
    import os
    import time

    from console.format import local_clock_text

    moment = datetime(2026, 12, 6, 3, 0, 5, tzinfo=UTC)
    assert clock_text(moment) == "03:00:05"
    saved = os.environ.get("TZ")
    try:
        os.environ["TZ"] = "America/New_York"
        time.tzset()
        assert clock_text(moment) == "03:00:05"  # the host's zone does not move the console's clock
        assert local_clock_text(moment) == "22:00 EST"
        os.environ["TZ"] = "UTC"
        time.tzset()
        assert local_clock_text(moment) is None  # nothing to add on a UTC host
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
