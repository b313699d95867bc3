"""``engines.transfer``: JSONL export/import over the public engine API, on every backend."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from cli_support import make_data_dir

from engines import create_engine, open_engine
from engines.errors import InvalidArgumentError
from engines.transfer import decode_row, encode_row, export_jsonl, import_jsonl


class CountingEngine:
    """Passes everything to the engine and counts write_batch calls."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.batches: list[int] = []

    def write_batch(self, entries: list[tuple[bytes, bytes | None]]) -> int:
        self.batches.append(len(entries))
        return int(self.engine.write_batch(entries))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def test_import_writes_in_batches_and_export_sorts(backend: str, tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    keys = [f"k{i:05d}" for i in range(2345)]
    random.Random(3).shuffle(keys)
    source.write_text("".join(json.dumps({"key": k, "value": k.upper()}) + "\n" for k in keys) + "\n\n")
    with create_engine(tmp_path / "data", backend=backend) as engine:
        counting = CountingEngine(engine)
        assert import_jsonl(counting, source, batch=1000) == 2345  # type: ignore[arg-type]
        assert counting.batches == [1000, 1000, 345]
    target = tmp_path / "out.jsonl"
    with open_engine(tmp_path / "data", mode="ro") as engine:
        assert export_jsonl(engine, target) == 2345
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["key"] for row in lines] == sorted(keys)
    assert all(row["value"] == row["key"].upper() for row in lines)


def test_a_bad_last_line_means_no_write_at_all(any_backend: str, tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps({"key": f"k{i}", "value": "v"}) + "\n" for i in range(1500)) + "{oops\n")
    data = make_data_dir(tmp_path / "data", any_backend, rows=0)
    with open_engine(data) as engine:
        counting = CountingEngine(engine)
        with pytest.raises(InvalidArgumentError, match=r"line 1501"):
            import_jsonl(counting, source)  # type: ignore[arg-type]
        assert counting.batches == []
        assert engine.get(b"k0") is None


def test_any_bytes_round_trip(any_backend: str, tmp_path: Path) -> None:
    generator = random.Random(11)
    rows = {
        bytes([i]) + generator.randbytes(generator.randrange(0, 20)): generator.randbytes(generator.randrange(0, 50))
        for i in range(1, 256)
    }
    rows["plain ✓".encode()] = "text ✓".encode()
    with create_engine(tmp_path / "one", backend=any_backend) as engine:
        engine.write_batch(list(rows.items()))
        export_jsonl(engine, tmp_path / "dump.jsonl")
    with create_engine(tmp_path / "two", backend=any_backend) as engine:
        assert import_jsonl(engine, tmp_path / "dump.jsonl") == len(rows)
        assert dict(engine.scan()) == rows
    assert '{"key": "plain ✓", "value": "text ✓"}' in (tmp_path / "dump.jsonl").read_text(encoding="utf-8")


@pytest.mark.parametrize("key,value", [(b"k", b""), (b"\xff", b"v"), (b"k", b"\x80\x81"), ("✓".encode(), b"\x00")])
def test_encode_decode_are_inverse(key: bytes, value: bytes) -> None:
    assert decode_row(encode_row(key, value)) == (key, value)
