"""Every CLI command against bad input, the table generated from the real parser (bad_input_cases.py).

Each case runs ``main()`` in this process against one shared world (a data dir, a backup
repository, a config, read-only mounts of copies of both) and checks: the documented exit code,
exactly one line on stderr (``drconsole: error: ...``, no traceback, never "a bug"), nothing on
stdout, and the world's tree unchanged, byte for byte (cli_support.tree_hash; a repository's own
operation log may grow). A case that
changed it fails and the world is put back, so that one bug does not spread to the next case.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest
from bad_input_cases import Case, cases
from cli_support import DRCONSOLE, Result, cli, make_data_dir, tree_hash
from integration.node.node_support import free_port

CASES = cases()


@dataclass
class World:
    root: Path
    pristine: Path
    places: dict[str, str]
    read_only: str | None  # why the read-only mounts are missing, or None

    def fill(self, argv: tuple[str, ...]) -> list[str]:
        words = []
        for word in argv:
            for name, value in self.places.items():
                word = word.replace("{" + name + "}", value)
            words.append(word)
        return words

    def restore(self) -> None:
        for child in self.root.iterdir():
            if child.name != "ro":
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        for child in self.pristine.iterdir():
            target = self.root / child.name
            if child.name != "ro":
                shutil.copytree(child, target, symlinks=True) if child.is_dir() else shutil.copy2(child, target)


def _mount_read_only(source: Path) -> str | None:
    """Bind-mount ``source`` read-only over itself; why not, when refused."""
    if os.geteuid() != 0:
        return "read-only bind mounts need root"
    for command in (["mount", "--bind", str(source), str(source)], ["mount", "-o", "remount,ro,bind", str(source)]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            subprocess.run(["umount", str(source)], capture_output=True, timeout=30)
            return f"mount refused here: {done.stderr.strip() or done.returncode}"
    return None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from engines.backup import create_backup

    root = tmp_path_factory.mktemp("world")
    data = make_data_dir(root / "data", "lsm")
    create_backup(root / "repo", data_dir=data)
    (root / "rows.jsonl").write_text('{"key": "a", "value": "1"}\n', encoding="utf-8")
    (root / "deep.jsonl").write_text('{"key": "a", "value": "1"}\n' + "[" * 100_000 + "\n", encoding="utf-8")
    (root / "file.txt").write_text("a regular file\n")
    (root / "cwd").mkdir()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    (root / "drconsole.toml").write_text(
        f'[[node]]\nname = "orders"\nengine = "lsm"\nurl = "{dead}"\ndata_dir = "{data}"\n'
        f'backup_repo = "{root / "repo"}"\n',
        encoding="utf-8",
    )
    for name, damage in (("damaged_archive", "archive"), ("damaged_metadata", "metadata")):
        shutil.copytree(root / "repo", root / name)
        folder = next(path for path in (root / name).glob("*/backup_*") if path.is_dir())
        if damage == "archive":
            archive = folder / f"{folder.name}.tar.zst"
            raw = bytearray(archive.read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            archive.write_bytes(bytes(raw))
        else:
            (folder / f"{folder.name}.metadata.json").write_text("{ cut short")
    ro = root / "ro"
    shutil.copytree(data, ro / "data")
    shutil.copytree(root / "repo", ro / "repo")
    why = _mount_read_only(ro)
    pristine = tmp_path_factory.mktemp("pristine")
    shutil.rmtree(pristine)
    shutil.copytree(root, pristine, ignore=shutil.ignore_patterns("ro"))
    places = {
        "data": str(data),
        "repo": str(root / "repo"),
        "rows": str(root / "rows.jsonl"),
        "deep": str(root / "deep.jsonl"),
        "file": str(root / "file.txt"),
        "cwd": str(root / "cwd"),
        "config": str(root / "drconsole.toml"),
        "out": str(root / "out.jsonl"),
        "fresh": str(root / "fresh"),
        "missing": str(root / "missing"),
        "dead": dead,
        "ro_data": str(ro / "data"),
        "ro_repo": str(ro / "repo"),
        "damaged_archive": str(root / "damaged_archive"),
        "damaged_metadata": str(root / "damaged_metadata"),
    }
    try:
        yield World(root, pristine, places, why)
    finally:
        if why is None:
            subprocess.run(["umount", str(ro)], capture_output=True, timeout=30)


def world_hash(root: Path) -> str:
    """``tree_hash`` of the world, but for the repositories' own operation logs (``<repo>/logs/``):
    a restore that starts and then finds the archive damaged says so there, by design."""
    parts = []
    for child in sorted(root.iterdir()):
        if (child / "drconsole-backup.json").exists():
            parts += [
                f"{child.name}/{inner.name}:{tree_hash(inner)}"
                for inner in sorted(child.iterdir())
                if inner.name != "logs"
            ]
        else:
            parts.append(f"{child.name}:{tree_hash(child)}")
    return "\n".join(parts)


class _Hung(BaseException):  # not an Exception: no handler on the way may swallow it
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hung()


def _run(
    case: Case,
    world: World,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
    real: bool = False,
) -> tuple[list[str], Result]:
    """Run the case (in-process, or the real console script); check the line on stderr and the world."""
    if case.kind == "read-only" and world.read_only is not None:
        pytest.skip(world.read_only)
    monkeypatch.chdir(world.places["cwd"])
    argv = world.fill(case.argv) + list(extra)
    before = world_hash(world.root)
    if real:
        done = subprocess.run([str(DRCONSOLE), *argv], capture_output=True, timeout=60, cwd=world.places["cwd"])
        result = Result(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))
    else:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(30)  # a case that got past its check would serve or run on: fail it, do not hang
        try:
            result = cli(capsys, *argv)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    changed = world_hash(world.root) != before
    if changed:
        world.restore()
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert result.code == case.expected, f"{argv}: exit {result.code}, wanted {case.expected}: {result.err!r}"
    assert len(lines) == 1 and lines[0].startswith("drconsole: error: "), f"{argv}: {result.err!r}"
    assert "bug in drconsole" not in lines[0] and "Traceback" not in result.err, lines[0]
    if case.contains:
        assert any(words in lines[0] for words in case.contains), f"{argv}: {lines[0]!r} says none of {case.contains}"
    assert not changed, f"{argv} changed the world"
    return argv, result


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(
    case: Case, world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv, result = _run(case, world, capsys, monkeypatch)
    assert result.out == "", f"{argv}: printed {result.out!r}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_with_json_through_the_console_script(
    case: Case, world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exhaustive variant: the installed ``drconsole`` in its own process, with --json."""
    if case.kind == "nul":
        pytest.skip("a NUL byte cannot be passed in a process's arguments (in-process only)")
    argv, result = _run(case, world, capsys, monkeypatch, "--json", real=True)
    payload = result.json()
    assert payload["exit_code"] == case.expected and payload["error"], f"{argv}: {payload}"


def test_the_table_covers_every_command_and_grows_with_the_cli() -> None:
    from bad_input_cases import leaves

    commands = {command for command, _ in leaves()}
    assert {case.command for case in CASES} == commands
    assert len(CASES) > 330
    kinds = {case.kind for case in CASES}
    assert {"missing", "garbage", "wrong-type", "huge", "non-utf8", "wrong-backend", "unwritable", "read-only"} <= kinds
