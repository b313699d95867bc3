"""``drconsole audit verify|show``: check the keyed, anchored audit log; read it.

    drconsole audit verify [--state-dir S] [--syslog FILE] [--peer URL] [--json]
        every entry's MAC and link, the head, and the anchors outside the log's directory
        (exit 1 when anything was rewritten, cut off or deleted; 3 when the key cannot be read)
    drconsole audit show [--state-dir S] [--since WHEN] [--action A] [--limit N] [--json]
        the entries, oldest first: when, who (and from where), what, target, outcome

Only the standard library is imported at load time.
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from console.cli.common import CommandGroup, absolute_path, whole_number
from console.output import EXIT_OK, EXIT_PROBLEM, Output, output_for

__all__ = ["register", "run_verify", "run_show", "since_time"]

_AGO = re.compile(r"^(\d{1,9})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_time(text: str) -> str:
    """``--since``: ``30m``, ``2h``, ``7d`` ago, or an ISO 8601 time; as an entry's ``time`` string (UTC)."""
    match = _AGO.match(text.strip())
    try:
        if match:
            moment = datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
        else:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a duration (30m, 2h, 7d) nor an ISO 8601 time") from None


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    audit = CommandGroup(
        subparsers, "audit", "the keyed, anchored audit log: verify it, read it", common, json_on_group=True
    )

    def state(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--state-dir",
            type=absolute_path,
            metavar="S",
            help="the state dir whose audit.jsonl to read (default: $DRCONSOLE_STATE_DIR, "
            "else ~/.local/state/drconsole; a node's --state-dir for its admin calls)",
        )

    verify = audit.add(
        "verify",
        "check every entry's MAC and link, the head and the anchors outside the log's "
        "directory (exit 1 when rewritten, cut or deleted)",
        run_verify,
    )
    state(verify)
    verify.add_argument(
        "--syslog",
        type=absolute_path,
        metavar="FILE",
        help="a syslog file holding the anchored heads (/var/log/auth.log; default: the journal)",
    )
    verify.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="URL",
        help="a node peer that holds this node's audit heads (repeatable)",
    )
    verify.add_argument("--token-file", type=absolute_path, metavar="F", help="the peer's bearer token")
    show = audit.add("show", "the audit entries, oldest first (who, from where, what, target, outcome)", run_show)
    state(show)
    show.add_argument(
        "--since", type=since_time, metavar="WHEN", help="only entries since WHEN (30m, 2h, 7d or ISO 8601)"
    )
    show.add_argument("--action", metavar="A", help="only entries whose action starts with A (cli.backup, admin.)")
    show.add_argument("--limit", type=whole_number, metavar="N", help="only the newest N entries")


def _log(args: argparse.Namespace) -> Any:
    from playbooks.audit import AuditLog
    from playbooks.state import StateDir

    return AuditLog(StateDir(args.state_dir).audit_log if args.state_dir else StateDir().audit_log)


