"""The shared write-ahead log: the change log of every backend, of backups/PITR and replication.

LevelDB-style framing (``format.py``) of records carrying ``lsn, timestamp_ns, op, key, value``
(``records.py``), in segment files named by their first LSN (``segments.py``). ``WalWriter``
appends with group commit; ``WalReader`` replays under RocksDB's four recovery modes and
validates; ``truncate_at_first_bad`` cuts at the first problem and quarantines the rest.
"""

from engines.wal.problems import WalProblem, WalValidation
from engines.wal.reader import RecoveryMode, WalReader
from engines.wal.records import Op, WalRecord, decode_batch, encode_batch
from engines.wal.segments import SegmentInfo, list_segments, segment_name
from engines.wal.truncate import TruncateReport, truncate_at_first_bad
from engines.wal.writer import WalWriter

__all__ = [
    "Op",
    "RecoveryMode",
    "SegmentInfo",
    "TruncateReport",
    "WalProblem",
    "WalReader",
    "WalRecord",
    "WalValidation",
    "WalWriter",
    "decode_batch",
    "encode_batch",
    "list_segments",
    "segment_name",
    "truncate_at_first_bad",
]
