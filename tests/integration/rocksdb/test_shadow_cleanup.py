"""A read-only open that fails leaves no private symlink shadow behind in the temp dir."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from engines import create_engine, open_engine
from engines.errors import EngineError


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Shadows go to a temp dir of this test's own: other tests' shadows (parallel workers) stay out."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    return private


def _shadows() -> set[str]:
    return {path.name for path in Path(tempfile.gettempdir()).glob("drconsole-ro-*")}


def test_a_failed_read_only_open_removes_its_shadow(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with create_engine(data, backend="rocksdb", durability="sync") as engine:
        for n in range(50):
            engine.put(b"k%03d" % n, b"v")
    for manifest in (data / "rocksdb").glob("MANIFEST-*"):
        manifest.rename(tmp_path / manifest.name)  # the store no longer opens
    before = _shadows()
    with pytest.raises(EngineError):
        open_engine(data, mode="ro")
    assert _shadows() - before == set()


def test_a_read_only_open_and_close_leave_no_shadow(tmp_path: Path) -> None:
    data = tmp_path / "data"
    create_engine(data, backend="rocksdb", durability="sync").close()
    before = _shadows()
    with open_engine(data, mode="ro") as engine:
        assert len(_shadows() - before) == 1  # the shadow exists while the engine is open
        engine.get(b"absent")
    assert _shadows() - before == set()
