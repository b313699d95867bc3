"""DR drill actions: measure a restore's RTO and RPO against the live data dir, and clear the drill copy.

The drill restores into the run's own folder (``{run_dir}/drill``), never over anything; clearing
it removes only that copy, which drconsole made, and refuses any path outside the run folder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from engines.errors import EngineError, SafetyRefusal
from engines.registry import open_engine
from playbooks.actions.base import ActionContext, ActionResult, action

__all__: list[str] = []


@action("drill.measure", writes=False)
def measure(
    context: ActionContext, *, restored: str, target_rto_seconds: float = 900, target_rpo_records: int = 0
) -> ActionResult:
    """RTO (run start -> restored copy verified) and RPO (writes in the live dir the copy lacks)."""
    rto = time.time() - context.started_at
    with open_engine(Path(restored), mode="ro") as copy:
        restored_lsn = copy.last_lsn
        restored_keys = sum(1 for _ in copy.scan())
    live_lsn = None
    try:
        with open_engine(context.require_data_dir(), mode="ro") as live:
            live_lsn = live.last_lsn
    except EngineError as exc:
        context.log(f"the live data dir does not open ({exc.message}); RPO not measured", "warning")
    rpo = None if live_lsn is None else max(0, live_lsn - restored_lsn)
    passed = rto <= float(target_rto_seconds) and (
        rpo is None or target_rpo_records is None or rpo <= int(target_rpo_records)
    )
    context.log(f"RTO: {rto:.1f} s (target {target_rto_seconds} s)")
    context.log(
        f"RPO: {'unknown' if rpo is None else f'{rpo} records'} (target {target_rpo_records or 'none'}; "
        f"restored LSN {restored_lsn}, live LSN {live_lsn})"
    )
    return ActionResult(
        passed,
        f"drill: RTO {rto:.1f} s, RPO {'unknown' if rpo is None else f'{rpo} records'}, "
        f"{restored_keys} keys restored - {'PASSED' if passed else 'MISSED TARGET'}",
        {
            "rto_seconds": round(rto, 3),
            "rpo_records": rpo,
            "restored_lsn": restored_lsn,
            "live_lsn": live_lsn,
            "restored_keys": restored_keys,
            "passed": passed,
        },
    )


@action("drill.cleanup", writes=True)
def cleanup(context: ActionContext, *, path: str, keep: bool = False) -> ActionResult:
    """Remove the drill's own restored copy (only inside this run's folder)."""
    target = Path(path).absolute()
    run_dir = context.run_dir.absolute()
    if run_dir not in target.parents:
        raise SafetyRefusal(f"{target} is not inside this run's folder {run_dir}; not removing it")
    if keep or str(keep).lower() in ("yes", "true", "1"):
        return ActionResult(True, f"kept the drill copy in {target}", {"kept": True})
    if target.exists():
        shutil.rmtree(target)  # the drill's own scratch restore, made by this run
    return ActionResult(True, f"removed the drill copy {target}", {"kept": False}, touched=[str(target)])
