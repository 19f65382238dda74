"""The hot POSTs ahead of FastAPI and Starlette's whole stack.

The direct endpoints (app.asgi) skip the router; under load what wraps the router still
cost about as much again: FastAPI's and Starlette's `__call__`, ServerErrorMiddleware,
FastAPI's exception-telemetry and body-limit wrappers, ServiceMiddleware's two closures
and DirectRoutes. FastLane does what those layers do for the direct endpoints' (method,
path) pairs in one coroutine, with the same pieces: ServiceMiddleware's Bookkeeping
(request id, headers, body limit, metrics, access line), the endpoint's own `respond`
(so the one prediction boundary, app.predict), and for an unexpected error the app's own
500 handler, as ServerErrorMiddleware calls it. Every other request goes through the
app's stack unchanged, and the routes stay declared there (OpenAPI, and the same
answers when the lane is off).
"""

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.asgi import DirectEndpoint, Reply, RouteKey, content_length, error_reply, json_headers
from app.errors import body_too_large
from app.middleware import Bookkeeping

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class FastLane:
    """Answers the direct endpoints' requests as the app's stack would, in one call."""

    def __init__(
        self,
        book: Bookkeeping,
        routes: Mapping[RouteKey, DirectEndpoint[Any]],
        unexpected: ErrorHandler,
    ) -> None:
        self.book = book
        self.routes = dict(routes)
        self.unexpected = unexpected

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, endpoint: DirectEndpoint[Any]
    ) -> None:
        started = False
        try:
            # ServiceMiddleware's part: the same records, in the same order.
            start = time.perf_counter()
            book = self.book
            request_id = book.start(scope)
            status, sent = 500, 0
            try:
                reply = await self._reply(scope, receive, endpoint)
                if reply is not None:
                    status, body, close = reply
                    headers = json_headers(len(body), close=close)
                    headers += book.headers(request_id)
                    started = True
                    await send(
                        {"type": "http.response.start", "status": status, "headers": headers}
                    )
                    sent = len(body)
                    await send({"type": "http.response.body", "body": body})
            finally:
                book.record(scope, status, time.perf_counter() - start, request_id, sent)
        except Exception as exc:
            # ServerErrorMiddleware's part: the app's 500 handler answers (to the bare
            # `send`, as there) unless an answer started, and the error goes on up to
            # the server, which closes the connection.
            if not started:
                response = await self.unexpected(Request(scope), exc)
                await response(scope, receive, send)
            raise

    async def _reply(
        self, scope: Scope, receive: Receive, endpoint: DirectEndpoint[Any]
    ) -> Reply | None:
        limit = self.book.max_body
        declared = content_length(scope)
        if declared is not None and declared > limit:
            # Refused before a byte of it is read, as ServiceMiddleware does.
            return error_reply(body_too_large(limit), close=True)
        scope["route"] = endpoint  # as DirectRoutes: the template of the records
        return await endpoint.respond(scope, receive, limit)


class FastLaneApp(FastAPI):
    """FastAPI with a FastLane (set after the routes, as `fast_lane`) in front of its
    stack; None sends every request through the stack."""

    fast_lane: FastLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.fast_lane
        if lane is not None and scope["type"] == "http" and not self.root_path:
            endpoint = lane.routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                scope["app"] = self  # as Starlette does, for anything that reads it
                await lane(scope, receive, send, endpoint)
                return
        await super().__call__(scope, receive, send)
