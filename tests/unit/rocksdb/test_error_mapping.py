"""Every rocksdict exception reaches callers as an engine error (DESIGN.md: mapped at the boundary)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from rocksdict import DbClosedError

from engines.errors import (
    ClosedError,
    CorruptionError,
    DiskFullError,
    EngineError,
    InvalidArgumentError,
    LockedError,
    NotFoundError,
    StorageIOError,
    UnsupportedFormatError,
)
from engines.rocksdb.errors import map_rocksdb_error, rocks_call

ENGINE_SOURCE = Path(__file__).resolve().parents[3] / "engines" / "rocksdb" / "engine.py"

# Messages in the shape RocksDB's Status::ToString() gives them, one per status code.
SAMPLES = [
    (
        "Corruption: block checksum mismatch: stored = 1, computed = 2 in /d/rocksdb/000009.sst offset 0 size 545",
        CorruptionError,
    ),
    ("Corruption: bad magic number in /d/rocksdb/000012.sst", CorruptionError),
    ("IO error: No space left on device: While appending to file: /d/rocksdb/000010.log", DiskFullError),
    (
        "IO error: lock hold by current process, acquire time 1 acquiring thread 2: /d/rocksdb/LOCK: "
        "No locks available",
        LockedError,
    ),
    ("IO error: While lock file: /d/rocksdb/LOCK: Resource temporarily unavailable", LockedError),
    ("IO error: No such file or directory: While opening a file for sequentially reading: /d/CURRENT", NotFoundError),
    (
        "IO error: No such file or directory: While opening a file for sequentially reading: "
        "/d/rocksdb/MANIFEST-000009: No such file or directory",
        CorruptionError,
    ),
    (
        "IO error: No such file or directory: While open a file for random read: /d/rocksdb/000012.sst: "
        "No such file or directory",
        CorruptionError,
    ),
    ("Invalid argument: /d/rocksdb: does not exist (create_if_missing is false)", NotFoundError),
    ("Invalid argument: Column family not found: extra", InvalidArgumentError),
    ("Invalid argument: Unsupported format_version 9", UnsupportedFormatError),
    ("Not implemented: Unsupported compression method for this build: ZSTD", UnsupportedFormatError),
    ("IO error: Input/output error", StorageIOError),
    ("Resource busy: ", StorageIOError),
    ("Operation aborted: ", StorageIOError),
    ("Operation timed out: ", StorageIOError),
    ("Result incomplete: ", StorageIOError),
    ("Shutdown in progress: ", StorageIOError),
    ("Operation failed. Try again.: ", StorageIOError),
    ("", StorageIOError),
]


@pytest.mark.parametrize(("message", "expected"), SAMPLES)
def test_each_status_maps_to_its_engine_error(message: str, expected: type[EngineError]) -> None:
    mapped = map_rocksdb_error(Exception(message), "doing a thing")
    assert type(mapped) is expected
    assert mapped.message.startswith("doing a thing")


def test_corruption_keeps_file_and_offset() -> None:
    mapped = map_rocksdb_error(Exception(SAMPLES[0][0]), "reading")
    assert isinstance(mapped, CorruptionError)
    assert mapped.file == "/d/rocksdb/000009.sst"
    assert mapped.offset == 0


def test_closed_and_type_errors_are_mapped() -> None:
    assert isinstance(map_rocksdb_error(DbClosedError("closed"), "x"), ClosedError)
    assert isinstance(map_rocksdb_error(TypeError("bad key"), "x"), InvalidArgumentError)


def test_rocks_call_re_raises_with_cause() -> None:
    original = Exception("Corruption: bad block")
    with pytest.raises(CorruptionError) as caught, rocks_call("scanning"):
        raise original
    assert caught.value.__cause__ is original


def _calls_outside_rocks_call(tree: ast.AST) -> list[str]:
    """Calls into rocksdict objects that are not inside a ``with rocks_call(...)`` block."""
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    rocks_names = {"Rdict", "Checkpoint", "WriteBatch"}
    offences = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        target = None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) and func.value.attr == "_db":
            target = f"self._db.{func.attr}"
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "iterator":
            target = f"iterator.{func.attr}"
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "Rdict":
            target = f"Rdict.{func.attr}"
        elif isinstance(func, ast.Name) and func.id in rocks_names - {"WriteBatch"}:
            target = func.id
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "Checkpoint"
        ):
            target = "Checkpoint(...)." + func.attr
        if target is None:
            continue
        cursor: ast.AST | None = node
        guarded = False
        while cursor is not None:
            if isinstance(cursor, ast.With) and any(
                isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, "id", "") == "rocks_call"
                for item in cursor.items
            ):
                guarded = True
                break
            if isinstance(cursor, ast.Try) and any(
                handler.type is not None and getattr(handler.type, "id", "") == "Exception"
                for handler in cursor.handlers
            ):
                guarded = True  # a deliberate catch-all (e.g. counting keys of a damaged store)
                break
            cursor = parents.get(cursor)
        if not guarded:
            offences.append(f"line {node.lineno}: {target}")
    return offences


def test_every_rocksdict_call_in_the_backend_is_guarded() -> None:
    tree = ast.parse(ENGINE_SOURCE.read_text(encoding="utf-8"))
    assert _calls_outside_rocks_call(tree) == []


def test_the_guard_checker_catches_an_unguarded_call() -> None:
    tree = ast.parse("def f(self):\n    return self._db.get(b'k')\n")
    assert _calls_outside_rocks_call(tree) == ["line 2: self._db.get"]
