"""drconsole's embedded storage engines: one contract, three backends (cow, lsm, rocksdb).

    from engines import create_engine, open_engine
    engine = create_engine(path, backend="lsm", durability="sync")
    engine = open_engine(path, mode="rw")

The names below load on first use (PEP 562): ``import engines.backup.verify`` must not pay for the
engine contract, pydantic models and all, when a command never opens an engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engines.base import Engine
    from engines.errors import EngineError
    from engines.registry import create_engine, engine_class, open_engine
    from engines.reports import EngineStats, Problem, VerifyReport

__all__ = [
    "Engine",
    "EngineError",
    "EngineStats",
    "Problem",
    "VerifyReport",
    "create_engine",
    "engine_class",
    "open_engine",
]

_HOMES = {
    "Engine": "engines.base",
    "EngineError": "engines.errors",
    "create_engine": "engines.registry",
    "engine_class": "engines.registry",
    "open_engine": "engines.registry",
    "EngineStats": "engines.reports",
    "Problem": "engines.reports",
    "VerifyReport": "engines.reports",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engines' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
