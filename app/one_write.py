"""uvicorn's httptools protocol with one `write` per response where it made two.

uvicorn writes a response's status line and headers when the app sends
`http.response.start`, and its body when the app sends `http.response.body`: two system
calls, each a TCP send. Sampled under load they were about 40% of a worker's time, bare
ASGI callable or palpite alike (docs/benchmarks.md, session 18). Here the protocol's
transport holds what is written during one pass of the event loop and writes it together
at the end of that pass: a response's head and body, and the answers to pipelined
requests, go out in one call. Nothing waits longer than the pass it was written in; a
close writes what is held first; a pass that writes more than HOLD_LIMIT bytes writes at
once, so the real transport's flow control (pause_writing) still sees a large or
streamed body as it is written.

The gunicorn master imports this module (through app.worker), so it imports nothing
from the app.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A response larger than this is written as it comes; smaller ones share their write.
HOLD_LIMIT = 64 * 1024


class PassWriteTransport:
    """A transport's stand-in that joins the writes of one event-loop pass. Everything
    but write, close, abort and write_eof goes to the real transport."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > HOLD_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Write what is held, in one call."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        self._held_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held.clear()
        self._held_bytes = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol writing through a PassWriteTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(PassWriteTransport(transport, self.loop))  # type: ignore[arg-type]
