"""app/one_write.py: the writes of one event-loop pass reach the real transport in one
call, in order; nothing waits past its pass; close writes what is held first; abort drops
it; a large write does not wait, so flow control sees it."""

import asyncio

from app.one_write import HOLD_LIMIT, OneWriteHttpToolsProtocol, PassWriteTransport


class RealTransport:
    """Records what the stand-in passes on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        assert not self.closing
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append(("write_eof", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_a_pass_of_writes_is_one_write_at_its_end() -> None:
    real = RealTransport()

    async def respond() -> None:
        held = PassWriteTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        held.write(b"{}")
        held.write(b"")  # nothing to send: no call
        assert real.calls == []  # held until the pass ends
        await asyncio.sleep(0)
        assert real.calls == [("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")]
        held.write(b"next")  # the next pass: its own write
        await asyncio.sleep(0)

    asyncio.run(respond())
    assert real.calls[1:] == [("write", b"next")]


def test_close_and_write_eof_write_what_is_held_first_abort_drops_it() -> None:
    real = RealTransport()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        held = PassWriteTransport(real, loop)  # type: ignore[arg-type]
        held.write(b"head")
        held.write(b"body")
        held.write_eof()
        held.write(b"last")
        held.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing, writes nothing
        assert real.calls == [
            ("write", b"headbody"),
            ("write_eof", b""),
            ("write", b"last"),
            ("close", b""),
        ]
        other = RealTransport()
        dropped = PassWriteTransport(other, loop)  # type: ignore[arg-type]
        dropped.write(b"never")
        dropped.abort()
        await asyncio.sleep(0)
        assert other.calls == [("abort", b"")]

    asyncio.run(run())


def test_a_large_write_goes_at_once_and_a_closed_transport_gets_nothing() -> None:
    real = RealTransport()

    async def run() -> None:
        held = PassWriteTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"head")
        held.write(b"x" * HOLD_LIMIT)  # past the limit: written now, with what was held
        assert real.calls == [("write", b"head" + b"x" * HOLD_LIMIT)]
        held.write(b"late")
        real.closing = True  # the peer went away before the pass ended
        await asyncio.sleep(0)
        assert held.get_extra_info("peername") == "info:peername"  # the rest is the real one's

    asyncio.run(run())
    assert len(real.calls) == 1


async def _json_app(scope, receive, send) -> None:
    body = b'{"path":"' + scope["path"].encode() + b'"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_a_server_on_the_protocol_answers_pipelined_get_head_and_close() -> None:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    async def run() -> bytes:
        config = Config(app=_json_app, http=OneWriteHttpToolsProtocol, lifespan="off")
        config.load()
        state = ServerState()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: OneWriteHttpToolsProtocol(config, state, {}), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"
            b"HEAD /b HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /c HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        data = await asyncio.wait_for(reader.read(), 10)  # to the server's close
        writer.close()
        server.close()
        await server.wait_closed()
        return data

    data = asyncio.run(run())
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"200 OK"] * 3
    assert answers[0].endswith(b'\r\n\r\n{"path":"/a"}')
    assert answers[1].endswith(b"\r\n\r\n")  # HEAD: the head alone
    assert answers[2].endswith(b'\r\n\r\n{"path":"/c"}') and b"connection: close" in answers[2]
