"""Progress lines on stderr, so stdout stays clean for results (e.g. `evaluate --json`)."""

import contextlib
import sys
import time
from collections.abc import Iterator


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Print `message…` and, once the block is done, how long it took."""
    print(f"{message}…", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        print(" failed", file=sys.stderr, flush=True)
        raise
    print(f" {time.perf_counter() - start:.2f}s", file=sys.stderr, flush=True)
