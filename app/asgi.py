"""Raw ASGI, for the code that runs outside Starlette's Request/Response objects: header
lookup, reading a body, sending a JSON answer or an error, and the direct endpoints that
answer a POST without going through the router.

Why direct endpoints: Starlette's exception middleware, router and Request/Response
objects together cost about as much as a single prediction. DirectRoutes sits inside
ServiceMiddleware (so request ids, the body limit, metrics and the access log still
apply) and hands the few hot (method, path) pairs create_app registers to their
endpoint; every other request goes on to the app.
"""

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import ApiError, body_too_large

RouteKey = tuple[str, str]  # (method, path)
# An answer: status, JSON body, and whether the connection closes after it.
Reply = tuple[int, bytes, bool]


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a (lower-case) request header, or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def content_type(scope: Scope) -> str:
    return (header(scope, b"content-type") or b"").decode("latin-1")


def content_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def client_host(scope: Scope) -> str | None:
    client: Any = scope.get("client")
    return client[0] if client else None


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, or None if the client went away first. With `limit`,
    413 body_too_large as soon as more than that has arrived (without it, the caller's
    receive enforces the limit: app.middleware)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body = message.get("body", b"")
    if limit is not None and len(body) > limit:
        raise body_too_large(limit)
    if not message.get("more_body", False):
        return body  # the usual case: one message
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def json_headers(length: int, *, close: bool = False) -> list[tuple[bytes, bytes]]:
    """A JSON answer's headers. `close` when the request body was not read to its end:
    the rest of it would otherwise be parsed as the next request."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
    if close:
        headers.append((b"connection", b"close"))
    return headers


def error_reply(exc: ApiError, *, close: bool) -> Reply:
    return exc.status, orjson.dumps(exc.body()), close


async def send_reply(send: Send, reply: Reply) -> None:
    """A JSON answer in raw ASGI."""
    status, body, close = reply
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": json_headers(len(body), close=close),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, exc: ApiError, *, close: bool) -> None:
    """The error answer in raw ASGI, for code that runs outside the app's exception
    handlers (see json_headers for `close`)."""
    await send_reply(send, error_reply(exc, close=close))


class DirectEndpoint[Prepared]:
    """A JSON POST answered in raw ASGI, with the same checks and answers as its
    documented route. `prepare` checks the headers before a byte of the body is read,
    `answer` turns the body into the JSON answer, `error` gives an ApiError the shape
    this endpoint's protocol answers in. An unexpected error still reaches the app's
    outermost 500 handler."""

    path: str  # the route template the metrics and the access log use

    def prepare(self, scope: Scope) -> Prepared:
        raise NotImplementedError

    def answer(self, prepared: Prepared, body: bytes) -> bytes:
        raise NotImplementedError

    def error(self, exc: ApiError) -> ApiError:
        return exc

    async def respond(
        self, scope: Scope, receive: Receive, limit: int | None = None
    ) -> Reply | None:
        """The answer (status, body, close), or None if the client went away before its
        body arrived. `limit`: as read_body's."""
        body = None
        try:
            prepared = self.prepare(scope)
            body = await read_body(receive, limit)
            if body is None:
                return None  # nobody to answer
            return 200, self.answer(prepared, body), False
        except ApiError as exc:
            return error_reply(self.error(exc), close=body is None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reply = await self.respond(scope, receive)
        if reply is not None:
            await send_reply(send, reply)


class DirectRoutes:
    """Hands each registered (method, path) to its endpoint in place of the app's
    router; every other request (and every non-HTTP scope) goes on to the app. An
    endpoint carries its route template as `path`, as a route does, and is set as the
    scope's route for the metrics and the access log."""

    def __init__(self, app: ASGIApp, routes: Mapping[RouteKey, DirectEndpoint[Any]]) -> None:
        self.app = app
        self.routes: dict[RouteKey, Callable[[Scope, Receive, Send], Any]] = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                scope["route"] = endpoint
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)
