"""Backend-independent JSONL export and import of every live key.

The format is one JSON object per line::

    {"key": "user:42", "value": "hello"}

``key`` and ``value`` hold the bytes decoded as UTF-8. Bytes that are not valid UTF-8 are written
base64-encoded (standard alphabet, with padding) under ``key_b64`` / ``value_b64`` instead, so
every key and value round-trips exactly (keys under ``__drconsole__/``, drconsole's own, are left
out of exports and refused by imports: engines/keys.py)::

    {"key_b64": "/wA=", "value": "binary key, text value"}

Import accepts both spellings. An export is written to a temporary file beside the target,
fsynced and renamed into place, so a crash leaves the old file or the complete new one. An import
reads the whole file once to validate it before writing anything: a malformed line is reported
with its file and line number and nothing is imported.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from engines import fsio
from engines.base import MAX_KEY_BYTES, MAX_VALUE_BYTES, Engine, Entry
from engines.errors import EngineError, InvalidArgumentError, map_os_error
from engines.fsutil import fsync_dir
from engines.keys import RESERVED_PREFIX, is_reserved

__all__ = [
    "DEFAULT_BATCH",
    "encode_field",
    "encode_row",
    "decode_row",
    "read_jsonl",
    "validate_jsonl",
    "export_jsonl",
    "import_jsonl",
    "write_batches",
]

DEFAULT_BATCH = 1000
_FIELDS = {"key", "key_b64", "value", "value_b64"}


def encode_field(name: str, data: bytes) -> dict[str, str]:
    """``{name: text}``, or ``{name + "_b64": base64}`` when ``data`` is not valid UTF-8."""
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(data).decode("ascii")}


def encode_row(key: bytes, value: bytes) -> str:
    """One JSONL line (without the newline) for ``key`` and ``value``."""
    return json.dumps({**encode_field("key", key), **encode_field("value", value)}, ensure_ascii=False)


def _decode_field(row: dict[str, object], name: str) -> bytes:
    text, encoded = row.get(name), row.get(f"{name}_b64")
    if text is not None and encoded is not None:
        raise ValueError(f'both "{name}" and "{name}_b64" are given; use one')
    if text is None and encoded is None:
        raise ValueError(f'"{name}" is missing')
    if text is not None:
        if not isinstance(text, str):
            raise ValueError(f'"{name}" must be a string, not {type(text).__name__}')
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f'"{name}" holds a lone surrogate (\\u{ord(text[exc.start]):04x}); '
                f'write such bytes base64-encoded under "{name}_b64"'
            ) from exc
    if not isinstance(encoded, str):
        raise ValueError(f'"{name}_b64" must be a base64 string, not {type(encoded).__name__}')
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f'"{name}_b64" is not valid base64: {exc}') from exc


def decode_row(line: str) -> tuple[bytes, bytes]:
    """The (key, value) of one JSONL line; ``ValueError`` says what is wrong with it."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError:  # a line of 100k nested brackets: bad input, not a crash
        raise ValueError("not valid input: JSON nested too deeply (a record is one flat object)") from None
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; expected key/key_b64 and value/value_b64")
    key = _decode_field(row, "key")
    value = _decode_field(row, "value")
    if not key:
        raise ValueError("empty keys are not allowed")
    if is_reserved(key):
        raise ValueError(f"keys under {RESERVED_PREFIX.decode()!r} are reserved for drconsole")
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"key of {len(key)} bytes exceeds the {MAX_KEY_BYTES}-byte limit")
    if len(value) > MAX_VALUE_BYTES:
        raise ValueError(f"value of {len(value)} bytes exceeds the {MAX_VALUE_BYTES}-byte limit")
    return key, value


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes, bytes]]:
    """Yield (line number, key, value) for each record of ``path``; blank lines are skipped.

    Raises ``InvalidArgumentError`` naming the file and line of the first malformed record.
    """
    path = Path(path)
    if path.is_dir():
        raise InvalidArgumentError(f"input {path} is a directory, not a JSONL file")
    try:
        handle = open(path, "rb")
    except OSError as exc:
        error = map_os_error(exc, f"reading input {path}")
        raise InvalidArgumentError(error.message, hint="check the --input path") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark some editors add
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidArgumentError(
                    f"{path}, line {number}: not valid UTF-8 (byte {exc.start})",
                    hint="fix or remove that line; nothing was imported",
                ) from exc
            if not line.strip():
                continue
            try:
                key, value = decode_row(line)
            except ValueError as exc:
                raise InvalidArgumentError(
                    f"{path}, line {number}: {exc}",
                    hint='each line must be {"key": str, "value": str}; fix it, nothing was imported',
                ) from exc
            yield number, key, value


def validate_jsonl(path: str | os.PathLike[str]) -> int:
    """Check every line of ``path``; return the number of records. Writes nothing."""
    return sum(1 for _ in read_jsonl(path))


def export_jsonl(engine: Engine, path: str | os.PathLike[str]) -> int:
    """Write every live key of ``engine``, sorted by key, to ``path`` atomically; return the count."""
    path = Path(path)
    if path.is_dir():
        raise InvalidArgumentError(f"output {path} is a directory", hint="give a file path for --output")
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    count = 0
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            for key, value in engine.scan():
                if is_reserved(key):
                    continue  # drconsole's own (the node's ready probe): not user data, and import refuses it
                handle.write(encode_row(key, value))
                handle.write("\n")
                count += 1
            handle.flush()
            fsio.fsync(handle.fileno())
        fsio.replace(temp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise map_os_error(exc, f"writing export {path}") from exc
    finally:
        if temp.exists():
            temp.unlink()  # our own partial temp file; the previous export, if any, is untouched
    return count


def import_jsonl(
    engine: Engine, path: str | os.PathLike[str], batch: int = DEFAULT_BATCH, *, validate: bool = True
) -> int:
    """Validate all of ``path``, then write its records in atomic batches; return the count.

    Nothing is written when any line is malformed. A failure while writing (disk full) leaves the
    batches already written in place; the error says how many records that was. Pass
    ``validate=False`` only when the caller has just run ``validate_jsonl`` on the same file.
    """
    if batch < 1:
        raise InvalidArgumentError(f"batch must be at least 1, not {batch}")
    total = validate_jsonl(path) if validate else None
    rows = ((key, value) for _number, key, value in read_jsonl(path))
    return write_batches(engine, rows, batch, of_total=total, verb="imported")


def write_batches(
    engine: Engine,
    rows: Iterable[Entry],
    batch: int = DEFAULT_BATCH,
    *,
    of_total: int | None = None,
    verb: str = "written",
) -> int:
    """Write ``rows`` in atomic batches of ``batch``; return the count.

    A failure while writing (disk full) leaves the batches already written in place, and its message
    says how many records that was (``of_total``: out of how many).
    """
    written = 0
    chunk: list[Entry] = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                engine.write_batch(chunk)
                written += len(chunk)
                chunk = []
        if chunk:
            engine.write_batch(chunk)
            written += len(chunk)
    except EngineError as exc:
        if written:
            of = f" of {of_total}" if of_total is not None else ""
            exc.message = f"{exc.message} (after {written}{of} records were {verb})"
        raise
    return written
