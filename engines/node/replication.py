"""The standby's follower: pull WAL from the upstream, apply it in LSN order, measure the lag.

One thread per standby. It long-polls ``GET /wal?from_lsn=N&wait=S`` on the upstream and applies
each batch with ``Engine.apply_replicated`` (which keeps the primary's LSNs and timestamps and
fsyncs before it returns). When the upstream answers 410 Gone (it recycled the segment the
standby needs), the follower reads the missing records from the WAL archive, if it has one,
and then goes back to the upstream. When the archive does not reach back either, it reseeds
(``Node.reseed``) from the newest full backup of its backup repository (``--backup-repo``, else
``--archive``, else the repository the upstream names in its 410 answer) and goes on from the
backup's LSN. A standby that starts empty reseeds from its own repository's backup first, when
there is one, rather than stream the whole history.

With a token configured (``--token-file``) the follower sends it: the primary's ``/wal`` needs it.

Lag, as ``/replication`` reports it:
* ``lag_records``: the upstream's committed LSN minus the applied LSN (at the last response).
* ``lag_bytes``: WAL bytes the upstream holds after the last record shipped.
* ``lag_seconds``: apply time minus commit time of the newest record applied (0 once caught up);
  while the upstream is unreachable, the time since it last answered, so that the alert fires.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from engines.backup.archive import WalArchive
from engines.backup.errors import BackupNotFoundError
from engines.backup.location import is_remote
from engines.backup.repository import Repository
from engines.errors import CorruptionError, EngineError
from engines.node.state import MAX_EPOCH, TimelineEntry
from engines.node.wire import decode_frames
from engines.wal import RecoveryMode, WalReader, WalRecord

__all__ = ["Follower"]

_ARCHIVE_BATCH = 5000
log = logging.getLogger("drconsole.node")


class Follower:
    def __init__(
        self,
        node: Any,
        upstream: str,
        *,
        archive: Path | None = None,
        backup_repo: Path | None = None,
        token: str | None = None,
        wait_seconds: float = 0.5,
    ) -> None:
        self.node = node
        self.upstream = upstream.rstrip("/")
        self.archive = archive
        self.backup_repo = backup_repo
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"follower-{upstream}", daemon=True)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=httpx.Timeout(wait_seconds + 10.0, connect=2.0), headers=headers)
        self._reseed_error: str | None = None
        self.connected = False
        self.primary_lsn: int | None = None
        self.primary_epoch: int | None = None
        self.lag_bytes: int | None = None
        self.lag_seconds: float | None = None
        self.last_contact: float | None = None
        self.last_error: str | None = None
        self.source = "upstream"
        self.applied_from_archive = 0
        self.records_applied = 0
        self.state = "starting"

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self._client.close()

    def status(self) -> dict[str, Any]:
        applied = self.node.engine.last_lsn
        lag_records = None if self.primary_lsn is None else max(0, self.primary_lsn - applied)
        lag_seconds = self.lag_seconds
        if not self.connected and self.last_contact is not None:
            lag_seconds = max(lag_seconds or 0.0, time.time() - self.last_contact)
        return {
            "upstream": self.upstream,
            "applied_lsn": applied,
            "primary_lsn": self.primary_lsn,
            "lag_records": lag_records,
            "lag_bytes": self.lag_bytes,
            "lag_seconds": None if lag_seconds is None else round(lag_seconds, 6),
            "connected": self.connected,
            "follower_state": self.state,
            "source": self.source,
            "last_contact": self.last_contact,
            "last_error": self.last_error,
            "upstream_epoch": self.primary_epoch,
            "applied_from_archive": self.applied_from_archive,
        }

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        backoff = 0.05
        if self.node.engine.last_lsn == 0 and self.backup_repo is not None:
            self._reseed_if_possible("this standby is empty", [self.backup_repo], quiet_if_none=True)
        while not self._stop.is_set():
            try:
                self._poll_once()
                backoff = 0.05
            except _Gone as gone:
                if not self._catch_up_from_archive(gone.oldest):
                    repos = [repo for repo in (self.backup_repo, gone.backup_repo) if repo is not None]
                    if not self._reseed_if_possible(self.last_error or "too far behind", repos):
                        self._pause(1.0)
            except httpx.HTTPError as exc:
                self.connected = False
                self.state = "disconnected"
                self.last_error = f"upstream {self.upstream} unreachable: {type(exc).__name__}: {exc}"
                self._pause(backoff)
                backoff = min(backoff * 2, 1.0)
            except _Refused as exc:
                self.connected = False
                self.state = "refused"
                self.last_error = str(exc)
                self._pause(1.0)
            except EngineError as exc:
                self.connected = False
                self.state = "error"
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.node.metrics.errors.labels("replicate").inc()
                self._pause(1.0)

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _poll_once(self) -> None:
        node = self.node
        known = node.state.known_epoch
        applied = node.engine.last_lsn
        response = self._client.get(
            f"{self.upstream}/wal",
            params={"from_lsn": applied + 1, "wait": self.wait_seconds, "epoch": node.epoch, "name": node.config.name},
        )
        self.last_contact = time.time()
        epoch = int(response.headers.get("x-drconsole-epoch", "-1"))
        if epoch > MAX_EPOCH:
            raise _Refused(f"upstream {self.upstream} claims epoch {str(epoch)[:40]}, beyond any real one")
        if response.status_code == 410:
            body = _json(response)
            advertised = body.get("backup_repo")
            raise _Gone(body.get("oldest_lsn"), Path(advertised) if isinstance(advertised, str) else None)
        if response.status_code != 200:
            raise _Refused(
                f"upstream {self.upstream} refused: HTTP {response.status_code}: "
                f"{_json(response).get('error', response.text[:200])}"
            )
        if epoch < known:
            raise _Refused(
                f"upstream {self.upstream} is at epoch {epoch}, but epoch {known} exists: "
                "it is a stale primary; not following it"
            )
        self.primary_epoch = epoch
        history = [TimelineEntry(**entry) for entry in json.loads(response.headers.get("x-drconsole-history", "[]"))]
        node.adopt_timeline(epoch, history)
        records = decode_frames(response.content, f"WAL from {self.upstream}")
        if self._stop.is_set():
            return  # promoted or fenced meanwhile: apply nothing more from this upstream
        self.connected = True
        self.state = "streaming"
        self.source = "upstream"
        self.last_error = None
        if records:
            self._apply(records)
        primary_lsn = int(response.headers.get("x-drconsole-last-lsn", "0"))
        self.primary_lsn = primary_lsn
        self.lag_bytes = int(response.headers.get("x-drconsole-remaining-bytes", "0"))
        if node.engine.last_lsn >= primary_lsn:
            self.lag_bytes = 0
            if not records:
                self.lag_seconds = 0.0  # idle and caught up; after a batch, keep its commit-to-apply time

    def _apply(self, records: list[WalRecord]) -> None:
        expected = self.node.engine.last_lsn + 1
        if records[0].lsn != expected:
            raise CorruptionError(f"replication gap: expected LSN {expected}, got {records[0].lsn}")
        for previous, record in zip(records, records[1:]):
            if record.lsn != previous.lsn + 1:
                raise CorruptionError(f"replication gap after LSN {previous.lsn}: got {record.lsn}")
        self.node.engine.apply_replicated(records)
        applied_at = time.time_ns()
        self.lag_seconds = max(0.0, (applied_at - records[-1].timestamp_ns) / 1e9)
        self.records_applied += len(records)
        self.node.note_committed(records[-1].lsn)
        self._maybe_checkpoint()

    def _maybe_checkpoint(self) -> None:
        """apply_replicated never recycles WAL: flush now and then, as a primary's writes do."""
        engine = self.node.engine
        if engine.last_lsn - engine.durable_lsn >= engine.options.checkpoint_every_records:
            try:
                engine.flush()
            except EngineError as exc:
                self.last_error = f"flush after replication failed: {exc}"

    # ------------------------------------------------------------------ reseeding
    def _reseed_if_possible(self, reason: str, repos: list[Path], *, quiet_if_none: bool = False) -> bool:
        """Reseed from the first of ``repos`` with a useful full backup. False: none could be used."""
        problems = []
        for repo in dict.fromkeys(repos):  # the same repository named twice is tried once
            if self._stop.is_set():
                return False
            if not is_remote(repo) and not repo.is_dir():
                problems.append(f"{repo}: not a directory on this host")
                continue
            previous = self.state
            self.state = "reseeding"
            try:
                report = self.node.reseed(repo, reason=reason, primary_lsn=self.primary_lsn)
            except BackupNotFoundError as exc:
                self.state = previous
                if quiet_if_none:
                    return False  # an empty standby with no backup yet simply streams from the start
                problems.append(str(exc))
                continue
            except EngineError as exc:
                self.state = previous
                problems.append(str(exc))
                continue
            self.state = "reseeded"
            self.last_error = None
            self._reseed_error = None
            self.source = "backup"
            log.info(
                "standby %s reseeded from %s, following %s from LSN %s",
                self.node.config.name,
                report.backup_id,
                self.upstream,
                report.lsn,
            )
            return True
        if not problems:
            if not quiet_if_none:
                self.last_error = (
                    f"{reason}; no backup repository is known to reseed from "
                    "(--backup-repo, --archive, or the primary's)"
                )
            return False
        message = f"{reason}; reseed impossible: " + "; ".join(problems)
        if not quiet_if_none:
            self.state = "needs-reseed"
            self.last_error = message
        if message != self._reseed_error:
            log.error("standby %s: %s", self.node.config.name, message)
            self._reseed_error = message
        return False

    # ------------------------------------------------------------------ the archive
    def _catch_up_from_archive(self, oldest: int | None) -> bool:
        """Apply archived records until the upstream's WAL covers the rest. False: nothing to read."""
        need = self.node.engine.last_lsn + 1
        if self.archive is None:
            self.state = "needs-reseed"
            self.last_error = (
                f"the upstream no longer holds LSN {need} (oldest kept: {oldest}) and no WAL "
                "archive is configured (--archive): reseed this standby from a backup"
            )
            return False
        self.state = "archive"
        self.source = "archive"
        try:
            archive = WalArchive(Repository.open(self.archive))
            names = {segment.name for segment in archive.segments(present=True)}
        except EngineError as exc:
            self.last_error = f"WAL archive {self.archive}: {exc}"
            return False
        if not names:
            self.state = "needs-reseed"
            self.last_error = f"the WAL archive {self.archive} holds no segments; reseed from a backup"
            return False
        reader = WalReader(archive.path)
        batch: list[WalRecord] = []
        applied_any = False
        try:
            for record in reader.records(from_lsn=need, mode=RecoveryMode.ABSOLUTE_CONSISTENCY):
                if record.segment not in names:
                    break  # a file not (yet) in the manifest: not trusted
                if not batch and record.lsn != self.node.engine.last_lsn + 1:
                    break
                batch.append(record)
                if len(batch) >= _ARCHIVE_BATCH:
                    self._apply(batch)
                    self.applied_from_archive += len(batch)
                    applied_any, batch = True, []
                if self._stop.is_set():
                    break
        except EngineError as exc:
            self.last_error = f"reading the WAL archive: {exc}"
        if batch:
            self._apply(batch)
            self.applied_from_archive += len(batch)
            applied_any = True
        if not applied_any:
            self.state = "needs-reseed"
            self.last_error = (
                f"neither the upstream (oldest LSN {oldest}) nor the WAL archive {self.archive} "
                f"holds LSN {need}; reseed this standby from a backup"
            )
        return applied_any


class _Gone(Exception):
    def __init__(self, oldest: int | None, backup_repo: Path | None = None) -> None:
        super().__init__(f"upstream recycled the WAL (oldest kept: {oldest})")
        self.oldest = oldest
        self.backup_repo = backup_repo


class _Refused(Exception):
    pass


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}
