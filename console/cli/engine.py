"""``drconsole engine ...``: one data directory through the public engine API.

Read-only commands (get, export, stats, verify) open with ``mode="ro"``, which writes nothing,
not even a lock file. Every handler returns the exit code and leaves errors to ``console.cli.main``.
``register`` builds the parser from the standard library alone; the engines are imported by the
handler that runs (importing them costs a quarter of a second).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli.common import BACKENDS, CommandGroup, absolute_path, data_dir_option
from console.output import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Output

if TYPE_CHECKING:
    from engines import Engine
    from engines.reports import VerifyReport

__all__ = [
    "register",
    "run_init",
    "run_put",
    "run_get",
    "run_delete",
    "run_import",
    "run_export",
    "run_stats",
    "run_verify",
    "run_flush",
    "run_compact",
    "run_repair",
    "as_bytes",
]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``engine`` and its actions to ``subparsers`` (the main parser's command list)."""
    engine = CommandGroup(subparsers, "engine", "work on one data directory", common)
    init = engine.add("init", "create a new, empty data directory", run_init)
    init.add_argument("--engine", required=True, choices=BACKENDS)
    init.add_argument("--data-dir", required=True, type=absolute_path, metavar="D")
    init.add_argument("--durability", choices=("sync", "async"), default="sync")
    put = engine.add("put", "store VALUE under KEY (UTF-8 text)", run_put)
    data_dir_option(put)
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    get = engine.add("get", "print the value of KEY (exit 1 when absent)", run_get)
    data_dir_option(get)
    get.add_argument("key", metavar="KEY")
    delete = engine.add("delete", "delete KEY", run_delete)
    data_dir_option(delete)
    delete.add_argument("key", metavar="KEY")
    load = engine.add(
        "import",
        'write every {"key": str, "value": str} line of a JSONL file; bytes that are not '
        'UTF-8 come as "key_b64"/"value_b64" (base64). The whole file is checked first: '
        "one malformed line and nothing is imported",
        run_import,
    )
    data_dir_option(load)
    load.add_argument("--input", required=True, type=absolute_path, metavar="F.jsonl")
    load.add_argument("--batch", type=int, default=1000, help=argparse.SUPPRESS)
    dump = engine.add(
        "export",
        'write all live keys, sorted by key, as {"key": str, "value": str} lines to a JSONL '
        "file ('-': stdout); bytes that are not UTF-8 go base64-encoded under "
        '"key_b64"/"value_b64"',
        run_export,
    )
    data_dir_option(dump)
    dump.add_argument("--output", required=True, metavar="F.jsonl")
    data_dir_option(engine.add("stats", "keys, disk, memory, WAL size and last LSN", run_stats))
    data_dir_option(
        engine.add("verify", "check every checksum and invariant (read-only; exit 1 on a problem)", run_verify)
    )
    for name, help_text, func in (
        ("flush", "make the store durable on its own and recycle covered WAL", run_flush),
        ("compact", "compact the store", run_compact),
    ):
        command = engine.add(name, help_text, func)
        data_dir_option(command)
        command.add_argument("--yes", action="store_true", help="accepted for symmetry; not needed")
    repair = engine.add("repair", "best-effort repair; what it drops goes to .quarantine/ (needs --yes)", run_repair)
    data_dir_option(repair)
    repair.add_argument("--yes", action="store_true", help="confirm the repair (destructive)")


def as_bytes(text: str, what: str) -> bytes:
    """Command-line text as bytes: UTF-8, with bytes the shell passed undecoded kept as they were.

    The engine's limits are checked here too, before the data dir is opened for writing: a bad
    key must not even leave an open's traces behind.
    """
    from engines.base import MAX_KEY_BYTES, MAX_VALUE_BYTES
    from engines.errors import InvalidArgumentError

    try:
        data = text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"the {what} {text!r} is not valid text",
            hint="pass UTF-8 text; use `engine import` with key_b64/value_b64 for binary",
        ) from exc
    limit = MAX_KEY_BYTES if what == "key" else MAX_VALUE_BYTES
    if what == "key" and not data:
        raise InvalidArgumentError("empty keys are not allowed", hint="give a key of at least one byte")
    if len(data) > limit:
        raise InvalidArgumentError(
            f"the {what} is {len(data)} bytes, over the {limit}-byte limit", hint=f"shorten the {what}"
        )
    return data


@contextmanager
def _backend_module(what: str) -> Iterator[None]:
    """A backend whose module is missing (a build without it) is "cannot be opened", not a crash."""
    from engines.errors import UnsupportedFormatError

    try:
        yield
    except ModuleNotFoundError as exc:
        raise UnsupportedFormatError(
            f"{what}: the backend is not available in this build ({exc})", hint="use a drconsole build that includes it"
        ) from exc


