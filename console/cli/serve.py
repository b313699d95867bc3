"""``drconsole serve ssh|web``: the console for responders over SSH, the dashboard for wall screens.

    drconsole serve ssh --port P --host-key FILE --users FILE [--host H] [--allow-remote] [--max-sessions N]
                        [--responder-seats N]
    drconsole serve ssh --generate-host-key FILE          a new ed25519 host key (mode 0600; never overwrites)
    drconsole serve web --port P [--host H] [--allow-remote] [--public-url URL]

Both bind to loopback unless ``--allow-remote``; ``--config`` picks the fleet their consoles show.
Everything is checked before anything listens: a users file that does not parse, an unknown role,
a missing or unprotected host key, a bad config are one line and exit 2, nothing started.
``register(subparsers, common)`` adds the command; only the standard library is imported at load time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from console.cli.common import CommandGroup, absolute_path, listen_port, positive_int, whole_number
from console.output import EXIT_OK, Output

__all__ = ["register", "run_ssh", "run_web"]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``serve ssh`` and ``serve web`` to ``subparsers``."""
    about = "serve the console over SSH or the dashboard over the web"
    serve = CommandGroup(subparsers, "serve", about, common, description=about)

    ssh = serve.add(
        "ssh",
        "one console per SSH session, by role (responder, viewer)",
        run_ssh,
        description="one console per SSH session (ssh -t), by role: a responder gets the console, a "
        "viewer the read-only dashboard",
    )
    ssh.add_argument("--port", type=listen_port, metavar="P", help="port to listen on (0: any free port)")
    ssh.add_argument("--host-key", type=absolute_path, metavar="FILE", help="the server's private host key")
    ssh.add_argument(
        "--users",
        type=absolute_path,
        metavar="FILE",
        help='users file (TOML): [[user]] name, role = "responder"|"viewer", keys = ["ssh-ed25519 ..."]',
    )
    ssh.add_argument(
        "--generate-host-key",
        type=absolute_path,
        metavar="FILE",
        help="write a new ed25519 host key to FILE (and FILE.pub) and exit",
    )
    _listen_options(ssh)
    ssh.add_argument("--max-sessions", type=positive_int, default=32, metavar="N", help="sessions at once (default 32)")
    ssh.add_argument(
        "--responder-seats",
        type=whole_number,
        default=4,
        metavar="N",
        help="of those, seats only responders may take, so viewers (wall screens) can never lock them out (default 4)",
    )

    web = serve.add(
        "web",
        "the read-only dashboard in a browser (viewer role only)",
        run_web,
        description="the read-only dashboard in a browser (textual-serve); put an authenticating TLS "
        "proxy in front of it (see deploy/README-operations.md)",
    )
    web.add_argument(
        "--port", type=listen_port, required=True, metavar="P", help="port to listen on (0: any free port)"
    )
    _listen_options(web)
    web.add_argument(
        "--public-url",
        metavar="URL",
        help="the URL browsers use (behind a proxy: https://wall.example.org); default http://H:P",
    )
    web.add_argument("--max-sessions", type=positive_int, default=32, metavar="N", help="browser sessions at once")


def _listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", metavar="H", help="listen address (default 127.0.0.1)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on a non-loopback address (put it behind a firewall or proxy)",
    )


def _check_listen(args: argparse.Namespace, what: str) -> None:
    from engines.errors import InvalidArgumentError
    from engines.node.config import is_loopback

    if not args.allow_remote and not is_loopback(args.host):
        raise InvalidArgumentError(
            f"serve {what}: refusing to listen on {args.host}: it is not a loopback address",
            hint="pass --allow-remote to listen there anyway",
        )
    if args.max_sessions < 1:
        raise InvalidArgumentError(f"serve {what}: --max-sessions must be at least 1")


def _config(args: argparse.Namespace) -> Path | None:
    """The fleet the consoles show: checked now, so that a bad config stops the server, not every session."""
    from console.config import load_config
    from console.config_lookup import resolve_config

    path, _source = resolve_config(getattr(args, "config", None))
    if path is not None:
        path = Path(path).absolute()
        load_config(path)  # raises ConfigError (exit 2) naming file, line and field
    return path


# -------------------------------------------------------------------------------------------- ssh
def run_ssh(args: argparse.Namespace, output: Output) -> int:
    from console.cli.servers.host_key import generate_host_key, load_host_key
    from console.cli.servers.run import run_ssh_server
    from console.cli.servers.users import load_users
    from engines.errors import InvalidArgumentError

    if args.generate_host_key is not None:
        fingerprint = generate_host_key(args.generate_host_key)
        output.result(
            {"host_key": str(args.generate_host_key), "fingerprint": fingerprint},
            f"wrote {args.generate_host_key} (and .pub): {fingerprint}",
        )
        return EXIT_OK
    missing = [
        flag
        for flag, value in (("--port", args.port), ("--host-key", args.host_key), ("--users", args.users))
        if value is None
    ]
    if missing:
        raise InvalidArgumentError(
            f"serve ssh: {', '.join(missing)} required",
            hint="drconsole serve ssh --port P --host-key FILE --users FILE",
        )
    _check_listen(args, "ssh")
    if not 0 <= args.responder_seats <= args.max_sessions:
        raise InvalidArgumentError(
            f"serve ssh: --responder-seats {args.responder_seats} must be between 0 and "
            f"--max-sessions ({args.max_sessions})"
        )
    host_key = load_host_key(args.host_key)
    users = load_users(args.users)
    config = _config(args)
    return run_ssh_server(
        host_key,
        users,
        host=args.host,
        port=args.port,
        config=config,
        max_sessions=args.max_sessions,
        responder_seats=args.responder_seats,
        output=output,
    )


# -------------------------------------------------------------------------------------------- web
def run_web(args: argparse.Namespace, output: Output) -> int:
    from console.cli.servers.web import WallServer

    _check_listen(args, "web")
    config = _config(args)
    WallServer(
        host=args.host, port=args.port, config=config, public_url=args.public_url, max_sessions=args.max_sessions
    ).run()
    return EXIT_OK
