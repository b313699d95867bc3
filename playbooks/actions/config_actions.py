"""Configuration recovery: the data dir's ``drconsole.json`` (backend, format, options, epoch).

A damaged or missing marker is rebuilt from what the files show (as the guide's
``get_backend_type`` does); bad engine options are reset to the defaults. The old marker is
copied to quarantine first, and the new one is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engines.errors import EngineError, InvalidArgumentError, NotFoundError
from engines.fsutil import atomic_write_bytes
from engines.marker import MARKER_NAME, Marker, read_marker, write_marker
from engines.options import EngineOptions
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.actions.exclusive import exclusive
from playbooks.evidence import backend_from_files

__all__: list[str] = []


def _findings(data_dir: Path) -> tuple[list[str], Marker | None]:
    problems: list[str] = []
    marker = None
    try:
        marker = read_marker(data_dir)
    except EngineError as exc:
        problems.append(exc.message)
    if marker is None and not problems:
        problems.append(f"{MARKER_NAME} is missing")
    found = backend_from_files(data_dir)
    if marker is not None:
        try:
            EngineOptions.model_validate(marker.options | {"durability": marker.durability})
        except ValueError as exc:
            problems.append(f"bad engine options: {str(exc).splitlines()[-1].strip()}")
        if found is not None and found != marker.backend:
            problems.append(f"{MARKER_NAME} says {marker.backend} but the files are {found}")
    if found is None:
        problems.append("no engine files found (data.cow, manifest.json or rocksdb/CURRENT)")
    return problems, marker


@action("config.check", writes=False)
def check(context: ActionContext) -> ActionResult:
    """Check the data dir's configuration (drconsole.json) against its files."""
    data_dir = context.require_data_dir()
    if not data_dir.is_dir():
        raise NotFoundError(f"data dir {data_dir} does not exist")
    problems, marker = _findings(data_dir)
    if problems:
        return ActionResult(
            False, f"configuration of {data_dir} is broken: {'; '.join(problems)}", {"problems": problems}
        )
    assert marker is not None
    return ActionResult(
        True,
        f"{MARKER_NAME} is valid: {marker.backend}, format {marker.format_version}, epoch {marker.epoch}",
        {"problems": []},
    )


@action("config.repair", writes=True)
def repair(context: ActionContext) -> ActionResult:
    """Rebuild a damaged marker from the files, or reset bad options to defaults; the old one is kept."""
    data_dir = context.require_data_dir()
    problems, marker = _findings(data_dir)
    if not problems:
        return ActionResult(True, "configuration is sound: nothing to repair", {"changed": False})
    found = backend_from_files(data_dir)
    if found is None:
        raise InvalidArgumentError(
            f"{data_dir} holds no engine files; there is no configuration to rebuild",
            hint="restore the data dir from a backup (playbook `restore`)",
        )
    path = data_dir / MARKER_NAME
    notes: list[str] = []
    with exclusive(data_dir, "rewrite its configuration"):
        if path.exists():
            kept = context.quarantine() / f"{MARKER_NAME}.damaged"
            if not kept.exists():
                atomic_write_bytes(kept, path.read_bytes())
            notes.append(f"the old {MARKER_NAME} is in {kept}")
        if marker is None:
            raw: dict[str, Any] = {}
            try:
                loaded = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
                raw = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                raw = {}
            epoch = raw["epoch"] if isinstance(raw.get("epoch"), int) else 0
            name = raw["node_name"] if isinstance(raw.get("node_name"), str) else data_dir.name
            marker = Marker(backend=found, node_name=name, epoch=epoch)
            notes.append(
                f"rebuilt from the files: backend {found}, epoch {epoch}"
                + ("" if "epoch" in raw else " (unknown before: check it before this node rejoins a fleet)")
            )
        else:
            updates: dict[str, Any] = {}
            if marker.backend != found:
                updates["backend"] = found
                notes.append(f"backend {marker.backend} -> {found} (what the files are)")
            try:
                EngineOptions.model_validate(marker.options | {"durability": marker.durability})
            except ValueError:
                updates["options"] = {}
                updates["durability"] = "sync"
                notes.append("engine options reset to the defaults (sync durability)")
            marker = marker.model_copy(update=updates)
        write_marker(data_dir, marker)
    return ActionResult(
        True,
        f"{MARKER_NAME} of {data_dir} rewritten: {'; '.join(notes)}",
        {"changed": True, "notes": notes},
        touched=[str(path)],
    )