def run_verify(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.audit_peers import peer_heads

    out = output_for(args, output)
    log = _log(args)
    heads = peer_heads(log, args.peer, token_file=args.token_file) if args.peer else []
    result = log.verify(syslog=args.syslog, peer_heads=heads)
    anchors = ", ".join(f"{anchor['where']} (entry {anchor['seq']})" for anchor in result.anchors) or "none"
    if result.ok:
        kind = (
            "UNKEYED: written before the chain was keyed; anyone who could write the log could have recomputed it"
            if result.unkeyed
            else f"{result.keyed_entries} keyed"
            + (f", {result.unkeyed_entries} older unkeyed" if result.unkeyed_entries else "")
        )
        text = f"ok: audit log {result.path}: {result.entries} entries ({kind}), chain intact; anchors: {anchors}"
    else:
        text = "\n".join(
            [f"TAMPERED: audit log {result.path}: {len(result.problems)} problem(s); anchors: {anchors}"]
            + [f"  line {problem['line'] or '-'}: {problem['reason']}" for problem in result.problems]
        )
    out.result(result.to_json(), text)
    return EXIT_OK if result.ok else EXIT_PROBLEM


def _who(entry: dict[str, Any]) -> str:
    found = entry.get("who")
    who: dict[str, Any] = found if isinstance(found, dict) else {}
    user = str(who.get("user") or "?")
    client = who.get("ssh_client")
    text = f"{user} from {str(client).split()[0]}" if client else user
    return f"{text} ({who['via']})" if who.get("via") else text


def run_show(args: argparse.Namespace, output: Output | None = None) -> int:
    out = output_for(args, output)
    log = _log(args)
    entries = [entry for entry in log.entries() if "unreadable" not in entry]
    if args.since:
        entries = [entry for entry in entries if str(entry.get("time", "")) >= args.since]
    if args.action:
        entries = [entry for entry in entries if str(entry.get("action", "")).startswith(args.action)]
    if args.limit is not None:
        entries = entries[-args.limit :] if args.limit else []
    lines = [
        f"{entry.get('time', '?')}  #{entry.get('seq', '?')}  {_who(entry)}  {entry.get('action', '?')}  "
        f"{entry.get('target', '')}  {entry.get('outcome', '?')}"
        + (f": {entry['detail']}" if entry.get("detail") else "")
        for entry in entries
    ]
    text = "\n".join(lines) if lines else f"no audit entries in {log.path}" + (" since then" if args.since else "")
    out.result(
        {
            "path": str(log.path),
            "entries": entries,
            "count": len(entries),
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        text,
    )
    return EXIT_OK


# ------------------------------------------------------------------------------ change-making commands
# Every command that changes a data dir, a repository, a node or an incident: each run leaves
# "started" and its outcome in the audit log (playbook runs are audited step by step by the runner).
CHANGING: frozenset[tuple[str, str | None]] = frozenset(
    {
        ("engine", "init"),
        ("engine", "put"),
        ("engine", "delete"),
        ("engine", "import"),
        ("engine", "flush"),
        ("engine", "compact"),
        ("engine", "repair"),
        ("wal", "truncate"),
        ("backup", "create"),
        ("backup", "restore"),
        ("backup", "prune"),
        ("backup", "schedule"),
        ("fault", "inject"),
        ("node", "promote"),
        ("node", "fence"),
        ("node", "demote"),
        ("node", "rejoin"),
        ("incident", "close"),
    }
)
_TARGETS = ("data_dir", "url", "repo", "id")
_SECRET = frozenset({"value", "func", "command", "action", "json", "config"})  # a value is data, not a fact


def _target(args: argparse.Namespace) -> str:
    found = [f"{name}={getattr(args, name)}" for name in _TARGETS if getattr(args, name, None) is not None]
    return " ".join(found) or "-"


def _arguments(args: argparse.Namespace) -> dict[str, str]:
    shown = {
        name: str(value)
        for name, value in vars(args).items()
        if name not in _SECRET and name not in _TARGETS and value not in (None, False, [], "")
    }
    if getattr(args, "value", None) is not None:
        shown["value"] = f"<{len(str(args.value).encode('utf-8', 'surrogateescape'))} bytes>"
    return shown


def run_audited(args: argparse.Namespace, output: Output, handler: Any) -> int:
    """Run ``handler``; when the command changes something, audit it before and after.

    The "started" entry is written first: a command that cannot be audited does not run.
    """
    key = (getattr(args, "command", None), getattr(args, "action", None))
    if key not in CHANGING:
        return int(handler(args, output))
    from engines.errors import EngineError, SafetyRefusal
    from playbooks.audit import AuditLog
    from playbooks.state import StateDir, current_actor

    log = AuditLog(StateDir().audit_log)
    actor = current_actor()
    action = "cli." + ".".join(part for part in key if part)
    target, arguments = _target(args), _arguments(args)
    try:
        log.append(actor=actor, action=action, target=target, outcome="started", args=arguments)
    except EngineError as exc:
        raise SafetyRefusal(
            f"refusing to run `drconsole {' '.join(p for p in key if p)}` unaudited: {exc.message}",
            hint="make the audit log and its key writable, or point DRCONSOLE_STATE_DIR and "
            "DRCONSOLE_AUDIT_KEY at writable places; nothing was done",
        ) from exc

    def finish(outcome: str, detail: str) -> None:
        try:
            log.append(actor=actor, action=action, target=target, outcome=outcome, detail=detail[:500], args=arguments)
        except EngineError as exc:
            output.note(f"the outcome of {action} could not be audited: {exc.message}")

    try:
        code = int(handler(args, output))
    except BaseException as exc:
        exit_code = getattr(exc, "exit_code", None)
        finish(
            "refused" if exit_code == 4 else "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
            str(getattr(exc, "message", None) or exc or type(exc).__name__),
        )
        raise
    finish(
        "succeeded" if code == 0 else "refused" if code == 4 else "failed",
        "" if code == 0 else f"exit {code}: {output.last_error or ''}".rstrip(": "),
    )
    return code
