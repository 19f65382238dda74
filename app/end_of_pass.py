"""Work deferred to the end of the current pass of the event loop, or a little later: the
metric updates of the requests that finish in one pass, and the access lines of the
requests that finish within a few milliseconds, are written together."""

import asyncio
from collections.abc import Callable


class EndOfPass:
    """`request()` makes `flush` run once, however often it is asked for meanwhile: at the
    end of this pass of the running event loop (`call_soon`), or `delay` seconds later
    (`call_later`) to gather several passes into one flush. With no running loop
    (start-up, tests, threads) it runs at once."""

    def __init__(self, flush: Callable[[], None], delay: float = 0.0) -> None:
        self._flush = flush
        self._delay = delay
        # The loop a flush is scheduled on: a loop closed before its flush ran (a test
        # client's) leaves this set, and the next loop schedules its own.
        self._scheduled_on: asyncio.AbstractEventLoop | None = None

    def request(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: nothing to batch with
            self._flush()
            return
        if self._scheduled_on is loop:
            return
        self._scheduled_on = loop
        if self._delay > 0:
            loop.call_later(self._delay, self._run)
        else:
            loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled_on = None
        self._flush()
