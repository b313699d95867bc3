"""Whole ``drconsole backup`` commands against tar, zstd and sha256sum on the same data dirs, in one run.

Each figure is a whole process, start to exit, as a user or a cron job runs it:

    create   drconsole backup create --data-dir D --repo R     tar -I 'zstd -3 -T0' -cf A -C D .
    restore  drconsole backup restore --repo R latest --data-dir T
                                                             mkdir T && tar -I zstd -xf A -C T && sync -f T
    verify   drconsole backup verify --repo R latest           zstd -qt A && sha256sum A
             (and again with A = our archive: "on ours")

on a data dir of about ``--size-mb`` MB of each engine (values half random, half repeated; with
``--values pool`` the random halves recur and ``zstd -3 -T0`` shrinks an lsm dir ~4x, our archive ~20x,
with ``fresh`` only the repeated halves compress, which lsm's own block compression has already done:
~1.1x for both; see value_source; each run prints both archives' sizes), plus an LSM dir whose WAL is
most of it (a node killed before its memtable reached the store). The two sides alternate within each
round, every round starts from a fresh copy of the data dir (untimed) and a new repository, so both see
the same page cache and the same load. Reported: the median and range [min-max] of ``--runs`` rounds for
each side, the ratio peer/ours of the medians (above 1.0: ours is faster), of the minimums, and the
range of the per-round ratios, and the load average around each duel; the machine is shared, so rerun a
figure whose load moved.

Our side does more than the peers: create takes a consistent checkpoint, hashes the archive, fsyncs
it and records the repository in the data dir; restore checks the archive's checksums and fsyncs every
file before renaming the result into place; verify walks and counts the files inside the archive too. Each
side restores and verifies the archive it made. Verify is timed a second time with the peer's tools
on our archive (``on ours``): ours is smaller and decompresses faster, so that peer ends sooner; it is
not what a user of tar + zstd verifies, and the goal line leaves it out.

Off-site (``--commands offsite,encrypt``; an sshd of its own on loopback, tests/sshd_support.py):

    offsite  drconsole backup create --repo sftp://...        tar -I 'zstd -3 -T0' -cf - -C D . | ssh H 'cat > F'
    encrypt  drconsole backup create --encrypt-key K (local)   drconsole backup create (local): the cost of
                                                               encryption (goal: ratio >= 0.87, i.e. <= 15 %)

Our sftp side streams the archive up while it packs it (as the pipe does), then has the server
hash every uploaded file to check it, and keeps a local copy of the archive until it is published.

Usage: python bench/backup_bench.py [--size-mb 250] [--runs 5] [--work DIR] [--datasets cow,lsm,rocksdb,lsm-wal]
       [--commands create,restore,verify,offsite,encrypt] [--values pool|fresh] [--quiet-load 2.5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VALUE_BYTES = 4096
DATASETS = ("cow", "lsm", "rocksdb", "lsm-wal")
# The installed entry point, as a user runs it (python -m console where it is not installed).
_ENTRY = Path(sys.executable).with_name("drconsole")
DRCONSOLE = [str(_ENTRY)] if _ENTRY.exists() else [sys.executable, "-m", "console"]


VALUES = ("pool", "fresh")


def value_source(seed: int, kind: str = "pool") -> Callable[[int], bytes]:
    """Row values: half random bytes, half a repeated text.

    ``pool``: the random half is a slice of one 1 MB random pool, so it recurs across rows (``zstd -3
    -T0`` shrinks a 250 MB lsm dir to 66 MB; our archive, whose 8 MB window holds the pool's recurrences
    about four times over where a 2 MB one holds one, to 13 MB). ``fresh``: the random half is new
    random bytes in every row, like rows of already-compressed or encrypted payloads: only the
    repeated half compresses, and an engine that compresses its own blocks (lsm, zstd level 1) has
    done that already (the 250 MB dir archives to 232 MB on both sides). The two bracket real rows; the peers'
    costs move with them too (sha256sum reads the archive, whose size the values decide).
    """
    rng = random.Random(seed)
    pool = rng.randbytes(1 << 20)

    def pooled(n: int) -> bytes:
        start = (n * 7919) % (len(pool) - VALUE_BYTES // 2)
        return pool[start : start + VALUE_BYTES // 2] + (b"%08d|" % n) * (VALUE_BYTES // 18)

    def fresh(n: int) -> bytes:
        return random.Random(seed * 1_000_003 + n).randbytes(VALUE_BYTES // 2) + (b"%08d|" % n) * (VALUE_BYTES // 18)

    return fresh if kind == "fresh" else pooled


def tree_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


_KILLED_WRITER = """
import sys
sys.path.insert(0, sys.argv[3])
from bench.backup_bench import value_source
from engines import open_engine
value = value_source(1, sys.argv[4])
engine = open_engine(sys.argv[1], durability="async")
rows = int(sys.argv[2])
for n in range(0, rows, 16):
    engine.write_batch([(b"row%010d" % i, value(i)) for i in range(n, min(rows, n + 16))])
