"""The stdio transport of ``milestoned mcp``: every request read is answered before the server ends.

The SDK's loop ends the moment stdin closes and cancels the requests still being served, while
the engine verb behind a tool, once started, runs to its end: a client that sends a
``tools/call`` and closes its end at once (a script, an agent shutting down) would have its
claim made and never hear of it.  So between the SDK's stdio streams and its loop sit two thin
wrappers: the reader notes each request and holds the end of input back until every request
read has been answered (or cancelled by the client), the writer notes each answer written.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse, RequestId

if TYPE_CHECKING:  # the SDK's names for what its streams do (mcp>=2.3,<3: pinned in pyproject.toml)
    from mcp.shared._stream_protocols import ReadStream, WriteStream

_Self = TypeVar("_Self", bound="_Wrapping")

# A request still unanswered this long after stdin closed is given up: the server must end some time.
DRAIN_TIMEOUT = 120.0  # beyond the engine lock's 60 s and a remote's 30 s


class Unanswered:
    """The ids of the requests read and not answered yet."""

    def __init__(self) -> None:
        self.ids: set[RequestId] = set()
        self._changed = anyio.Event()

    def read(self, request_id: RequestId) -> None:
        self.ids.add(request_id)

    def settled(self, request_id: object) -> None:
        """An answer went out for ``request_id``, or the client cancelled it (its id as the client gave it)."""
        self.ids.discard(request_id)
        self._changed.set()
        self._changed = anyio.Event()

    async def none_left(self) -> None:
        with anyio.move_on_after(DRAIN_TIMEOUT):
            while self.ids:
                await self._changed.wait()


class _Wrapping:
    """A stream around one of the SDK's: closing it closes that one, and it is its own context."""

    _inner: Any  # each subclass says which of the SDK's streams

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


class Reader(_Wrapping):
    """The SDK's read stream, noting requests, its end held back until each is answered."""

    _inner: ReadStream[SessionMessage | Exception]

    def __init__(self, inner: ReadStream[SessionMessage | Exception], unanswered: Unanswered) -> None:
        self._inner = inner
        self._unanswered = unanswered

    @property
    def last_context(self) -> Any:
        """The sender's context the SDK's stream carries with each message, passed along."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item = await self._inner.receive()
        except anyio.EndOfStream:
            await self._unanswered.none_left()
            raise
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCRequest):
            self._unanswered.read(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            self._unanswered.settled((message.params or {}).get("requestId"))  # never answered, by the spec
        return item

    def __aiter__(self) -> Reader:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class Writer(_Wrapping):
    """The SDK's write stream, noting the answers that went out."""

    _inner: WriteStream[SessionMessage]

    def __init__(self, inner: WriteStream[SessionMessage], unanswered: Unanswered) -> None:
        self._inner = inner
        self._unanswered = unanswered

    async def send(self, item: SessionMessage, /) -> None:
        await self._inner.send(item)
        if isinstance(item.message, (JSONRPCResponse, JSONRPCError)):
            self._unanswered.settled(item.message.id)


async def serve(server: MCPServer) -> None:
    """``server`` over stdin and stdout (the SDK's own stdio streams), until stdin closes and every
    request read has its answer written."""
    async with stdio_server() as (read_stream, write_stream):
        unanswered = Unanswered()
        # MCPServer.run_stdio_async, with the two wrappers between: its loop is the low-level server's
        lowlevel = server._lowlevel_server
        await lowlevel.run(Reader(read_stream, unanswered), Writer(write_stream, unanswered),
                           lowlevel.create_initialization_options())
