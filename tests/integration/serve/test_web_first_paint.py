"""``drconsole serve web`` for a browser that takes one look: Chromium's one-shot ``--screenshot`` and
``--dump-dom`` (no DevTools, no virtual time budget, no waiting) see the dashboard, not a splash.

The page carries the dashboard's first frame, rendered by the server before it answered
(console/cli/servers/first_frame.py). The DOM Chromium dumps is read for the node names and statuses
(text, no OCR); the screenshot of the same URL is checked against that DOM: the status colours
are on it, and where they are agrees with where the DOM puts each node (the DOWN node's red on
its side of the screen, the OK nodes' green on theirs).
"""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import pytest
from browser_kit import CHROMIUM, png_pixels
from serve_kit import ServerProcess
from test_web_browser import CRIT_RGB, OK_RGB, near, wall_fleet

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (deploy/install-system-deps.sh)")

WIDTH, HEIGHT = 1600, 1000
COLUMNS, ROWS = 120, 40


def one_shot(profile: Path, *args: str) -> bytes:
    """Debian chromium the way a person or a cron job runs it: one command, it loads, it answers, it exits."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout


def frame_rows(dom: str) -> list[str]:
    """The text of each row of the first frame in the dumped DOM."""
    frame = dom.split('id="first-frame"', 1)
    assert len(frame) == 2, "the page has no first frame: " + dom[-1500:]
    rows = re.findall(r'<div class="row">(.*?)</div>', frame[1], flags=re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", row)) for row in rows]


@pytest.mark.timeout(180)
def test_a_one_shot_headless_screenshot_shows_the_nodes_and_their_statuses(tmp_path: Path) -> None:
    config = wall_fleet(tmp_path)
    server = ServerProcess(
        ["web", "--port", "0", "--config", str(config)], tmp_path, pattern=r"listening on 127\.0\.0\.1:(\d+)"
    )
    url = f"http://127.0.0.1:{server.port}/?size={COLUMNS}x{ROWS}"
    shot = tmp_path / "first-paint.png"
    try:
        dom = one_shot(tmp_path / "dom-profile", "--dump-dom", url).decode()
        one_shot(tmp_path / "shot-profile", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url)
    finally:
        server.stop()

    rows = frame_rows(dom)
    assert len(rows) == ROWS and all(len(row) == COLUMNS for row in rows), [len(row) for row in rows]
    text = "\n".join(rows)
    for word in ("Dashboard", "READ-ONLY", "orders", "ledger", "vanished", "✔ 2 OK", "✖ 1 DOWN", "unreachable"):
        assert word in text, (word, text)
    assert "✔ OK no active alerts" not in text  # a node is DOWN: the strip never says all is well
    titles = next(row for row in rows if "vanished" in row and "orders" in row)
    down_column, ok_column = titles.index("vanished"), max(titles.index("orders"), titles.index("ledger"))
    assert ok_column < down_column, titles

    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    # The frame is scaled to the window by its font size; a cell's width in pixels follows from it.
    # (the page's CSS: font size = min(100vw / (columns * 0.6), 100vh / (rows * 1.2)), Roboto Mono's advance 0.6 em)
    cell = min(WIDTH / (COLUMNS * 0.6), HEIGHT / (ROWS * 1.2)) * 0.6
    red_x: list[int] = []
    green_x: list[int] = []
    colours: set[tuple[int, int, int]] = set()
    for row in pixels[::4]:
        for x in range(0, width, 2):
            pixel = (row[3 * x], row[3 * x + 1], row[3 * x + 2])
            colours.add(pixel)
            if near(pixel, CRIT_RGB):
                red_x.append(x)
            elif near(pixel, OK_RGB):
                green_x.append(x)
    assert len(colours) > 40, f"{len(colours)} colours: a blank page or the splash"
    assert red_x, "no DOWN red on the screenshot"
    assert green_x, "no OK green on the screenshot"
    # Where the DOM puts the DOWN node's card, the screenshot is red; the OK cards' green is left of it.
    card_left = (down_column - 4) * cell
    assert sorted(red_x)[len(red_x) // 2] > card_left, (card_left, sorted(red_x)[len(red_x) // 2])
    assert max(green_x) < card_left, (card_left, max(green_x))
