"""Backend registry: ``create_engine`` and ``open_engine``.

Backends are imported lazily so that ``drconsole engine get`` on an LSM dir never pays for
importing rocksdict.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from engines.base import Engine
from engines.errors import BackendMismatchError, InvalidArgumentError, map_os_error
from engines.fsutil import fsync_dir
from engines.marker import BACKENDS, Marker, detect_backend, read_marker, write_marker
from engines.options import LOW_MEMORY, EngineOptions

__all__ = ["create_engine", "open_engine", "engine_class"]

_CLASSES = {
    "cow": ("engines.cow.engine", "CowEngine"),
    "lsm": ("engines.lsm.engine", "LsmEngine"),
    "rocksdb": ("engines.rocksdb.engine", "RocksEngine"),
}


def engine_class(backend: str) -> type[Engine]:
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    module_name, class_name = _CLASSES[backend]
    cls: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_engine(
    path: str | os.PathLike[str],
    backend: str = "lsm",
    *,
    durability: str = "sync",
    node_name: str = "",
    low_memory: bool = False,
    backend_options: dict[str, Any] | None = None,
    **options: Any,
) -> Engine:
    """Create a new data dir at ``path`` (absent or empty) and open it read-write.

    ``options`` are ``EngineOptions`` fields; ``backend_options`` go to the backend (see its docs).
    """
    cls = engine_class(backend)
    path = Path(path)
    settings: dict[str, Any] = {"durability": durability, **options}
    if backend_options:
        settings["backend"] = dict(backend_options)
    if low_memory:
        settings = {**LOW_MEMORY, **settings}
    try:
        engine_options = EngineOptions.model_validate(settings)
    except ValueError as exc:
        raise InvalidArgumentError(f"bad engine option: {str(exc).splitlines()[-1].strip()}") from exc
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidArgumentError(
            f"{path} already exists and is not empty",
            hint="choose a new path; open existing data dirs with open_engine",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        fsync_dir(path.parent)
        marker = Marker(
            backend=backend,
            node_name=node_name or path.name,
            durability=engine_options.durability,
            options=engine_options.model_dump(exclude={"durability"}),
        )
        write_marker(path, marker)
        (path / "wal").mkdir()
        cls._store_create(path, engine_options)
        fsync_dir(path)
    except OSError as exc:
        raise map_os_error(exc, f"creating data dir {path}") from exc
    return cls(path, mode="rw", options=engine_options)


def open_engine(
    path: str | os.PathLike[str], mode: str = "rw", *, backend: str | None = None, durability: str | None = None
) -> Engine:
    """Open an existing data dir; the backend is detected (marker, else files)."""
    path = Path(path)
    found = detect_backend(path)
    if backend is not None and backend != found:
        raise BackendMismatchError(f"{path} holds a {found} engine, not {backend}")
    cls = engine_class(found)
    options = None
    if durability is not None:
        marker = read_marker(path) or Marker(backend=found)
        options = EngineOptions.of_marker(marker, path, durability=durability)
    return cls(path, mode=mode, options=options)