engine._wal.flush()
print("written", flush=True)
import time; time.sleep(600)
"""


def build(dataset: str, target: Path, size_mb: int, values: str = "pool") -> str:
    """Write rows (16 to a batch) until the closed data dir holds ``size_mb`` MB; a description."""
    from engines import create_engine, open_engine

    value = value_source(1, values)
    started = time.perf_counter()
    if dataset == "lsm-wal":
        # Half the rows reach the store, the other half stay in the WAL of a writer killed with
        # SIGKILL: what a node that crashed under load leaves behind.
        create_engine(
            target, backend="lsm", durability="async", checkpoint_every_records=10**9, wal_keep_segments=0
        ).close()
        rows = int(size_mb * 1e6 / 2 / VALUE_BYTES)
        with open_engine(target, durability="async") as engine:
            for n in range(0, rows, 16):
                engine.write_batch([(b"row%010d" % i, value(i)) for i in range(n, n + 16)])
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(target), str(rows), str(ROOT), values],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().startswith("written")
        child.send_signal(signal.SIGKILL)
        child.wait()
        wal = tree_bytes(target / "wal")
        return (
            f"lsm, {rows * 2} rows of {VALUE_BYTES} B, WAL {wal / 1e6:.0f} MB of {tree_bytes(target) / 1e6:.0f} MB "
            f"(writer killed), {values} values, built in {time.perf_counter() - started:.0f} s"
        )
    create_engine(target, backend=dataset, durability="async").close()
    rows = 0
    while tree_bytes(target) < size_mb * 1e6:
        # In steps of at most 32 MB: a COW file grows by more than it was written (copied pages).
        missing = min(32e6, size_mb * 1e6 - tree_bytes(target))
        with open_engine(target, durability="async") as engine:
            for _ in range(max(1, int(missing / VALUE_BYTES / 16))):
                engine.write_batch([(b"row%010d" % n, value(n)) for n in range(rows, rows + 16)])
                rows += 16
    return f"{dataset}, {rows} rows of {VALUE_BYTES} B, {values} values, built in {time.perf_counter() - started:.0f} s"


def timed(command: list[str] | str) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, shell=isinstance(command, str), cwd=ROOT)
    return time.perf_counter() - started


def clear(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


QUIET_LOAD: float | None = None  # --quiet-load: wait for the machine to calm down before each figure
QUIET_WAIT_SECONDS = 300.0


def wait_for_quiet() -> None:
    """On a shared machine, wait (at most QUIET_WAIT_SECONDS) until the 1-minute load is under QUIET_LOAD."""
    if QUIET_LOAD is None:
        return
    deadline = time.monotonic() + QUIET_WAIT_SECONDS
    while os.getloadavg()[0] > QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(5)


def duel(
    name: str, mb: float, runs: int, peer: Callable[[], float], ours: Callable[[], float], setup: Callable[[], None]
) -> dict[str, float]:
    """Alternate the two sides ``runs`` times (who goes first alternates too); print and return the figures."""
    wait_for_quiet()
    load_before = os.getloadavg()[0]
    peer_times: list[float] = []
    our_times: list[float] = []
    for run in range(runs):
        for side in ((peer, peer_times), (ours, our_times))[:: 1 if run % 2 == 0 else -1]:
            setup()
            side[1].append(side[0]())
    load_after = os.getloadavg()[0]
    figures = {
        "peer_min": min(peer_times),
        "ours_min": min(our_times),
        "peer_median": statistics.median(peer_times),
        "ours_median": statistics.median(our_times),
        "peer_max": max(peer_times),
        "ours_max": max(our_times),
        "load_before": load_before,
        "load_after": load_after,
    }
    figures["ratio_min"] = figures["peer_min"] / figures["ours_min"]
    figures["ratio_median"] = figures["peer_median"] / figures["ours_median"]
    # The ratio of each round (the two sides ran back to back): its spread says how far to trust the median.
    ratios = sorted(peer / ours for peer, ours in zip(peer_times, our_times))
    figures["ratio_low"], figures["ratio_high"] = ratios[0], ratios[-1]
    print(
        f"  {name:8} ours {figures['ours_median']:5.2f} s [{figures['ours_min']:.2f}-{figures['ours_max']:.2f}]"
        f"  peer {figures['peer_median']:5.2f} s [{figures['peer_min']:.2f}-{figures['peer_max']:.2f}]"
        f"  ratio median {figures['ratio_median']:.2f}x (min/min {figures['ratio_min']:.2f}x; rounds "
        f"{ratios[0]:.2f}-{ratios[-1]:.2f})  {mb / figures['ours_median']:4.0f} MB/s"
        f"  load {load_before:.1f} -> {load_after:.1f}",
        flush=True,
    )
    return figures


def touched(pristine: Path) -> bool:
    """Whether a command ran on the pristine copy itself (not on the bench's copy of it).

    A backup records its repository in the data dir and leaves WAL archive status beside the
    segments: every round's copy would then carry another repository's record, and the figures
    would no longer be of a data dir as the builder left it.
    """
    try:
        marker = json.loads((pristine / "drconsole.json").read_text())
    except (OSError, ValueError):
        return True
    return marker.get("archive") is not None or (pristine / "wal" / "archive_status").exists()


def bench_dataset(
    dataset: str, work: Path, size_mb: int, runs: int, commands: list[str], values: str = "pool"
) -> dict[str, dict[str, float]]:
    base = work / (dataset if values == "pool" else f"{dataset}-{values}")
    pristine = base / "pristine"
    if (base / "built.json").exists() and touched(pristine):
        print(f"{dataset}: the pristine copy was backed up or opened outside the bench; building it again")
        (base / "built.json").unlink()
    if not (base / "built.json").exists():
        clear(pristine)
        base.mkdir(parents=True, exist_ok=True)
        note = build(dataset, pristine, size_mb, values)
        (base / "built.json").write_text(json.dumps({"size_mb": size_mb, "note": note}))
    note = json.loads((base / "built.json").read_text())["note"]
    data, repo, archive = base / "data", base / "repo", base / "peer.tar.zst"
    target, peer_target = base / "restored", base / "peer-restored"
    mb = tree_bytes(pristine) / 1e6
    print(f"{dataset}: {mb:.0f} MB ({note})", flush=True)
    results: dict[str, dict[str, float]] = {}

    def settle() -> None:
        clear(target, peer_target)
        os.sync()

    def fresh() -> None:
        clear(data, repo, archive)
        subprocess.run(["cp", "-a", str(pristine), str(data)], check=True)
        os.sync()  # the copy's dirty pages must not be written back during (and charged to) the next command

    if "create" in commands:
        results["create"] = duel(
            "create",
            mb,
            runs,
            lambda: timed(f"tar -I 'zstd -3 -T0' -cf {archive} -C {data} ."),
            lambda: timed([*DRCONSOLE, "backup", "create", "--data-dir", str(data), "--repo", str(repo)]),
            fresh,
        )
    fresh()  # one backup of each kind for restore and verify
    subprocess.run(
        [*DRCONSOLE, "backup", "create", "--data-dir", str(data), "--repo", str(repo)],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    clear(data)
    subprocess.run(["cp", "-a", str(pristine), str(data)], check=True)
    subprocess.run(f"tar -I 'zstd -3 -T0' -cf {archive} -C {data} .", shell=True, check=True)
    ours_archive = next(repo.glob("*/backup_*/*.tar.zst"))
    ours_mb, peer_mb = ours_archive.stat().st_size / 1e6, archive.stat().st_size / 1e6
    print(
        f"  archive  ours {ours_mb:.1f} MB  peer {peer_mb:.1f} MB  ({ours_mb / peer_mb:.2f} of the peer's)", flush=True
    )
    if "restore" in commands:
        results["restore"] = duel(
            "restore",
            mb,
            runs,
            lambda: timed(
                f"mkdir {peer_target} && tar -I zstd -xf {archive} -C {peer_target} && sync -f {peer_target}"
            ),
            lambda: timed([*DRCONSOLE, "backup", "restore", "--repo", str(repo), "latest", "--data-dir", str(target)]),
            settle,
        )
    if "verify" in commands:
        ours_verify = [*DRCONSOLE, "backup", "verify", "--repo", str(repo), "latest"]
        # Each side checks the backup it made, as restore extracts each side's own.
        results["verify"] = duel(
            "verify",
            mb,
            runs,
            lambda: timed(f"zstd -qt {archive} && sha256sum {archive}"),
            lambda: timed(ours_verify),
            lambda: None,
        )
        # And the peer's tools on our archive, which is smaller and decompresses faster (the
        # window finds the repeats): the figure this bench printed as verify before 2026-12-06.
        results["verify-on-ours"] = duel(
            "  on ours",
            mb,
            runs,
            lambda: timed(f"zstd -qt {ours_archive} && sha256sum {ours_archive}"),
            lambda: timed(ours_verify),
            lambda: None,
        )
    if "offsite" in commands or "encrypt" in commands:
        results.update(bench_offsite(base, data, mb, runs, commands, fresh))
    clear(data, repo, archive, target, peer_target)
    return results


def bench_offsite(
    base: Path, data: Path, mb: float, runs: int, commands: list[str], fresh: Callable[[], None]
) -> dict[str, dict[str, float]]:
    """The off-site figures: sftp against tar | ssh, and encryption against none."""
    sys.path.insert(0, str(ROOT / "tests"))
    from sshd_support import HOST_ALIAS, start_sshd

    results: dict[str, dict[str, float]] = {}
    clear(base / "sshd")  # a --work dir keeps the keys of an earlier run: ssh-keygen would ask to overwrite them
    server = start_sshd(base / "sshd")
    remote, peer_file, local_repo = base / "offsite", base / "peer-offsite.tar.zst", base / "repo-local"
    key = base / "backup.key"
    key.write_bytes(os.urandom(32))
    env = {**os.environ, "HOME": str(server.home)}
    ssh = f"ssh -F {server.home}/.ssh/config {HOST_ALIAS}"

    def run(command: list[str] | str) -> float:
        started = time.perf_counter()
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, shell=isinstance(command, str), cwd=ROOT, env=env
        )
        return time.perf_counter() - started

    def setup() -> None:
        clear(remote, peer_file, local_repo)
        fresh()

    try:
        if "offsite" in commands:
            results["offsite"] = duel(
                "offsite",
                mb,
                runs,
                lambda: run(f"tar -I 'zstd -3 -T0' -cf - -C {data} . | {ssh} 'cat > {peer_file}'"),
                lambda: run(
                    [*DRCONSOLE, "backup", "create", "--data-dir", str(data), "--repo", server.url(str(remote))]
                ),
                setup,
            )
        if "encrypt" in commands:
            results["encrypt"] = duel(
                "encrypt",
                mb,
                runs,
                lambda: run([*DRCONSOLE, "backup", "create", "--data-dir", str(data), "--repo", str(local_repo)]),
                lambda: run(
                    [
                        *DRCONSOLE,
                        "backup",
                        "create",
                        "--data-dir",
                        str(data),
                        "--repo",
                        str(local_repo),
                        "--encrypt-key",
                        str(key),
                    ]
                ),
                setup,
            )
    finally:
        server.stop()
        clear(remote, peer_file, local_repo)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=250)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, help="build the data dirs here and keep them for the next run")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--commands", default="create,restore,verify")
    parser.add_argument("--values", choices=VALUES, default="pool", help="row values (value_source)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--quiet-load",
        type=float,
        metavar="L",
        help="before each figure, wait up to 5 min for the 1-minute load average to drop under L",
    )
    args = parser.parse_args()
    global QUIET_LOAD
    QUIET_LOAD = args.quiet_load
    for tool in ("tar", "zstd", "sha256sum", "sync"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed for the peer figures")
    # Byte-compiled as pip leaves an installed package: a checkout run with PYTHONDONTWRITEBYTECODE
    # (or a read-only one) would compile every module at every start, ~60 ms no user pays.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "console", "engines", "playbooks"],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="drconsole-backup-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores; {args.runs} rounds per figure; load average {os.getloadavg()[0]:.1f}", flush=True)
    figures: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for dataset in args.datasets.split(","):
            figures[dataset] = bench_dataset(
                dataset, work, args.size_mb, args.runs, args.commands.split(","), args.values
            )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1))
    aside = ("encrypt", "verify-on-ours")  # a cost ratio, and a second view of verify
    worst = min((f["ratio_median"], d, c) for d, by in figures.items() for c, f in by.items() if c not in aside)
    print(f"lowest median ratio: {worst[0]:.2f}x ({worst[1]} {worst[2]}); goal >= 1.0x everywhere")
    encrypt = [f["ratio_median"] for by in figures.values() for c, f in by.items() if c == "encrypt"]
    if encrypt:
        print(
            f"encryption costs {100 * (1 / min(encrypt) - 1):.0f} % at worst (plain/encrypted, medians, "
            f"{min(encrypt):.2f}x); goal <= 15 %"
        )


if __name__ == "__main__":
    main()
