"""Console drills at a human pace: the RTO a person pressing keys 1-2 s apart achieves, per scenario.

    .venv/bin/python bench/console_drill_pace.py [--pace 1.5] [--scenario sstable-corrupt:lsm ...]

Each drill runs as a responder would run it: ``drconsole drill run SCENARIO --engine E --console``
in a real terminal (tmux, 120x40), and a script reads the screen (capture-pane) and presses one key
per ``--pace`` seconds, as a person who reads before pressing: 2 (Triage), a (accept the evidence)
until the conclusion, enter on the recommended playbook, s to start, the node's name typed (one
action) at each destructive step. The clock stops when the drill's own health check passes. The
peer, measured in the same run, is the unattended drill (``drill run SCENARIO --json``: the
autopilot's triage and playbooks, no keys). The console-drill targets
(``drills.SCENARIOS[...].console_rto_seconds``) come from these figures plus a margin.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRCONSOLE = ROOT / ".venv" / "bin" / "drconsole"
DEFAULT = [
    "sstable-corrupt:lsm",
    "wal-corrupt-tail:cow",
    "sst-corrupt:rocksdb",
    "page-corrupt:cow",
    "manifest-lost:lsm",
    "config-broken:rocksdb",
]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def respond(session: str, pace: float, deadline: float) -> list[str]:
    """Read the screen, press one key, wait ``pace``; until the drill clock says PASS or FAIL."""
    pressed: list[str] = []

    def press(*keys: str) -> None:
        tmux("send-keys", "-t", session, *keys)
        pressed.append(" ".join(keys))
        time.sleep(pace)

    while time.monotonic() < deadline:
        text = screen(session)
        first = text.splitlines()[0] if text else ""
        if "PASS DRILL" in text or "FAIL DRILL" in text:
            return pressed
        if "Type the node name" in text:
            press("-l", "drill-node")
            press("Enter")
        elif "· Drill" in first:
            press("2")
        elif "· Triage" in first:
            if "probing…" in text or "loading the decision tree" in text:
                time.sleep(0.2)  # reading the evidence as it comes; no key
            elif "▶ " in text and "Recommended:" in text:
                press("Enter")
            elif "a: accept" in text:
                press("a")
            elif "No playbook needed" in text or "no fault found" in text:
                raise RuntimeError("triage found no fault:\n" + text)
            else:
                time.sleep(0.2)
        elif "· Run" in first:
            if "press s to start" in text:
                press("s")
            elif "FAILED" in text or "REFUSED" in text:
                raise RuntimeError("the run failed:\n" + text)
            else:
                time.sleep(0.2)  # running, or the health check: watching
        else:
            time.sleep(0.2)
    raise RuntimeError("the drill was not over in time; the screen:\n" + screen(session))


def console_drill(scenario: str, engine: str, pace: float, workdir: Path) -> dict[str, object]:
    session = f"pace-{os.getpid()}-{scenario}-{engine}"
    out = workdir / f"{scenario}-{engine}.json"
    env = {"DRCONSOLE_STATE_DIR": str(workdir / "state"), "TERM": "xterm-256color"}
    command = (
        " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        + " "
        + shlex.join(
            [
                str(DRCONSOLE),
                "drill",
                "run",
                scenario,
                "--engine",
                engine,
                "--console",
                "--json",
                "--drill-report",
                str(workdir / f"{scenario}-{engine}.md"),
            ]
        )
        + f" > {shlex.quote(str(out))}; sleep 2"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)
    try:
        started = time.monotonic()
        while "◉ DRILL" not in screen(session):
            if time.monotonic() - started > 120:
                raise RuntimeError("the drill console did not open:\n" + screen(session))
            time.sleep(0.2)
        keys = respond(session, pace, time.monotonic() + 600)
        time.sleep(pace)
        tmux("send-keys", "-t", session, "C-q")
        for _ in range(100):
            if out.exists() and out.read_text().strip():
                break
            time.sleep(0.1)
        result = json.loads(out.read_text())
        return {"rto": result["rto_seconds"], "keys": len(keys), "passed": result["passed"]}
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def autopilot(scenario: str, engine: str, workdir: Path) -> float | None:
    done = subprocess.run(
        [str(DRCONSOLE), "drill", "run", scenario, "--engine", engine, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DRCONSOLE_STATE_DIR": str(workdir / "state-auto")},
    )
    return json.loads(done.stdout).get("rto_seconds") if done.stdout.strip() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pace", type=float, default=1.5, help="seconds between two key presses (1-2)")
    parser.add_argument("--scenario", action="append", metavar="NAME:ENGINE", help="default: " + " ".join(DEFAULT))
    args = parser.parse_args()
    print(f"console drills at a human pace: one key per {args.pace:g} s, 120x40, read before each key")
    print(
        f"{'scenario':<24}{'engine':<9}{'keys':>5}{'console RTO':>13}{'autopilot':>11}{'ratio':>8}"
        f"{'target':>8}  verdict"
    )
    from drills import SCENARIOS

    for item in args.scenario or DEFAULT:
        scenario, engine = item.split(":")
        with tempfile.TemporaryDirectory(prefix="drill-pace-") as temp:
            workdir = Path(temp)
            human = console_drill(scenario, engine, args.pace, workdir)
            peer = autopilot(scenario, engine, workdir)
        rto = float(human["rto"])  # type: ignore[arg-type]
        target = SCENARIOS[scenario].console_target_rto_seconds
        ratio = f"{rto / peer:.1f}x" if peer else "-"
        print(
            f"{scenario:<24}{engine:<9}{human['keys']:>5}{rto:>12.1f}s{(peer or 0):>10.1f}s{ratio:>8}"
            f"{target:>7g}s  {'PASS' if human['passed'] else 'FAIL'}",
            flush=True,
        )
    print("peer: the unattended drill (autopilot: the same triage and playbooks, no keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
