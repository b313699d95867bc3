"""Actions on the shared write-ahead log: validate it, and cut it at the first bad record.

The guides truncate a WAL with ``> orbit.wal``, which throws away every record in it. Here the
log is cut at its first damaged record and everything after the cut moves to the run's
quarantine: no byte is lost, and the report says that this frees no space.
"""

from __future__ import annotations

from engines.base import WAL_DIR
from engines.marker import detect_backend
from engines.wal import WalReader, truncate_at_first_bad
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.actions.exclusive import exclusive
from playbooks.evidence import human_bytes

__all__: list[str] = []


@action("wal.validate", writes=False)
def validate(context: ActionContext) -> ActionResult:
    """Read every WAL record and report the first problem (segment, offset, reason)."""
    data_dir = context.require_data_dir()
    detect_backend(data_dir)
    validation = WalReader(data_dir / WAL_DIR).validate()
    data = validation.to_json()
    if validation.ok:
        span = "" if validation.first_lsn is None else f", LSN {validation.first_lsn}..{validation.last_lsn}"
        return ActionResult(
            True, f"WAL valid: {validation.records} records in {validation.segments} segments{span}", data
        )
    problem = validation.corruption
    assert problem is not None
    return ActionResult(
        False,
        f"WAL damaged: {problem.reason} in {problem.segment} at offset {problem.offset} "
        f"({validation.records} good records before it)",
        data,
    )


@action("wal.truncate", writes=True)
def truncate(context: ActionContext) -> ActionResult:
    """Cut the WAL at its first bad record; the cut-off tail and later segments go to quarantine."""
    data_dir = context.require_data_dir()
    detect_backend(data_dir)
    with exclusive(data_dir, "truncate its WAL"):
        report = truncate_at_first_bad(data_dir / WAL_DIR, context.quarantine() / "wal-truncate")
    if report.segment is None:
        return ActionResult(True, "the WAL has no bad record: nothing cut", report.to_json())
    return ActionResult(
        True,
        f"WAL cut in {report.segment} at offset {report.offset}: {report.records_kept} records "
        f"kept (last LSN {report.last_lsn}); {human_bytes(report.bytes_moved)} moved to "
        f"{report.quarantine} - this frees no space, the tail is kept there",
        report.to_json(),
        touched=[str(data_dir / WAL_DIR), str(report.quarantine)],
    )
