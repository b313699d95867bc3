"""Which bearer token a call to a node carries when its caller names none.

A playbook's node actions (status, fence, promote, salvage) call other nodes of the group; they
know URLs, not tokens. A group shares one admin token, as Patroni's members share their REST API
credentials, so:
* a serving node books its own token for itself, its upstream and its ``--peer`` URLs: a run on its
  agent can fence and promote the group's members;
* the CLI and the console book each ``[[node]]``'s ``token_file`` for its ``url`` (read when a
  request needs it): a local run fails over to a node that checks tokens.
Only booked URLs get a token: a run's ``nodes=`` parameter naming another host sends it none.
"""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["book_token", "book_token_file", "booked_token", "forget_tokens"]

_lock = threading.Lock()
_book: dict[str, str | Path] = {}  # base URL -> the token, or the file to read it from


def _key(url: str) -> str:
    return url.strip().rstrip("/").lower()


def book_token(url: str, token: str) -> None:
    if url and token:
        with _lock:
            _book[_key(url)] = token


def book_token_file(url: str, path: str | Path) -> None:
    """Book ``path`` for ``url``: read at each request, so a rotated token file is followed."""
    if url and path:
        with _lock:
            _book[_key(url)] = Path(path)


def booked_token(url: str) -> str | None:
    """The token booked for ``url``'s base (scheme, host, port), or None."""
    with _lock:
        entry = _book.get(_key(url))
    if isinstance(entry, Path):
        from engines.node.client import read_token_file  # the one reader, with its clear errors

        return read_token_file(entry)
    return entry


def forget_tokens() -> None:
    with _lock:
        _book.clear()
