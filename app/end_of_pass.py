"""Work deferred to the end of the current pass of the event loop: the access log's lines
and the metric updates of the requests that finish in one pass are written together."""

import asyncio
from collections.abc import Callable


class EndOfPass:
    """`request()` makes `flush` run once at the end of this pass of the running event loop
    (`call_soon`), however often it is asked for during the pass; with no running loop
    (start-up, tests, threads) it runs at once."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._scheduled = False

    def request(self) -> None:
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: nothing to batch with
            self._flush()
            return
        self._scheduled = True
        loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self._flush()
