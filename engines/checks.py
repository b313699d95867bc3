"""Checks of a data dir as a whole, for callers that hold no open engine (CLI, probes, playbooks)."""

from __future__ import annotations

import os
from pathlib import Path

from engines.errors import CorruptionError, UnsupportedFormatError
from engines.marker import detect_backend
from engines.registry import engine_class, open_engine
from engines.reports import VerifyReport

__all__ = ["verify_data_dir"]


def verify_data_dir(path: str | os.PathLike[str]) -> VerifyReport:
    """Verify ``path`` read-only. A store too damaged to open is a finding, not an error.

    A missing or foreign directory still raises (``NotFoundError``): there is nothing to verify.
    """
    path = Path(path)
    backend = detect_backend(path)
    try:
        engine = open_engine(path, mode="ro")
    except CorruptionError as exc:
        return engine_class(backend).verify_unopenable(path, exc)
    except UnsupportedFormatError as exc:
        report = VerifyReport(backend=backend)
        report.add("format-version", exc.message)
        return report
    with engine:
        return engine.verify()
