"""The token book: a call naming no token carries the one booked for its URL, and only for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engines.node.client import NodeClient
from engines.node.tokens import book_token, book_token_file, booked_token, forget_tokens


@pytest.fixture(autouse=True)
def empty_book() -> Iterator[None]:
    forget_tokens()
    yield
    forget_tokens()


def test_only_booked_urls_get_a_token(tmp_path: Path) -> None:
    book_token("http://10.0.0.11:8081/", "group-secret")
    assert booked_token("HTTP://10.0.0.11:8081") == "group-secret"
    assert booked_token("http://10.0.0.12:8081") is None  # a URL a run's parameter names: no token
    with NodeClient("http://10.0.0.11:8081") as client:
        assert client._http.headers["Authorization"] == "Bearer group-secret"
    with NodeClient("http://10.0.0.12:8081") as client:
        assert "Authorization" not in client._http.headers
    with NodeClient("http://10.0.0.11:8081", token="explicit") as client:  # a named token wins
        assert client._http.headers["Authorization"] == "Bearer explicit"


def test_a_booked_file_is_read_at_each_call(tmp_path: Path) -> None:
    token = tmp_path / "node.token"
    token.write_text("first\n")
    book_token_file("http://127.0.0.1:9", token)
    assert booked_token("http://127.0.0.1:9") == "first"
    token.write_text("rotated\n")
    assert booked_token("http://127.0.0.1:9") == "rotated"
