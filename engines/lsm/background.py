"""The two background threads of an open read-write LSM engine: the flusher and the compactor.

The flusher writes frozen memtables to L0 (oldest first); the compactor runs compactions while
any level is over its target. Neither takes the engine's write lock, so writes and reads go on.
A failed flush is retried every second (the memtable stays readable meanwhile); a failed
compaction is retried at the next trigger. Their last errors are kept for ``stats()``; a
compaction that met damaged bytes is also handed to ``on_corruption`` (no caller would see it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from engines.errors import CorruptionError, EngineError
from engines.lsm.compaction import CompactionAborted

__all__ = ["BackgroundWork"]

_RETRY_SECONDS = 1.0


class BackgroundWork:
    """Runs ``flush_one`` while ``has_frozen()`` and ``compact_once`` while it returns True."""

    def __init__(
        self,
        name: str,
        *,
        has_frozen: Callable[[], bool],
        flush_one: Callable[[], None],
        compact_once: Callable[[], bool],
        on_corruption: Callable[[CorruptionError], None] | None = None,
    ) -> None:
        self._has_frozen = has_frozen
        self._on_corruption = on_corruption
        self._flush_one = flush_one
        self._compact_once = compact_once
        self._wakeup = threading.Condition()
        self._stopping = False
        self._compaction_wanted = False
        self.abort = threading.Event()  # compactions check it between chunks
        self.flush_error: EngineError | None = None
        self.compaction_error: str | None = None
        self._threads = [
            threading.Thread(target=self._flusher, name=f"lsm-flusher-{name}", daemon=True),
            threading.Thread(target=self._compactor, name=f"lsm-compactor-{name}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def idle(self) -> bool:
        return not self._compaction_wanted and not self._has_frozen()

    def wake_flusher(self) -> None:
        with self._wakeup:
            self._wakeup.notify_all()

    def want_compaction(self) -> None:
        with self._wakeup:
            self._compaction_wanted = True
            self._wakeup.notify_all()

    def stop(self) -> None:
        """Stop both threads: a running compaction aborts, a running flush completes."""
        self.abort.set()
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    def _flusher(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopping and (not self._has_frozen() or self.flush_error is not None):
                    if self.flush_error is not None:
                        self._wakeup.wait(_RETRY_SECONDS)
                        self.flush_error = None
                    else:
                        self._wakeup.wait()
                if self._stopping:
                    return
            try:
                self._flush_one()
            except EngineError as exc:
                self.flush_error = exc
            except OSError as exc:
                self.flush_error = EngineError(f"flush failed: {exc}")

    def _compactor(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopping and not self._compaction_wanted:
                    self._wakeup.wait()
                if self._stopping:
                    return
                self._compaction_wanted = False
            try:
                while not self._stopping and self._compact_once():
                    pass
                self.compaction_error = None
            except CompactionAborted:
                return
            except EngineError as exc:
                self.compaction_error = exc.message
                if isinstance(exc, CorruptionError) and self._on_corruption is not None:
                    self._on_corruption(exc)
            except OSError as exc:
                self.compaction_error = f"compaction failed: {exc}"
