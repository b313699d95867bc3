"""Every httpx failure maps to a node error with an exit code (the httpx model: none left unmapped)."""

from __future__ import annotations

import inspect
import socket

import httpx
import pytest

from engines.errors import EngineError
from engines.node.client import NodeClient, read_token_file
from engines.node.errors import NodeBadRequestError, NodeError, NodeUnreachableError


def _httpx_errors() -> list[type[Exception]]:
    found = []
    for _name, kind in inspect.getmembers(httpx, inspect.isclass):
        if issubclass(kind, httpx.HTTPError) and kind not in (httpx.HTTPStatusError,):
            found.append(kind)
    return found


@pytest.mark.parametrize("kind", _httpx_errors(), ids=lambda kind: kind.__name__)
def test_every_httpx_error_is_mapped(kind: type[Exception]) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        if issubclass(kind, httpx.RequestError):
            raise kind("boom", request=request)
        raise kind("boom")

    client = NodeClient("http://127.0.0.1:1", transport=httpx.MockTransport(fail))
    with pytest.raises(NodeError) as caught:
        client.health()
    assert isinstance(caught.value, EngineError)
    assert isinstance(caught.value.__cause__, httpx.HTTPError)


def test_a_closed_port_is_unreachable_exit_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NodeUnreachableError) as caught:
        NodeClient(f"http://127.0.0.1:{port}", timeout=1).health()
    assert caught.value.exit_code == 3


def test_token_file_problems_are_bad_input(tmp_path) -> None:
    with pytest.raises(NodeBadRequestError):
        read_token_file(tmp_path / "absent")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(NodeBadRequestError, match="empty"):
        read_token_file(tmp_path / "empty")
    (tmp_path / "t").write_text("  abc \n")
    assert read_token_file(tmp_path / "t") == "abc"
