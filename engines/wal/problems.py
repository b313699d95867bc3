"""What validation reports: one problem (segment, offset, reason) and the summary of a whole log.

The reasons are fixed strings so that the CLI, playbooks and tests can match on them:

    checksum mismatch     a fragment's CRC does not match its bytes
    bad record length     a length runs past its block, a payload's lengths do not add up, or a
                          block trailer (< 7 bytes) is not zero
    truncated record      the file ends inside a record
    bad record type       a fragment type out of place (MIDDLE without FIRST, ...) or unknown
    zeroed region         a header of zeros: a region that was never written (torn write)
    lsn gap (missing a..b)  records a..b are absent (a deleted segment shows as this)
    lsn out of order      a record's LSN is not above the previous one
    not a WAL segment     a file named like a segment whose first bytes are no record header
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECKSUM_MISMATCH",
    "BAD_RECORD_LENGTH",
    "TRUNCATED_RECORD",
    "BAD_RECORD_TYPE",
    "ZEROED_REGION",
    "LSN_OUT_OF_ORDER",
    "NOT_A_SEGMENT",
    "lsn_gap",
    "WalProblem",
    "WalValidation",
]

CHECKSUM_MISMATCH = "checksum mismatch"
BAD_RECORD_LENGTH = "bad record length"
TRUNCATED_RECORD = "truncated record"
BAD_RECORD_TYPE = "bad record type"
ZEROED_REGION = "zeroed region"
LSN_OUT_OF_ORDER = "lsn out of order"
NOT_A_SEGMENT = "not a WAL segment"


def lsn_gap(first_missing: int, last_missing: int) -> str:
    """The reason for a jump in LSNs."""
    return f"lsn gap (missing {first_missing}..{last_missing})"


@dataclass
class WalProblem:
    """One problem in the log.

    Attributes:
        segment: file name of the segment.
        offset: byte offset of the damaged record's first fragment (where a truncation cuts).
        reason: one of the reasons in this module's docstring.
    """

    segment: str
    offset: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"segment": self.segment, "offset": self.offset, "reason": self.reason}


@dataclass
class WalValidation:
    """The result of reading a whole log.

    ``records``, ``first_lsn`` and ``last_lsn`` describe the valid prefix, the records in front of
    the first problem: what point-in-time recovery yields and what a truncation keeps.
    ``segments`` and ``bytes`` count every segment file.
    """

    ok: bool
    records: int
    first_lsn: int | None
    last_lsn: int | None
    corruption: WalProblem | None
    segments: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "first_lsn": self.first_lsn,
            "last_lsn": self.last_lsn,
            "corruption": None if self.corruption is None else self.corruption.to_json(),
            "segments": self.segments,
            "bytes": self.bytes,
        }
