"""uvicorn_worker.UvicornWorker with a drain phase, so a HUP model swap drops no request.

A stock uvicorn worker told to stop (gunicorn sends SIGTERM to old workers on HUP)
closes every idle keep-alive connection at once. A client or proxy that is just sending
its next request on such a connection gets a reset instead of an answer: with steady
traffic that race is hit on nearly every swap. This worker, on SIGTERM:

1. stops accepting connections (the new workers take those);
2. for up to PALPITE_DRAIN_SECONDS (default 5) keeps serving the connections it has,
   answering each request with `Connection: close`, so every client learns from a
   response, not from a reset, to reconnect (to a new worker);
3. then shuts down as uvicorn does (closing what is still idle, finishing what runs).

The drain ends early once no request has come for QUIET_SECONDS: a worker nobody sends
to (a host already out of the load balancer, restarted or rebooted by a rolling change)
would otherwise wait the whole drain on its proxy's idle keep-alive connections. Only a
connection idle for the whole drain (or the quiet period) can still meet the race, as
with any keep-alive timeout. This module is imported by the gunicorn master (worker_class), so
it imports nothing from the app but app.one_write (which imports nothing from it either).
"""

import asyncio
import os
import socket
import sys

from gunicorn.arbiter import Arbiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from app.one_write import OneWriteHttpToolsProtocol

# Under any traffic a request comes far more often than this; a second of silence means
# nobody is sending to this worker any more.
QUIET_SECONDS = 1.0


class CloseWhenDraining:
    """ASGI wrapper: once `draining`, every response says `Connection: close`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.draining = False
        self.last_request = 0.0  # loop time of the last request seen while draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.draining or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.last_request = asyncio.get_running_loop().time()

        async def send_with_close(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_close)


class DrainingServer(Server):
    def __init__(
        self,
        config: Config,
        gate: CloseWhenDraining,
        drain_seconds: float,
        quiet_seconds: float = QUIET_SECONDS,
    ) -> None:
        super().__init__(config=config)
        self.gate = gate
        self.drain_seconds = drain_seconds
        self.quiet_seconds = quiet_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        loop = asyncio.get_running_loop()
        self.gate.last_request = loop.time()
        self.gate.draining = True
        deadline = loop.time() + self.drain_seconds
        while (
            self.server_state.connections
            and loop.time() < deadline
            and loop.time() - self.gate.last_request < self.quiet_seconds
        ):
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)


class DrainingUvicornWorker(UvicornWorker):
    async def _serve(self) -> None:
        gate = CloseWhenDraining(self.wsgi)
        self.config.app = gate
        # One write per response, not two (app/one_write.py); read when the server starts.
        self.config.http = OneWriteHttpToolsProtocol
        drain = float(os.environ.get("PALPITE_DRAIN_SECONDS", "5"))
        server = DrainingServer(self.config, gate, drain)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