def _open(args: argparse.Namespace, mode: str) -> Engine:
    from engines import open_engine

    with _backend_module(str(args.data_dir)):
        return open_engine(args.data_dir, mode=mode, backend=getattr(args, "engine", None))


# ---------------------------------------------------------------------------------------- init
def _first_missing(path: Path) -> Path | None:
    """The topmost ancestor of ``path`` (or ``path`` itself) that does not exist yet."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            break
        missing = candidate
    return missing


def _undo_init(path: Path, created: Path | None, was_empty: bool) -> None:
    """Remove what a failed init created: only directories this command made, never user data."""
    try:
        if created is not None and created.exists():
            shutil.rmtree(created)
        elif was_empty and path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    except OSError:
        pass  # best effort; the original error is the one to report


def run_init(args: argparse.Namespace, out: Output) -> int:
    from engines import create_engine
    from engines.errors import InvalidArgumentError, map_os_error

    path: Path = args.data_dir
    created = _first_missing(path)
    try:
        was_empty = path.is_dir() and not any(path.iterdir())
    except OSError as exc:
        raise map_os_error(exc, f"reading {path}") from exc
    if path.exists() and not was_empty:  # before anything else, whichever backend was asked for
        raise InvalidArgumentError(
            f"{path} already exists and is not empty",
            hint="choose a new path; an existing data dir is opened by the other engine commands",
        )
    try:
        with _backend_module(f"{args.engine} data dir {path}"):
            engine = create_engine(path, backend=args.engine, durability=args.durability)
        engine.close()
    except BaseException:
        _undo_init(path, created, was_empty)
        raise
    out.result(
        {"ok": True, "backend": args.engine, "data_dir": str(path), "durability": args.durability},
        f"created {args.engine} data dir {path} (durability {args.durability})",
    )
    return EXIT_OK


# ------------------------------------------------------------------------------- key/value
def run_put(args: argparse.Namespace, out: Output) -> int:
    from engines.keys import check_user_key
    from engines.transfer import encode_field

    key, value = as_bytes(args.key, "key"), as_bytes(args.value, "value")
    check_user_key(key)
    with _open(args, "rw") as engine:
        lsn = engine.put(key, value)
    out.result({"ok": True, **encode_field("key", key), "lsn": lsn}, f"stored {args.key} (LSN {lsn})")
    return EXIT_OK


def run_get(args: argparse.Namespace, out: Output) -> int:
    from engines.transfer import encode_field

    key = as_bytes(args.key, "key")
    with _open(args, "ro") as engine:
        value = engine.get(key)
    if value is None:
        out.note(f"key {args.key!r} not found in {args.data_dir}")
        out.result({"found": False, **encode_field("key", key), "value": None})
        return EXIT_PROBLEM
    if out.json_mode:
        out.result({"found": True, **encode_field("key", key), **encode_field("value", value)})
    else:
        try:
            out.result({}, value.decode("utf-8"))
        except UnicodeDecodeError:
            out.raw(value)
    return EXIT_OK


def run_delete(args: argparse.Namespace, out: Output) -> int:
    from engines.keys import check_user_key
    from engines.transfer import encode_field

    key = as_bytes(args.key, "key")
    check_user_key(key)
    with _open(args, "rw") as engine:
        existed = engine.get(key) is not None
        lsn = engine.delete(key)
    text = f"deleted {args.key} (LSN {lsn})" if existed else f"{args.key} was not present (LSN {lsn})"
    out.result({"ok": True, **encode_field("key", key), "existed": existed, "lsn": lsn}, text)
    return EXIT_OK


# ------------------------------------------------------------------------------ import/export
def run_import(args: argparse.Namespace, out: Output) -> int:
    from engines.errors import InvalidArgumentError
    from engines.marker import detect_backend
    from engines.transfer import import_jsonl, validate_jsonl

    if args.batch < 1:
        raise InvalidArgumentError(f"--batch must be at least 1, not {args.batch}")
    detect_backend(args.data_dir)  # a missing data dir is reported before the input is read
    records = validate_jsonl(args.input)  # the whole file, before the engine is even opened
    with _open(args, "rw") as engine:
        written = import_jsonl(engine, args.input, batch=args.batch, validate=False)
        lsn = engine.last_lsn
    out.result(
        {"ok": True, "records": written, "input": str(args.input), "last_lsn": lsn},
        f"imported {written} records from {args.input} into {args.data_dir}",
    )
    return EXIT_OK if written == records else EXIT_PROBLEM


def run_export(args: argparse.Namespace, out: Output) -> int:
    from engines.errors import InvalidArgumentError
    from engines.keys import is_reserved
    from engines.transfer import encode_row, export_jsonl

    if args.output == "-":
        if out.json_mode:
            raise InvalidArgumentError(
                "--output - writes the records to stdout, which --json needs", hint="give a file path with --json"
            )
        with _open(args, "ro") as engine:
            for key, value in engine.scan():
                if not is_reserved(key):
                    sys.stdout.write(encode_row(key, value) + "\n")
        sys.stdout.flush()
        return EXIT_OK
    output = Path(args.output).absolute()
    with _open(args, "ro") as engine:
        count = export_jsonl(engine, output)
    out.result(
        {"ok": True, "records": count, "output": str(output)},
        f"exported {count} records from {args.data_dir} to {output}",
    )
    return EXIT_OK


# ------------------------------------------------------------------------------ stats/verify
def run_stats(args: argparse.Namespace, out: Output) -> int:
    with _open(args, "ro") as engine:
        stats = engine.stats()
    payload = stats.model_dump(mode="json")
    width = max(len(name) for name in payload)
    lines = [f"{name:<{width}}  {value}" for name, value in payload.items() if name != "details"]
    lines += [f"{name:<{width}}  {value}" for name, value in sorted(stats.details.items())]
    out.result(payload, "\n".join(lines))
    return EXIT_OK


def _backend_of(args: argparse.Namespace) -> str:
    """The backend the data dir holds, checked against ``--engine`` before anything opens it."""
    from engines.errors import BackendMismatchError
    from engines.marker import detect_backend

    backend = detect_backend(args.data_dir)
    if args.engine is not None and args.engine != backend:
        raise BackendMismatchError(f"{args.data_dir} holds a {backend} engine, not {args.engine}")
    return backend


def _verify_report(args: argparse.Namespace) -> VerifyReport:
    _backend_of(args)
    from engines.checks import verify_data_dir

    return verify_data_dir(args.data_dir)


def run_verify(args: argparse.Namespace, out: Output) -> int:
    report = _verify_report(args)
    payload = report.model_dump(mode="json")
    if report.ok:
        checked = ", ".join(f"{count} {what}" for what, count in sorted(report.checked.items()))
        text = f"ok: {report.backend} data dir {args.data_dir} verified" + (f" ({checked})" if checked else "")
    else:
        lines = [f"FAILED: {report.backend} data dir {args.data_dir}: {len(report.problems)} problem(s)"]
        for problem in report.problems:
            where = problem.file or "-"
            if problem.offset is not None:
                where += f" @ {problem.offset}"
            lines.append(f"  {problem.kind}: {where}: {problem.detail}")
        text = "\n".join(lines)
    out.result(payload, text)
    return EXIT_OK if report.ok else EXIT_PROBLEM


# ------------------------------------------------------------------------ maintenance
def run_flush(args: argparse.Namespace, out: Output) -> int:
    with _open(args, "rw") as engine:
        engine.flush()
        lsn = engine.last_lsn
    out.result({"ok": True, "action": "flush", "last_lsn": lsn}, f"flushed {args.data_dir} (LSN {lsn})")
    return EXIT_OK


def run_compact(args: argparse.Namespace, out: Output) -> int:
    with _open(args, "rw") as engine:
        engine.compact()
    out.result({"ok": True, "action": "compact"}, f"compacted {args.data_dir}")
    return EXIT_OK


def _report_payload(report: Any) -> dict[str, Any]:
    if hasattr(report, "model_dump"):
        dumped: dict[str, Any] = report.model_dump(mode="json")
        return dumped
    if isinstance(report, dict):
        return report
    return {"report": None if report is None else str(report)}


def run_repair(args: argparse.Namespace, out: Output) -> int:
    from engines import engine_class
    from engines.errors import SafetyRefusal

    path: Path = args.data_dir
    backend = _backend_of(args)
    with _backend_module(f"{backend} data dir {path}"):
        repair = getattr(engine_class(backend), "repair", None)
    if repair is None:
        return out.error(
            f"repair is not available for the {backend} backend ({path})",
            hint="use `drconsole engine verify` and restore from a backup",
            exit_code=EXIT_USAGE,
            kind="NotAvailable",
        )
    if not args.yes:
        raise SafetyRefusal(
            f"engine repair of {path} is destructive and was not confirmed",
            hint=f"re-run with --yes; what repair drops is moved to {path / '.quarantine'}",
        )
    try:
        with _backend_module(f"repairing {backend} data dir {path}"):
            report = repair(path)
    except NotImplementedError:
        return out.error(
            f"repair is not available for the {backend} backend ({path})",
            hint="use `drconsole engine verify` and restore from a backup",
            exit_code=EXIT_USAGE,
            kind="NotAvailable",
        )
    payload = {"backend": backend, "data_dir": str(path), **_report_payload(report)}
    payload.setdefault("ok", True)
    lines = [f"repaired {backend} data dir {path}"]
    lines += [f"  {name}: {value}" for name, value in payload.items() if name not in ("backend", "data_dir", "ok")]
    out.result(payload, "\n".join(lines))
    return EXIT_OK if payload["ok"] else EXIT_PROBLEM
