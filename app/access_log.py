"""The access log's one line per request, written without the logging machinery's
per-record cost where that changes nothing.

A gunicorn worker's access log (gunicorn.conf.py `post_fork`) is a StreamHandler or
FileHandler whose format is the bare message: making a LogRecord, walking the handlers
and formatting it cost more than the line itself. When every handler of
`palpite.access` is exactly such a handler (no filters, level at most INFO), the line
goes straight to each handler's stream, under the handler's lock: the bytes a
`log.info(line)` would write. Any other set-up (a syslog handler, another format,
pytest's capture handler, a filter) goes through logging.

Inside an event loop the lines of the requests that finish within `flush_seconds` of
each other (settings.record_flush_seconds, PALPITE_RECORD_FLUSH_SECONDS) are
written together, in one write: when the batch would pass PIPE_BUF bytes, else
`flush_seconds` after its first line (with 0, at the end of the loop's pass). A write per
loop pass cost about 14 µs per request at 8,000 requests/s, where most passes answer one
request (docs/benchmarks.md, session 17). Every line stays whole, since a batch is at
most PIPE_BUF bytes, which a pipe (stdout to journald) and an O_APPEND file (gunicorn's
access file, shared by the workers) take in one piece without interleaving another
worker's writes. A worker that stops writes what it holds (the app's lifespan shutdown
calls `flush_all`); one killed hard loses at most its last `flush_seconds` of lines.
"""

import logging
import weakref

from app.end_of_pass import EndOfPass

# POSIX: a pipe write of at most this many bytes is never interleaved with another.
PIPE_BUF = 4096
_open_logs: "weakref.WeakSet[AccessLog]" = weakref.WeakSet()


def flush_all() -> None:
    """Write every access log's pending lines (when the server stops)."""
    for access in list(_open_logs):
        access.flush()


_PLAIN_TYPES = (logging.StreamHandler, logging.FileHandler)


def _writes_plain_lines(handler: logging.Handler) -> bool:
    formatter = handler.formatter
    return (
        type(handler) in _PLAIN_TYPES
        and not handler.filters
        and handler.level <= logging.INFO
        and formatter is not None
        and type(formatter) is logging.Formatter
        and isinstance(formatter._style, logging.PercentStyle)
        and formatter._fmt == "%(message)s"
        and handler.terminator == "\n"
    )


class AccessLog:
    """`write(line)` logs one access line at INFO to `logger`; a direct line waits at most
    `flush_seconds` (0: to the end of the loop's pass) for others to share its write."""

    def __init__(self, logger: logging.Logger, flush_seconds: float = 0.0) -> None:
        self.logger = logger
        self._seen: tuple[logging.Handler, ...] | None = None
        self._direct: tuple[logging.StreamHandler, ...] | None = None
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._end_of_pass = EndOfPass(self.flush, delay=flush_seconds)
        _open_logs.add(self)

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, line: str) -> None:
        direct = self._plan()
        if direct is None:
            self.flush()  # keep the order of earlier lines
            self.logger.info(line)
            return
        text = line + "\n"
        size = len(text) if text.isascii() else len(text.encode())
        if self._pending_bytes + size > PIPE_BUF:
            self.flush()
        self._pending.append(text)
        self._pending_bytes += size
        self._end_of_pass.request()

    def flush(self) -> None:
        """Write the pending lines, in one write per handler."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        for handler in self._direct or ():
            handler.acquire()
            try:
                stream = handler.stream
                stream.write(text)
                stream.flush()
            except Exception:  # as StreamHandler.emit: report, never fail the request
                handler.handleError(logging.makeLogRecord({"msg": text}))
            finally:
                handler.release()

    def _plan(self) -> tuple[logging.StreamHandler, ...] | None:
        """The handlers to write to directly, or None for logging; recomputed when the
        logger's handlers change (tests and gunicorn's post_fork set them)."""
        logger = self.logger
        handlers = tuple(logger.handlers)
        if handlers != self._seen:
            self.flush()  # to the handlers they were meant for
            self._seen = handlers
            plain = (
                handlers
                and not logger.propagate
                and not logger.filters
                and all(_writes_plain_lines(h) for h in handlers)
                and all(getattr(h, "stream", None) is not None for h in handlers)
            )
            self._direct = handlers if plain else None  # type: ignore[assignment]
        return self._direct
