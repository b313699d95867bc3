"""``drconsole serve web`` in a real browser: headless Chromium opens the page on loopback, renders the
dashboard, and asks nothing of any other host (the font ships with the package).

The fleet is real: two data dirs read locally (lsm, cow) and a node whose URL nobody answers, so
the wall shows OK and DOWN. The terminal text is what the page's own websocket received, played on a
pyte screen of the page's size (no OCR); the screenshot is saved (``DRCONSOLE_SCREENSHOT_DIR``, else
the test's temp dir) for a person to look at, and its pixels are checked for the theme's status
colours, which the splash does not have.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path

import pyte
import pytest
from browser_kit import CHROMIUM, Chromium, png_pixels
from serve_kit import ServerProcess

from engines import create_engine

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (deploy/install-system-deps.sh)")

# The dark theme's status colours (themes/dark.toml): OK green, DOWN red.
OK_RGB, CRIT_RGB = (0x3F, 0xB9, 0x50), (0xF8, 0x51, 0x49)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the socket is closed


def wall_fleet(root: Path) -> Path:
    for name, backend in (("orders", "lsm"), ("ledger", "cow")):
        with create_engine(root / "nodes" / name, backend=backend, node_name=name) as engine:
            engine.put(b"k", b"v")
    (root / "reports").mkdir()
    config = root / "drconsole.toml"
    config.write_text(
        '[console]\nrefresh_seconds = 1.0\nreport_dir = "reports"\n\n'
        '[[node]]\nname = "orders"\nengine = "lsm"\ndata_dir = "nodes/orders"\n\n'
        '[[node]]\nname = "ledger"\nengine = "cow"\ndata_dir = "nodes/ledger"\n\n'
        f'[[node]]\nname = "vanished"\nengine = "rocksdb"\nurl = "http://127.0.0.1:{closed_port()}"\n',
        encoding="utf-8",
    )
    return config


def near(pixel: tuple[int, int, int], colour: tuple[int, int, int], tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


@pytest.mark.timeout(120)
def test_the_wall_page_renders_in_chromium_with_no_request_off_this_server(tmp_path: Path) -> None:
    config = wall_fleet(tmp_path)
    server = ServerProcess(
        ["web", "--port", "0", "--config", str(config)], tmp_path, pattern=r"listening on 127\.0\.0\.1:(\d+)"
    )
    shots = Path(os.environ.get("DRCONSOLE_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    origin = f"127.0.0.1:{server.port}"

    async def browse() -> tuple[str, list[str], list[object], bool, bool, bytes]:
        async with Chromium(tmp_path / "profile", width=1600, height=1000) as browser:
            page = await browser.open(f"http://{origin}/?fontsize=14")
            await page.wait_for(lambda: bool(page.terminal_bytes()), 40, "the dashboard's first bytes")

            def text() -> str:
                # The terminal's size is the one the page asked for: read it from the resize the app got.
                screen = pyte.Screen(400, 120)
                pyte.ByteStream(screen).feed(page.terminal_bytes())
                return "\n".join(screen.display)

            await page.wait_for(
                lambda: all(word in text() for word in ("orders", "ledger", "vanished", "DOWN")),
                40,
                "the three nodes and their statuses",
            )
            started = False
            for _ in range(50):  # textual.js shows the terminal (and hides the splash) on its first byte
                started = bool(await page.evaluate("document.body.classList.contains('-first-byte')"))
                if started:
                    break
                await asyncio.sleep(0.1)
            fonts_ready = await page.evaluate(
                "document.fonts.ready.then(() => document.fonts.check('16px \"Roboto Mono\"'))"
            )
            await asyncio.sleep(1.5)  # the last frame drawn on the canvas
            await page.screenshot(shots / "serve-web-dashboard.png")
            small = await page.send(
                "Page.captureScreenshot",
                {"format": "png", "clip": {"x": 0, "y": 0, "width": 1600, "height": 1000, "scale": 0.25}},
            )
            return (
                text(),
                page.requested(),
                page.failed(),
                bool(started),
                bool(fonts_ready),
                base64.b64decode(small["data"]),
            )

    try:
        text, requested, failed, started, fonts_ready, small = asyncio.run(browse())
    finally:
        server.stop()
    assert started, "the page never left its splash"
    for word in ("Dashboard", "READ-ONLY", "orders", "ledger", "vanished", "✖", "DOWN", "✔"):
        assert word in text, (word, text)
    assert "✔ OK no active alerts" not in text  # a node is DOWN: the strip never says all is well
    # No request to any other host: the page, its script and styles, the font, the websocket.
    assert requested and all(
        url.startswith((f"http://{origin}/", f"ws://{origin}/", "data:", "about:")) for url in requested
    ), requested
    assert any(url.endswith(".ttf") for url in requested), requested  # the bundled font was asked for
    assert fonts_ready, "Roboto Mono did not load from the server"
    assert not failed, failed
    width, height, rows = png_pixels(small)
    pixels = {(row[i], row[i + 1], row[i + 2]) for row in rows for i in range(0, len(row), 3)}
    assert len(pixels) > 40, f"{len(pixels)} colours: a blank page or the splash"
    assert any(near(pixel, CRIT_RGB) for pixel in pixels), "no DOWN red on the page"
    assert any(near(pixel, OK_RGB) for pixel in pixels), "no OK green on the page"
