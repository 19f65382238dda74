"""The stopping worker's drain (app/worker.py), on a real uvicorn server over loopback:
a request during the drain is answered with `Connection: close`, and the drain ends once
nobody has sent for the quiet period instead of waiting its whole length on idle
keep-alive connections."""

from __future__ import annotations

import asyncio
import socket

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config

from app.worker import CloseWhenDraining, DrainingServer


async def constant(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(2)
    return head.lower()


async def drain_with(requests_during_drain: int, drain_seconds: float) -> tuple[float, list[bytes]]:
    """Serve, open a keep-alive connection, stop the server; send requests on that
    connection while it drains. Returns how long the shutdown took and the answers' heads."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    gate = CloseWhenDraining(constant)
    config = Config(app=gate, lifespan="off", log_level="warning", http="h11", loop="asyncio")
    server = DrainingServer(config, gate, drain_seconds, quiet_seconds=0.5)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    heads = [await read_response(reader)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    server.should_exit = True
    for _ in range(requests_during_drain):
        await asyncio.sleep(0.2)
        writer.write(REQUEST)
        heads.append(await read_response(reader))
    await asyncio.wait_for(serving, timeout=drain_seconds + 10)
    writer.close()
    return loop.time() - started, heads


def test_an_idle_keep_alive_connection_does_not_hold_the_drain_to_its_end() -> None:
    seconds, heads = asyncio.run(drain_with(requests_during_drain=0, drain_seconds=20))
    assert b"connection: close" not in heads[0]
    assert seconds < 10, f"the drain waited {seconds:.1f} s on an idle connection"


def test_a_request_during_the_drain_is_answered_and_told_to_close() -> None:
    seconds, heads = asyncio.run(drain_with(requests_during_drain=1, drain_seconds=20))
    assert b"200 ok" in heads[1]
    assert b"connection: close" in heads[1]
    assert seconds < 10
