"""One memory budget for the request bodies a node holds at once (issue 18, item 1).

A PUT value is held whole before it is written (the WAL record carries it in one piece), so
without a bound N clients each sending most of a ``--max-value-bytes`` body and then stalling
cost N times that in RSS, with no token needed. The budget is what every body in flight may
take together (``--max-body-memory``):

- a request that declares its length reserves all of it before a byte is read; when it does not
  fit, the answer is 503 at once (``Retry-After``), the body is never read;
- a declared body of at most ``SMALL_BODY`` bytes is admitted without a reservation, so that
  ordinary writes go on while big uploads hold the budget: they are bounded apart, by the
  connection limit times ``SMALL_BODY`` (16 MiB at the default 256 connections);
- a chunked body reserves as it arrives and gets 503 the moment it would pass the budget;
- a client that stops sending for ``idle_seconds`` gets 408 and its reservation back, so that a
  stalled upload cannot hold the budget for good;
- the reservation lasts until the handler is done with the value (the write is in memory too).

Everything here runs on the event loop, so the counter needs no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request

from engines.node.config import DEFAULT_BODY_MEMORY, DEFAULT_IDLE_SECONDS
from engines.node.errors import NodeBadRequestError

__all__ = ["BodyBudget", "BudgetExceeded", "BodyTimeout", "BodyTooLarge", "SMALL_BODY"]

SMALL_BODY = 64 * 1024  # uvicorn's own read buffer per connection is as large


class BudgetExceeded(Exception):
    """The bodies in flight already take the budget: 503, retry shortly."""


class BodyTimeout(Exception):
    """The client stopped sending its body: 408."""


class BodyTooLarge(Exception):
    """The body is larger than this request may send: 413."""


class BodyBudget:
    """Bytes reserved by bodies in flight, never more than ``limit``."""

    def __init__(self, limit: int = DEFAULT_BODY_MEMORY, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self.limit = limit
        self.idle_seconds = idle_seconds
        self.reserved = 0
        self.refused = 0  # requests answered 503 for lack of budget, since start (a metric)

    def _take(self, size: int) -> None:
        if self.reserved + size > self.limit:
            self.refused += 1
            raise BudgetExceeded(
                f"request bodies in flight already hold {self.reserved} of the "
                f"{self.limit}-byte budget (--max-body-memory)"
            )
        self.reserved += size

    @asynccontextmanager
    async def body(self, request: Request, limit: int) -> AsyncIterator[bytes]:
        """Read the body of ``request`` (at most ``limit`` bytes) inside the budget; yield it.

        Raises:
            BodyTooLarge: declared or sent beyond ``limit``.
            BudgetExceeded: it does not fit beside the bodies in flight.
            BodyTimeout: no byte for ``idle_seconds``.
            NodeBadRequestError: a malformed Content-Length.
        """
        declared_text = request.headers.get("content-length")
        declared = None if declared_text is None else _length(declared_text)
        if declared is not None and declared > limit:
            raise BodyTooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit")
        held = 0
        try:
            small = declared is not None and declared <= SMALL_BODY
            if declared and not small:
                self._take(declared)
                held = declared
            chunks: list[bytes] = []
            size = 0
            stream = request.stream().__aiter__()
            while True:
                try:
                    chunk = await asyncio.wait_for(stream.__anext__(), self.idle_seconds)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise BodyTimeout(f"no body byte for {self.idle_seconds:g} s after {size} bytes") from None
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"body exceeds the {limit}-byte limit")
                if size > held and not small:  # chunked (h11 refuses more than declared)
                    self._take(size - held)
                    held = size
                if chunk:
                    chunks.append(chunk)
            body = b"".join(chunks)
            del chunks
            yield body
        finally:
            self.reserved -= held


def _length(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise NodeBadRequestError("malformed Content-Length")
    return value
