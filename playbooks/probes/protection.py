"""Probes of the node's protection: is its newest backup recent and sound, is its WAL archive keeping up?

Both read the backup repository (``backup_repo`` in the config, or ``--repo``) and, for the archive,
the data dir's WAL when it is on this host; they change nothing (a backup's checksum is computed,
not recorded). A node with no repository configured has nothing stale and nothing lagging: the
evidence says so, so that a fleet that is not backed up by drconsole still triages healthy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playbooks.probes.base import Answer, ProbeContext, probe
from playbooks.probes.fleet import target_node

__all__ = ["newest_backup_state", "unarchived_segments"]


def _repo(context: ProbeContext) -> Path | None:
    if context.repo is not None:
        return context.repo
    spec = context.spec(context.node)
    return Path(spec.backup_repo) if spec is not None and spec.backup_repo is not None else None


def newest_backup_state(repo: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the newest full backup's listing entry, the damage found in its archive or None), read-only."""
    from engines.backup import Repository, list_backups
    from engines.backup.checksums import SUMS_NAME, parse_sums, sha256_file

    fulls = [entry for entry in list_backups(repo).backups if entry.get("type") == "full"]
    if not fulls:
        return None, None
    newest = min(fulls, key=lambda entry: entry.get("age_seconds") or 0.0)
    entry = Repository.open(repo).find(newest["backup_id"])
    meta = entry.require_metadata()
    name = meta.archive or f"{entry.backup_id}.tar.zst"
    try:
        sums = dict(parse_sums((entry.path / SUMS_NAME).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return newest, f"its SHA256SUMS cannot be read: {exc}"
    archive = entry.path / name
    if not archive.is_file():
        return newest, f"its archive {archive} is missing"
    actual = sha256_file(archive)
    if actual != sums.get(name):
        return (
            newest,
            f"its archive {archive.name} fails its checksum (sha256 {actual[:12]}…, SHA256SUMS says "
            f"{str(sums.get(name))[:12]}…)",
        )
    return newest, None


@probe("backup.stale")
def backup_stale(context: ProbeContext) -> Answer:
    """Is the node's newest backup too old, or damaged (no usable recent backup)?"""
    repo = _repo(context)
    node = target_node(context)
    if repo is not None and not repo.exists() and context.data_dir is not None:
        spec = context.spec(context.node)
        if spec is not None and spec.backup_repo is not None and Path(spec.backup_repo) == repo:
            return Answer(
                True,
                f"the backup repository {repo} configured for {context.node} does not exist: no backup can be restored",
                {"repo": str(repo)},
            )
        return Answer(
            None, f"no backup repository at {repo} (given with --repo): where this dir's backups are is not known here"
        )
    if repo is None or not repo.exists():
        reported = node.backup if node is not None else None
        if reported is not None and reported.last_backup_at is not None and context.snapshot is not None:
            age = reported.age_seconds(context.snapshot.taken_at) or 0.0
            limit = context.backup_max_age_seconds
            return Answer(
                age > limit,
                f"{node.name if node else 'the node'} reports its newest backup "  # type: ignore[union-attr]
                f"{reported.last_backup_id or ''} {age / 3600:.1f} h old; limit {limit / 3600:.0f} h",
                {"age_seconds": age},
            )
        return Answer(
            False,
            f"no backup repository is configured for {context.node or context.data_dir} (set "
            "backup_repo): no backup is expected, so none is stale",
        )
    started = time.monotonic()
    newest, damage = context.cached(f"backup:{repo}", lambda: newest_backup_state(repo))
    if newest is None:
        return Answer(True, f"no full backup in {repo}", {"repo": str(repo)})
    age = float(newest.get("age_seconds") or 0.0)
    limit = context.backup_max_age_seconds
    checked = f"checksum verified in {time.monotonic() - started:.1f} s"
    if damage is not None:
        return Answer(
            True,
            f"newest full backup {newest['backup_id']} is damaged: {damage}",
            {"backup_id": newest["backup_id"], "damage": damage},
        )
    return Answer(
        age > limit,
        f"newest full backup {newest['backup_id']} is {age / 3600:.1f} h old ({checked}); limit {limit / 3600:.1f} h",
        {"backup_id": newest["backup_id"], "age_seconds": age},
    )


def _kept_segments(data_dir: Path | None) -> int:
    """The engine's ``wal_keep_segments`` (its marker's options; the default when unknown)."""
    from engines.errors import EngineError
    from engines.marker import read_marker
    from engines.options import EngineOptions

    default = EngineOptions().wal_keep_segments
    if data_dir is None:
        return default
    try:
        marker = read_marker(data_dir)
    except EngineError:
        return default
    value = marker.options.get("wal_keep_segments", default) if marker is not None else default
    return int(value) if isinstance(value, int) else default


def unarchived_segments(data_dir: Path, repo: Path) -> tuple[list[tuple[str, float]], int]:
    """(sealed WAL segments of ``data_dir`` the archive does not hold, oldest first, with their age in seconds;
    the archived count).

    Every segment but the newest is sealed; PostgreSQL calls these ``.ready``: written, not yet archived.
    """
    from engines.backup import Repository, WalArchive
    from engines.wal import list_segments

    archived = WalArchive(Repository.open(repo)).manifest()
    now = time.time()
    sealed = list_segments(Path(data_dir) / "wal")[:-1]
    waiting = []
    for segment in sealed:
        if segment.path.name not in archived:
            try:
                waiting.append((segment.path.name, now - segment.path.stat().st_mtime))
            except FileNotFoundError:
                continue  # archived and recycled while we looked
    return waiting, len(archived)


@probe("archive.lag")
def archive_lag(context: ProbeContext) -> Answer:
    """Is WAL archiving behind (sealed segments waiting longer than the limit), so PITR would lose more?"""
    from engines.backup import Repository, WalArchive

    repo = _repo(context)
    limit = context.archive_lag_seconds
    if repo is None or not (repo / "wal-archive").exists():
        return Answer(
            False,
            f"no WAL archive is configured for {context.node or context.data_dir} (a backup_repo "
            "with a wal-archive): nothing to lag behind",
        )
    keep = _kept_segments(context.data_dir)
    if context.data_dir is not None:
        waiting, archived = unarchived_segments(context.data_dir, repo)
        # The newest `wal_keep_segments` sealed segments stay for standbys and are archived when
        # recycled: waiting is normal for them, not for more.
        late = [(name, age) for name, age in waiting[: max(0, len(waiting) - keep)] if age > limit]
        if late:
            oldest = max(age for _name, age in late)
            return Answer(
                True,
                f"{len(waiting)} sealed WAL segment(s) of {context.data_dir} not archived in {repo}, "
                f"{len(late)} beyond the {keep} kept for standbys (oldest sealed {oldest:.0f} s ago, "
                f"{late[0][0]}); limit {limit:g} s",
                {"waiting": [name for name, _age in late]},
            )
        return Answer(
            False,
            f"{len(waiting)} sealed segment(s) waiting (up to {keep} are kept for standbys), none "
            f"beyond them for more than {limit:g} s; {archived} archived in {repo}",
        )
    node = target_node(context)
    segments = WalArchive(Repository.open(repo)).segments()
    if node is None or node.last_lsn is None or not node.reachable:
        return Answer(None, f"{context.node} does not report its last LSN and its WAL is not on this host")
    if not segments:
        return Answer(
            None,
            f"the archive in {repo} holds no segment yet and {node.name}'s WAL is not on this "
            "host: whether segments wait cannot be told from here",
        )
    ranges = [segment.lsn_range for segment in segments if segment.lsn_range is not None]
    archived_last = max((last for _first, last in ranges), default=0)
    per_segment = max(1, sum(last - first + 1 for first, last in ranges) // max(1, len(ranges)))
    behind = max(0, node.last_lsn - archived_last)
    newest_at = max((segment.archived_at for segment in segments if segment.archived_at), default="")
    lagging = behind > (keep + 2) * per_segment  # the kept segments and the one being written wait normally
    return Answer(
        lagging,
        f"{node.name} is at LSN {node.last_lsn}, the archive in {repo} reaches {archived_last} "
        f"({behind} records behind; a segment holds ~{per_segment}; newest archived {newest_at or '?'})",
        {"behind_records": behind},
    )
