"""drconsole's embedded storage engines: one contract, three backends (cow, lsm, rocksdb).

    from engines import create_engine, open_engine
    engine = create_engine(path, backend="lsm", durability="sync")
    engine = open_engine(path, mode="rw")
"""

from engines.base import Engine
from engines.errors import EngineError
from engines.registry import create_engine, engine_class, open_engine
from engines.reports import EngineStats, Problem, VerifyReport

__all__ = ["Engine", "EngineError", "EngineStats", "Problem", "VerifyReport", "create_engine", "engine_class", "open_engine"]
