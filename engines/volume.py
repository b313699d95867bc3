"""How full a data dir's filesystem is, counted as ``df`` counts it.

Every reader uses this one definition: a node's ``/health`` and ``/metrics``, the console's
local source, and the playbooks' disk checks. A console that shows a disk at 25 % on the node
card and at 74 % in the check it runs next is wrong once, and that was the case while each
reader had a formula of its own.

``df``'s counts:
- **used** is the size less the free blocks;
- **available** is what a writer without privilege can still get (the blocks reserved for root
  are left out);
- **use%** is used / (used + available), so it reaches 100 % when such a writer gets ENOSPC.

"Size less used" overstates the room by the reserved blocks: 5 % of an ext4 by default, and far
more where an image reserves more.
"""

from __future__ import annotations

import os
from typing import NamedTuple

__all__ = ["VolumeUsage", "volume_usage"]


class VolumeUsage(NamedTuple):
    total: int
    used: int
    available: int

    @property
    def ratio(self) -> float:
        """``df``'s use%, as a fraction (0.0 on a filesystem that reports no blocks)."""
        room = self.used + self.available
        return self.used / room if room else 0.0


def volume_usage(path: str | os.PathLike[str]) -> VolumeUsage:
    """The filesystem holding ``path`` (which must exist), in bytes.

    Raises:
        OSError: ``path`` cannot be read.
    """
    found = os.statvfs(path)
    return VolumeUsage(
        total=found.f_blocks * found.f_frsize,
        used=(found.f_blocks - found.f_bfree) * found.f_frsize,
        available=found.f_bavail * found.f_frsize,
    )
