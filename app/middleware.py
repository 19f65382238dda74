"""One pure-ASGI middleware for what every request needs: request id, body limit,
metrics and the JSON access log. Pure ASGI (not BaseHTTPMiddleware) keeps it to a few
microseconds per request, which matters next to a sub-millisecond prediction.
"""

import logging
import os
import random
import re
import time
from functools import lru_cache

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access_log import AccessLog
from app.asgi import client_host, content_length, send_error
from app.errors import body_too_large
from app.metrics import Metrics

access_log = logging.getLogger("palpite.access")

REQUEST_ID_HEADER = b"x-request-id"
MODEL_VERSION_HEADER = b"x-model-version"
# Accept the proxy's id (nginx's $request_id is 32 hex digits) if it is harmless to log.
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
# os.getpid() is a system call each time; the access line asks on every request.
_pid = os.getpid()


def _note_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_note_pid)


class Bookkeeping:
    """What every request needs beside its answer: its id, the headers every answer
    carries, the body limit, and at its end its metrics and access line. One per app,
    shared by ServiceMiddleware and the fast lane (app.fast_lane), so both keep the same
    records through the same access log."""

    def __init__(
        self,
        metrics: Metrics,
        max_body_bytes: int,
        model_version: str | None,
        *,
        flush_seconds: float,
    ) -> None:
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.model_version = model_version
        self.access = AccessLog(access_log, flush_seconds)
        # Every answer says which model this worker serves, errors included.
        self.extra_headers = (
            [(MODEL_VERSION_HEADER, model_version.encode())] if model_version else []
        )

    def start(self, scope: Scope) -> bytes:
        """The request's id (the client's, if harmless to log), also in scope["state"]."""
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        return request_id

    def headers(self, request_id: bytes) -> list[tuple[bytes, bytes]]:
        """What follows an answer's own headers."""
        return [(REQUEST_ID_HEADER, request_id), *self.extra_headers]

    def record(
        self, scope: Scope, status: int, elapsed: float, request_id: bytes, sent: int
    ) -> None:
        """The request's metrics and access line. The route template is the scope's
        `route` (set by the router, DirectRoutes or the fast lane), `<unmatched>` without
        one."""
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        method = scope["method"]
        self.metrics.record_request(template, method, status, elapsed)
        if self.access.enabled():
            self.access.write(
                orjson.dumps(
                    {
                        "time": _timestamp(),
                        "request_id": request_id.decode(),
                        "method": method,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "bytes": sent,
                        "client": client_host(scope),
                        "pid": _pid,
                        "model_version": self.model_version,
                    }
                ).decode()
            )


class ServiceMiddleware:
    """Wraps the whole app, the direct endpoints (app.asgi.DirectRoutes) included, with
    the Bookkeeping of every request."""

    def __init__(self, app: ASGIApp, book: Bookkeeping) -> None:
        self.app = app
        self.book = book

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        book = self.book
        request_id = book.start(scope)
        extra_headers = book.headers(request_id)
        status = 500
        sent = 0
        received = 0
        limit = book.max_body

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read: the app's ApiError handler
                    # (or the direct endpoint) answers 413 before any response started.
                    raise body_too_large(limit)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            declared = content_length(scope)
            if declared is not None and declared > limit:
                # Refuse before reading a byte of it.
                await send_error(send_with_id, body_too_large(limit), close=True)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            book.record(scope, status, time.perf_counter() - start, request_id, sent)


@lru_cache(maxsize=2)
def _second(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def _timestamp() -> str:
    """UTC ISO 8601 with milliseconds, as datetime's isoformat; the formatted second is
    reused by every request within it."""
    now = time.time()
    second = int(now)
    return f"{_second(second)}.{int((now - second) * 1000):03d}+00:00"


_bits = random.getrandbits


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SAFE_ID.match(value):
            return value
    # 128 random bits, as a uuid4's, from the random module: an id needs to be unique, not
    # secret, and os.urandom is a system call per request. The module reseeds itself in
    # every forked worker, so two workers never share a sequence.
    return b"%032x" % _bits(128)
