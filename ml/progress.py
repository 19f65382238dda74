"""Progress lines on stderr, so stdout stays clean for results (e.g. `evaluate --json`)."""

import contextlib
import sys
import time
from collections.abc import Iterator

_open_step = False  # a step's line is waiting for its time


def info(message: str) -> None:
    global _open_step
    if _open_step:  # a note inside a step goes on its own line
        print(file=sys.stderr)
        _open_step = False
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Print `message…` and, once the block is done, how long it took."""
    global _open_step
    print(f"{message}…", end="", file=sys.stderr, flush=True)
    _open_step = True
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        _finish(message, "failed")
        raise
    _finish(message, f"{time.perf_counter() - start:.2f}s")


def _finish(message: str, outcome: str) -> None:
    global _open_step
    if _open_step:
        print(f" {outcome}", file=sys.stderr, flush=True)
    else:
        print(f"{message}: {outcome}", file=sys.stderr, flush=True)
    _open_step = False
