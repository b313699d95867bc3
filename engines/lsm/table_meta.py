"""What the manifest (and a table's properties block) records about one SSTable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["TableMeta", "table_name", "table_number", "TABLE_SUFFIX", "TEMP_SUFFIX", "SSTABLE_DIR"]

SSTABLE_DIR = "sstables"
TABLE_SUFFIX = ".sst"
TEMP_SUFFIX = ".sst.tmp"


def table_name(number: int) -> str:
    return f"{number:06d}{TABLE_SUFFIX}"


def table_number(name: str) -> int | None:
    """The file number of ``NNNNNN.sst``; None for any other name."""
    if not name.endswith(TABLE_SUFFIX):
        return None
    stem = name[: -len(TABLE_SUFFIX)]
    return int(stem) if stem.isdigit() else None


@dataclass(frozen=True)
class TableMeta:
    """One live table: where it is, what key and LSN range it holds, at which level."""

    number: int
    level: int
    size: int
    entries: int
    tombstones: int
    min_key: bytes
    max_key: bytes
    min_lsn: int
    max_lsn: int
    # The LSN the table's content is "as of": every write up to it is in this table or newer ones.
    durable_lsn: int = 0
    lineage: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return table_name(self.number)

    @property
    def relative_path(self) -> str:
        return f"{SSTABLE_DIR}/{self.name}"

    def overlaps(self, low: bytes | None, high: bytes | None) -> bool:
        """Whether the table's keys meet ``[low, high]`` (None: unbounded; both ends inclusive)."""
        return (low is None or self.max_key >= low) and (high is None or self.min_key <= high)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["file"] = self.name
        data["min_key"] = self.min_key.hex()
        data["max_key"] = self.max_key.hex()
        if not self.lineage:
            data.pop("lineage")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableMeta:
        """Parse a manifest entry; raises ``ValueError``/``KeyError``/``TypeError`` when malformed."""
        number = int(data["number"])
        if data.get("file", table_name(number)) != table_name(number):
            raise ValueError(f"file {data['file']!r} does not match number {number}")
        return cls(
            number=number,
            level=int(data["level"]),
            size=int(data["size"]),
            entries=int(data["entries"]),
            tombstones=int(data["tombstones"]),
            min_key=bytes.fromhex(data["min_key"]),
            max_key=bytes.fromhex(data["max_key"]),
            min_lsn=int(data["min_lsn"]),
            max_lsn=int(data["max_lsn"]),
            durable_lsn=int(data.get("durable_lsn", data["max_lsn"])),
            lineage=dict(data.get("lineage") or {}),
        )
