"""Backup, restore, verify and PITR throughput against tar, zstd and sha256sum in the same run.

A RocksDB data dir of about ``--size-mb`` MB (values half random, half repeated: zstd shrinks them
about 2x, as real rows do) is backed up with ``backup create`` and packed by the peer,
``tar -I 'zstd -3 -T0' -cf``. Restore is compared with ``tar -I zstd -xf`` of the same archive,
verification with ``zstd -t`` + ``sha256sum`` of the archive (and with ``sha256sum`` of the data
dir's files). Then archived WAL is written after the backup and a point-in-time recovery to its
middle is timed. Each figure is the best of ``--runs`` runs, page cache warm for both sides.

Our side does more than the peers: backup hashes every file and the archive and archives the
sealed WAL (on a repository's first backup, only the segments that reach past its
checkpoint: each run here starts a new repository, as a first backup does); restore checks every checksum and fsyncs every file (``tar -x`` does neither, so
restore is also compared with ``tar -x`` followed by ``sync -f``);
verify checks every file inside the archive too.

Goals (issue 5): >= 1.0x on backup, restore and verify; PITR of 512 MB in under 15 s on 2 cores.

Usage: python bench/backup_bench.py [--size-mb 200] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines import create_engine, open_engine  # noqa: E402
from engines.backup import attach_archiver, create_backup, restore_backup, verify_repository  # noqa: E402
from engines.backup.pack import directory_size  # noqa: E402

VALUE_BYTES = 4096


def value_source(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    pool = rng.randbytes(1 << 20)

    def value(n: int) -> bytes:
        start = (n * 7919) % (len(pool) - VALUE_BYTES // 2)
        return pool[start:start + VALUE_BYTES // 2] + (b"%08d|" % n) * (VALUE_BYTES // 18)

    return value


def build(data: Path, size_mb: int) -> int:
    """Write rows (16 to a batch) until the closed data dir holds ``size_mb`` MB; returns the row count.

    Closing recycles the WAL the store covers, so the size is measured after each close.
    """
    value = value_source(1)
    rows = 0
    create_engine(data, backend="rocksdb", durability="async").close()
    while directory_size(data) < size_mb * 1e6:
        missing = size_mb * 1e6 - directory_size(data)
        with open_engine(data, durability="async") as engine:
            for _ in range(max(1, int(missing / VALUE_BYTES / 16))):
                engine.write_batch([(b"row%010d" % n, value(n)) for n in range(rows, rows + 16)])
                rows += 16
    return rows


def duel(runs: int, peer: Callable[[], None], ours: Callable[[], None],
         peer_setup: Callable[[], None] | None = None, our_setup: Callable[[], None] | None = None) -> tuple[float, float]:
    """Best time of each side over ``runs`` rounds, the two alternating so both see the same load."""
    peer_times: list[float] = []
    our_times: list[float] = []
    for _ in range(runs):
        for action, setup, times in ((peer, peer_setup, peer_times), (ours, our_setup, our_times)):
            if setup is not None:
                setup()
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
    return min(peer_times), min(our_times)


def sh(command: str) -> None:
    subprocess.run(["bash", "-c", command], check=True, stdout=subprocess.DEVNULL)


def clear(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work in this directory and leave it")
    args = parser.parse_args()
    for tool in ("tar", "zstd", "sha256sum"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed for the peer figures")
    root = args.keep or Path(tempfile.mkdtemp(prefix="drconsole-backup-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    data, repo = root / "data", root / "repo"
    try:
        clear(data, repo)
        started = time.perf_counter()
        rows = build(data, args.size_mb)
        size = directory_size(data)
        mb = size / 1e6
        print(f"data dir: {mb:.0f} MB ({rows} rows of {VALUE_BYTES} B, rocksdb), built in "
              f"{time.perf_counter() - started:.1f} s; {os.cpu_count()} cores; best of {args.runs}")

        # ---- backup
        peer_archive = root / "peer.tar.zst"
        created = []
        packing: list[float] = []  # the pack phase of each run, from the progress events

        def track(event: object) -> None:
            if getattr(event, "finished", False) and getattr(event, "phase") == "pack":
                packing.append(getattr(event, "elapsed_seconds"))

        peer_backup, ours_backup = duel(
            args.runs, lambda: sh(f"tar -I 'zstd -3 -T0' -cf {peer_archive} -C {data} ."),
            lambda: created.append(create_backup(repo, data_dir=data, progress=track)),
            lambda: clear(peer_archive), lambda: clear(repo))
        result = created[-1]
        fastest = min(zip((r.duration_seconds for r in created), packing))
        archive = result.path / f"{result.backup_id}.tar.zst"
        print(f"backup   ours {mb / ours_backup:7.1f} MB/s ({ours_backup:.2f} s, {result.size_bytes / 1e6:.0f} MB; "
              f"packing {fastest[1]:.2f} s of it)"
              f"   tar|zstd -3 -T0 {mb / peer_backup:7.1f} MB/s ({peer_backup:.2f} s, "
              f"{peer_archive.stat().st_size / 1e6:.0f} MB)   ratio {peer_backup / ours_backup:.2f}x "
              f"(the packing stage alone: {peer_backup / fastest[1]:.2f}x)")

        # ---- restore
        target, peer_target = root / "restored", root / "peer-restored"
        peer_restore, ours_restore = duel(
            args.runs, lambda: sh(f"mkdir -p {peer_target} && tar -I zstd -xf {archive} -C {peer_target}"),
            lambda: restore_backup(repo, target, reference=result.backup_id),
            lambda: clear(peer_target), lambda: clear(target))
        # tar -x leaves the files in the page cache; ours are fsynced before the rename into place.
        # The second peer adds `sync -f` (one syncfs of the target's file system) for a durable pair.
        durable_restore, _ = duel(
            args.runs, lambda: sh(f"mkdir -p {peer_target} && tar -I zstd -xf {archive} -C {peer_target} "
                                  f"&& sync -f {peer_target}"),
            lambda: None, lambda: clear(peer_target))
        print(f"restore  ours {mb / ours_restore:7.1f} MB/s ({ours_restore:.2f} s)"
              f"   tar -I zstd -xf {mb / peer_restore:7.1f} MB/s ({peer_restore:.2f} s)"
              f"   ratio {peer_restore / ours_restore:.2f}x;   tar -xf + sync -f {mb / durable_restore:7.1f} MB/s "
              f"({durable_restore:.2f} s)   ratio {durable_restore / ours_restore:.2f}x")

        # ---- verify
        peer_verify, ours_verify = duel(args.runs, lambda: sh(f"zstd -qt {archive} && sha256sum {archive}"),
                                        lambda: verify_repository(str(repo), result.backup_id))
        peer_files, _ = duel(args.runs, lambda: sh(f"cd {data} && find . -type f -print0 | xargs -0 sha256sum"),
                             lambda: None)
        print(f"verify   ours {mb / ours_verify:7.1f} MB/s ({ours_verify:.2f} s)"
              f"   zstd -t + sha256sum {mb / peer_verify:7.1f} MB/s ({peer_verify:.2f} s)"
              f"   ratio {peer_verify / ours_verify:.2f}x;   sha256sum of the data dir's files "
              f"{mb / peer_files:7.1f} MB/s   ratio {peer_files / ours_verify:.2f}x")

        # ---- point-in-time recovery: the backup plus archived WAL of single puts (~10% of the data)
        value = value_source(2)
        with open_engine(data, durability="async") as engine:
            attach_archiver(engine, repo)
            for n in range(max(1000, rows // 10)):
                engine.put(b"late%010d" % n, value(n))
            middle = result.lsn_end + (engine.last_lsn - result.lsn_end) // 2
        create_backup(repo, data_dir=data, incremental=True)
        pitr_target = root / "pitr"
        outcome = []
        _, pitr = duel(args.runs, lambda: None,
                       lambda: outcome.append(restore_backup(repo, pitr_target, until_lsn=middle)),
                       None, lambda: clear(pitr_target))
        print(f"pitr     {pitr:.2f} s to LSN {middle} of a {mb:.0f} MB data dir "
              f"({outcome[-1].replayed_records} WAL records replayed after the restore); goal < 15 s for 512 MB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
