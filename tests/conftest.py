"""Shared fixtures (helpers live in support.py, importable as ``support``)."""

from __future__ import annotations

import pytest
from support import backend_params, crash_copy


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def crash() -> object:
    """``crash(source, dest)``: a crash-consistent copy of an open data dir (see crash_copy)."""
    return crash_copy
