"""The fsync mutation check (issue 19, item 2): no-op each sync call site in turn, see a test fail.

1. The fast power-loss tests run once, recording which sync sites each test goes through
   (``DRCONSOLE_POWERLOSS_RECORD``); they must pass.
2. For each site, the tests that go through it run again with that site a no-op
   (``DRCONSOLE_POWERLOSS_NOOP``), stopping at the first failure: that test catches the site.
3. With every site a no-op, the power-loss tests must fail.

Run ``.venv/bin/python tests/powerloss/mutations.py docs/powerloss-sites.md`` to regenerate the
list; tests/powerloss/test_fsync_mutations.py runs the same check (slow). With
``DRCONSOLE_MUTATION_PROGRESS=FILE.jsonl`` each outcome is appended to FILE as it comes, and a
second run with the same FILE reruns only the sites it does not show caught (after adding tests;
not after changing engine code, whose line numbers name the sites).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAST = "powerloss and not slow"
# Sites whose sync another one covers in every path a scenario takes, or that no correctness
# property needs: (file, text on the calling line, text on fsutil's line or "", kind) -> why.
# Matched on code text, not line numbers, so merges do not shift them. A directory fsync
# persists every entry of the directory, so of two with no entry changed between them only one
# matters; removing both is caught (the all-no-op run).
_STAGING = (
    "a file written inside a backup's staging directory: publish fsyncs the staging directory "
    "before the rename makes it visible"
)
_CREATE = "written while a data dir is created: create_engine fsyncs the data dir before it returns"
_LATER_DIR_SYNC = (
    "the repair's next step replaces a file in the same directory (atomic write + directory "
    "fsync) before it returns, which persists this entry too"
)
REDUNDANT: dict[tuple[str, str, str, str], str] = {
    ("engines/backup/create.py", "atomic_write_text", "", "fsync_dir"): _STAGING,
    ("engines/backup/metadata.py", "atomic_write_text", "", "fsync_dir"): _STAGING
    + "; verify's later rewrite (its last-verified stamp), if its rename is lost, leaves the "
    "previous metadata, which is whole",
    (
        "engines/backup/archive.py",
        "atomic_write_bytes(target, data)",
        "fsync_dir(path.parent)",
        "fsync_dir",
    ): "a segment copied into the archive: the archive manifest written next, in the same directory, "
    "fsyncs it (atomic write) before anything relies on the copy",
    (
        "engines/backup/archive.py",
        "OBSERVED_NAME",
        "",
        "fsync",
    ): "not needed for correctness: the newest 'observed' bound for point-in-time targets; lost or "
    "stale, observation() reads it as absent or older, which narrows what PITR can prove",
    ("engines/backup/archive.py", "OBSERVED_NAME", "", "fsync_dir"): "as above (the observation file)",
    (
        "engines/backup/archive.py",
        "self.path / MANIFEST_NAME",
        "",
        "fsync_dir",
    ): "the archive manifest's rename: the SHA256SUMS write right after, in the same directory, ends with a "
    "directory fsync that persists it too; a cut between the two leaves the old manifest and the segment "
    "just copied in unlisted, the state a cut between the copy-in and the manifest leaves anyway, which the "
    "next archive_segment lists (same sha256) before anything relies on it",
    (
        "engines/backup/archive.py",
        "self.path / SUMS_NAME",
        "",
        "fsync_dir",
    ): "the archive SHA256SUMS's rename: lost, the previous SHA256SUMS stays, whole and listing every segment "
    "but the newest (the state of a cut between the manifest and SHA256SUMS writes, which "
    "test_backup_powerloss's _assert_archive_sums_whole accepts); the next manifest write replaces it and "
    "remove() ends with a directory fsync of its own",
    (
        "engines/backup/archive.py",
        "fsync_dir(self.path)",
        "",
        "fsync_dir",
    ): "unlinks of segments the archive manifest already dropped: if they come back, pruned_leftovers() "
    "lists them, verify ignores them and the next prune deletes them",
    (
        "engines/backup/repository.py",
        "REPO_MARKER",
        "",
        "fsync",
    ): "the new repository's marker: claim_source rewrites it (fsync + directory fsync) in every backup "
    "before anything is published",
    ("engines/backup/repository.py", "REPO_MARKER", "", "fsync_dir"): "as above (the repository marker)",
    (
        "engines/backup/repository.py",
        "fsync_dir(staging)",
        "",
        "fsync_dir",
    ): "publish's fsync of the staging directory: every writer of a backup ends with an atomic write into "
    "it (metadata.json, whose directory fsync makes the archive's entry durable too); kept so that publish "
    "does not depend on what its caller wrote last. With both no-ops the all-sites run fails",
    (
        "engines/backup/repository.py",
        "fsync_dir(self.tmp)",
        "",
        "fsync_dir",
    ): "the old name of a published backup under .tmp/: a directory rename is one journal transaction "
    "on ext4/xfs, so both names cannot survive; kept for file systems that do not promise it",
    (
        "engines/backup/restore.py",
        "fsync_dir(staging)",
        "",
        "fsync_dir",
    ): "removing the partial mark: a mark left in a restored data dir is ignored (only "
    ".NAME.restore-*.partial directories are examined for it)",
    (
        "engines/base.py",
        "fsync_dir(self.wal_dir)",
        "",
        "fsync_dir",
    ): "recycled WAL segments coming back are covered by the store's durable LSN: replay starts after "
    "it and the next recycle deletes them again",
    ("engines/lsm/engine.py", "fsync_dir(path)", "", "fsync_dir"): _CREATE,
    (
        "engines/rocksdb/engine.py",
        "dest / STATE_FILE",
        "",
        "fsync_dir",
    ): "the state file written into a checkpoint's staging directory: Engine.checkpoint then writes the "
    "marker there (an atomic write whose directory fsync persists this entry too) before the rename "
    "makes the copy visible",
    ("engines/rocksdb/engine.py", '{"durable_lsn": 0}', "", "fsync_dir"): _CREATE,
    (
        "engines/registry.py",
        "fsync_dir(path)",
        "",
        "fsync_dir",
    ): "the stores' own create paths fsync the data dir after their last entry (cow build_file, lsm "
    "_store_create, the rocksdb state file)",
    ("engines/lsm/repair.py", "new_quarantine", "mkdir_durable(target.parent)", "fsync_dir"): _LATER_DIR_SYNC,
    ("engines/cow/salvage.py", "new_quarantine", "mkdir_durable(target.parent)", "fsync_dir"): _LATER_DIR_SYNC,
    (
        "engines/cow/repair.py",
        "new_quarantine",
        "mkdir_durable(target.parent)",
        "fsync_dir",
    ): "rebuild_from_snapshot's quarantine folder: the data dir fsync after replacing data.cow persists "
    "the new .quarantine entry too, before the rebuild returns; a cut before leaves the damaged data.cow "
    "in place (test_cow_rebuild_from_snapshot_survives_power_cuts)",
    (
        "engines/lsm/repair.py",
        "move_to_quarantine",
        "fsync_dir(source.parent)",
        "fsync_dir",
    ): "the old manifest or table coming back where it was: the new manifest replaces the one, and the "
    "repair's replay flush fsyncs sstables/ (making the table's removal durable) before it returns",
}


# Call sites no power-loss scenario goes through, and why: (file, text of the call) -> note. Not a
# claim that the sync is unneeded: what is not modelled, said in the list instead of left blank.
UNEXERCISED: dict[tuple[str, str], str] = {
    ("engines/backup/create.py", "REPO_MARKER"): "the repository marker rewritten for off-site copies or a "
    "signing key (options no power-loss scenario sets)",
    ("engines/backup/mirror.py", "atomic_write_text"): "the encryption record of a mirrored repository (not modelled)",
    ("engines/backup/restore.py", "fsync_dir(parent)"): "the restore's fallback where the kernel lacks "
    "renameat2(RENAME_EXCHANGE): this one has it, so the exchange path runs",
    ("engines/backup/schedule.py", "atomic_write_text"): "`backup schedule`'s systemd unit files (not modelled)",
    ("engines/backup/sftp_store.py", "fsync"): "the SFTP store: the remote end's durability is not this model's",
    ("engines/backup/store.py", "fsync"): "remote stores' local working copies and the plain directory store's "
    "publish of working copies (a repository reached through a store, not a path: not modelled)",
    ("engines/backup/store.py", "fsync_dir"): "as above (stores)",
    ("engines/node/", ""): "the node's state, health and divergence-salvage files (cluster paths: not modelled)",
    ("engines/rocksdb/engine.py", ""): "RocksDB repair: Rdict.repair writes RocksDB's own files outside the layer "
    "(not modelled)",
    ("engines/wal/truncate.py", ""): "the cross-device branch of a quarantine move (EXDEV): the quarantine is "
    "inside the data dir in every scenario",
    ("engines/lsm/version_set.py", "fsync_dir"): "unlinks of tables retired or left by a crash, at open: if they "
    "come back, the next open removes them again (no scenario leaves such tables before an open)",
    ("engines/lsm/repair.py", "move_to_quarantine"): "a partial table file (.tmp) moved aside by a manifest "
    "rebuild (no scenario leaves one)",
}


def unexercised_note(key: str) -> str:
    relative, _, number = key.rpartition(":")
    text = _line(relative, int(number)) if number.isdigit() else ""
    for (file, calling), note in UNEXERCISED.items():
        if relative.startswith(file) and calling in text:
            return note
    return ""


def _line(relative: str, number: int) -> str:
    """The text of the call that starts on line ``number`` (all its lines), else the line itself.

    A call spread over several lines (``atomic_write_text(\n path / OBSERVED_NAME, ...)``) is
    matched on its arguments too, not only on its first line.
    """
    try:
        source = (ROOT / relative).read_text(encoding="utf-8")
    except OSError:
        return ""
    calls = [
        ast.get_source_segment(source, node) or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and node.lineno == number
    ]
    if calls:
        return max(calls, key=len)
    lines = source.splitlines()
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def why_not_needed(site: str) -> str | None:
    """The REDUNDANT reason that matches ``site`` (``file:line function [via helper:line] [kind]``)."""
    head, _, kind = site.rpartition(" [")
    kind = kind.rstrip("]")
    location = head.split(" ")[0]
    relative, _, number = location.rpartition(":")
    if not number.isdigit():
        return None
    caller = _line(relative, int(number))
    helper = ""
    if " via " in head:
        _name, _, helper_line = head.split(" via ")[1].rpartition(":")
        helper = _line("engines/fsutil.py", int(helper_line)) if helper_line.isdigit() else ""
    for (file, calling, inner, sync), why in REDUNDANT.items():
        if file == relative and calling in caller and inner in helper and sync == kind:
            return why
    return None


# The entry points that sync (engines/fsio.py, and engines/fsutil.py's helpers built on it).
SYNC_CALLS = {
    "fsync",
    "fdatasync",
    "pwrite_dsync",
    "fsync_dir",
    "fsync_file",
    "atomic_write_bytes",
    "atomic_write_text",
    "mkdir_durable",
    "move_to_quarantine",
    "new_quarantine",
}


def static_sites() -> dict[str, str]:
    """``file:line`` of every call to a sync entry point in engine code -> the function called.

    Calls inside engines/fsio.py and engines/fsutil.py are the helpers themselves: their sites
    are their callers. A call with ``site="name"`` is known by that name.
    """
    found: dict[str, str] = {}
    for path in sorted((ROOT / "engines").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in ("engines/fsio.py", "engines/fsutil.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            explicit = [
                k.value.value
                for k in node.keywords
                if k.arg == "site" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)
            ]
            forwards = any(isinstance(arg, ast.Name) and arg.id == "site" for arg in node.args)
            if explicit:
                found[explicit[0]] = name
            elif forwards:
                continue  # a helper handing its caller's site on (PageFile.sync): its callers are the sites
            elif name in SYNC_CALLS:
                found[f"{relative}:{node.lineno}"] = name
    return found


def site_key(site: str) -> str:
    """The static key of a recorded site: ``file:line`` or the explicit name."""
    return site.rpartition(" [")[0].split(" ")[0]


@dataclass
class Outcome:
    site: str
    tests: list[str]
    caught_by: str | None = None
    output: str = field(default="", repr=False)


def _pytest(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args]
    return subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )


def record_sites(timeout: float = 900) -> dict[str, list[str]]:
    """site -> the fast power-loss tests that go through it (the run must pass)."""
    with tempfile.TemporaryDirectory() as scratch:
        record = Path(scratch) / "sites.jsonl"
        done = _pytest(["-m", FAST, "tests/powerloss"], {"DRCONSOLE_POWERLOSS_RECORD": str(record)}, timeout)
        assert done.returncode == 0, f"the power-loss tests fail without any mutation:\n{done.stdout[-3000:]}"
        sites: dict[str, list[str]] = {}
        for line in record.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            for site in entry["sites"]:
                if not site.startswith("tests/") or " via " in site:  # a test's own fsio call is not under test
                    sites.setdefault(site, []).append(entry["test"])
    return sites


def _failed(output: str) -> str | None:
    for line in output.splitlines():
        if line.startswith("FAILED "):
            return line.split()[1]
    return None


def mutate(site: str, tests: list[str], timeout: float = 900) -> Outcome:
    """Run ``tests`` with ``site`` a no-op; if none fails (and no reason says why), their exhaustive (slow) variants.

    The fast tests cut at a sample of sync calls: a sync whose loss shows only at one cut point
    (cow pages before meta, with the torn variant) needs every point.
    """
    env = {"DRCONSOLE_POWERLOSS_NOOP": site}
    done = _pytest(["-x", *tests], env, timeout)
    # A site listed as not needed (REDUNDANT, with its reason) is not run through every cut of
    # the slow variants: that is hours of runs to confirm what the reason already says.
    if done.returncode == 0 and why_not_needed(site) is None:
        files = sorted({test.split("::")[0] for test in tests})
        ids = sorted({test.rpartition("[")[2].rstrip("]") for test in tests if "[" in test})
        named = [part for name in ids for part in name.split("-") if not part.isdigit()]
        select = ["-k", " or ".join(sorted(set(named)))] if named else []
        done = _pytest(["-x", "-m", "powerloss and slow", *select, *files], env, timeout)
    outcome = Outcome(site, tests, output=done.stdout[-2000:])
    if done.returncode not in (0, 5):  # 5: nothing selected
        outcome.caught_by = _failed(done.stdout) or f"pytest exit {done.returncode}"
    return outcome


def all_noop(timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return _pytest(["-m", FAST, "tests/powerloss"], {"DRCONSOLE_POWERLOSS_NOOP": "*"}, timeout)


def report(outcomes: list[Outcome], everything: subprocess.CompletedProcess[str]) -> str:
    lines = [
        "# Sync call sites and the power-loss test that catches each",
        "",
        "Generated by `tests/powerloss/mutations.py` (issue 19, item 2): each fsync, fdatasync,",
        "`pwritev(RWF_DSYNC)` and directory fsync call site of the engines, made a no-op on its own,",
        "and the first power-loss test that then fails. A site is `file:line function` of the",
        "engine code that asks for the sync (`via helper:line` when it goes through `engines/fsutil.py`).",
        "Line numbers are those of the commit the list was generated on.",
        "",
        "| call site | kind | caught by |",
        "|---|---|---|",
    ]
    for outcome in sorted(outcomes, key=lambda o: o.site):
        name, _, kind = outcome.site.rpartition(" [")
        why = why_not_needed(outcome.site)
        caught = f"`{outcome.caught_by}`" if outcome.caught_by else f"not needed: {why}" if why else "**not caught**"
        lines.append(f"| `{name}` | {kind.rstrip(']')} | {caught} |")
    reached = {site_key(outcome.site) for outcome in outcomes}
    unexercised = {key: name for key, name in static_sites().items() if key not in reached}
    if unexercised:
        lines += ["", "Call sites no power-loss scenario goes through (so no mutation tells about them):", ""]
        for key, name in sorted(unexercised.items()):
            note = unexercised_note(key)
            lines.append(f"- `{key}` ({name})" + (f": {note}" if note else ""))
    summary = everything.stdout.strip().splitlines()[-1] if everything.stdout.strip() else "?"
    lines += [
        "",
        f'With every site a no-op at once, `pytest -m "{FAST}" tests/powerloss`: {summary} '
        f"(exit {everything.returncode}).",
    ]
    return "\n".join(lines) + "\n"


def run(progress: Path | None = None) -> tuple[list[Outcome], subprocess.CompletedProcess[str]]:
    """Every site in turn. ``progress``: a JSON-lines file each outcome is appended to; sites it
    already shows caught are not run again (valid only while the engine code is unchanged: a
    resumed run is for adding tests, and line numbers must still match)."""
    known: dict[str, str] = {}
    if progress is not None and progress.exists():
        for line in progress.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if entry.get("caught_by"):
                known[entry["site"]] = entry["caught_by"]
    outcomes = []
    for site, tests in sorted(record_sites().items()):
        outcome = Outcome(site, tests, known[site]) if site in known else mutate(site, tests)
        outcomes.append(outcome)
        if progress is not None and site not in known:
            with open(progress, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"site": site, "tests": tests, "caught_by": outcome.caught_by}) + "\n")
    return outcomes, all_noop()


if __name__ == "__main__":
    # DRCONSOLE_MUTATION_PROGRESS=FILE.jsonl: record outcomes as they come, and resume from them.
    found, everything = run(
        Path(os.environ["DRCONSOLE_MUTATION_PROGRESS"]) if "DRCONSOLE_MUTATION_PROGRESS" in os.environ else None
    )
    text = report(found, everything)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    print(text)
