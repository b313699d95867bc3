"""The COW backend's settings, read from ``EngineOptions`` (``options.backend`` holds its own keys).

``options.backend`` keys (saved in ``drconsole.json`` at creation, so a reopen behaves the same):

=====================  ==========================================================================
``page_size``          bytes per page, a power of two from 1024 to 65536; fixed at creation (4096)
``max_keys_per_node``  cap on entries per node; 0 = as many as fit a page (low memory: 32)
``dirty_budget_bytes`` memory of buffered writes before a commit is forced (16 MiB; low: 2 MiB)
``snapshots``          whether named snapshots may be taken (True; the low-memory profile: False)
=====================  ==========================================================================

``options.cache_bytes`` bounds the page cache; ``options.low_memory`` selects the reference
guide's low-memory profile (``create_low_memory_config``: 32 keys per node, snapshots off).
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.cow.page import DEFAULT_PAGE_SIZE, check_page_size
from engines.errors import InvalidArgumentError
from engines.options import EngineOptions

__all__ = ["CowSettings"]

_KEYS = ("page_size", "max_keys_per_node", "dirty_budget_bytes", "snapshots")
LOW_MEMORY_KEYS_PER_NODE = 32


@dataclass(frozen=True)
class CowSettings:
    page_size: int = DEFAULT_PAGE_SIZE
    max_keys_per_node: int = 0
    dirty_budget_bytes: int = 16 * 2**20
    cache_bytes: int = 64 * 2**20
    snapshots: bool = True

    @property
    def split_limit(self) -> int:
        """Entries a changed node may hold in memory before it is split (pages are cut at commit)."""
        return max(64, 8 * self.max_keys_per_node) if self.max_keys_per_node else 512

    @classmethod
    def from_options(cls, options: EngineOptions) -> CowSettings:
        """The settings ``options`` ask for. Raises InvalidArgumentError on a bad or unknown key."""
        backend = dict(options.backend)
        unknown = sorted(set(backend) - set(_KEYS))
        if unknown:
            raise InvalidArgumentError(
                f"unknown cow option(s): {', '.join(unknown)}", hint=f"the cow backend takes {', '.join(_KEYS)}"
            )
        low = options.low_memory
        try:
            page_size = check_page_size(backend.get("page_size", DEFAULT_PAGE_SIZE))
        except ValueError as exc:
            raise InvalidArgumentError(f"bad cow option: {exc}") from exc
        max_keys = backend.get("max_keys_per_node", LOW_MEMORY_KEYS_PER_NODE if low else 0)
        budget = backend.get("dirty_budget_bytes", 2 * 2**20 if low else 16 * 2**20)
        snapshots = backend.get("snapshots", not low)
        if not isinstance(max_keys, int) or isinstance(max_keys, bool) or not (max_keys == 0 or max_keys >= 4):
            raise InvalidArgumentError(f"bad cow option: max_keys_per_node must be 0 or at least 4, not {max_keys!r}")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 64 * 1024:
            raise InvalidArgumentError(f"bad cow option: dirty_budget_bytes must be at least 65536, not {budget!r}")
        if not isinstance(snapshots, bool):
            raise InvalidArgumentError(f"bad cow option: snapshots must be true or false, not {snapshots!r}")
        return cls(
            page_size=page_size,
            max_keys_per_node=max_keys,
            dirty_budget_bytes=budget,
            cache_bytes=options.cache_bytes,
            snapshots=snapshots,
        )
