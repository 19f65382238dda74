"""The access line goes straight to a plain handler's stream (gunicorn's access log) and
through logging otherwise; either way one complete line per request, the same bytes."""

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest

from app.access_log import PIPE_BUF, AccessLog, flush_all


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("palpite.test-access")
    log.propagate, log.handlers = False, []
    log.setLevel(logging.INFO)
    yield log
    log.handlers = []


def plain(stream: io.StringIO) -> logging.StreamHandler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))  # gunicorn's access_fmt
    return handler


def test_plain_handlers_are_written_directly_with_the_same_bytes(logger, monkeypatch) -> None:
    direct, through_logging = io.StringIO(), io.StringIO()
    logger.handlers = [plain(direct)]
    access = AccessLog(logger)
    calls: list[object] = []
    monkeypatch.setattr(logger, "info", lambda *a: calls.append(a))
    access.write('{"a":1}')
    access.write('{"b":2}')
    assert calls == []  # no LogRecord made
    reference = logging.getLogger("palpite.test-access-ref")
    reference.propagate, reference.handlers = False, [plain(through_logging)]
    reference.setLevel(logging.INFO)
    reference.info('{"a":1}')
    reference.info('{"b":2}')
    assert direct.getvalue() == through_logging.getvalue() == '{"a":1}\n{"b":2}\n'


def test_a_file_handler_gets_each_line_flushed(logger, tmp_path) -> None:
    handler = logging.FileHandler(tmp_path / "access.log")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [handler]
    AccessLog(logger).write("one line")
    assert (tmp_path / "access.log").read_text() == "one line\n"  # before any close
    handler.close()


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.setFormatter(logging.Formatter("%(asctime)s %(message)s")),
        lambda h: h.addFilter(lambda record: True),
        lambda h: h.setLevel(logging.WARNING),
    ],
    ids=["format", "filter", "level"],
)
def test_anything_else_goes_through_logging(logger, change, monkeypatch) -> None:
    handler = plain(io.StringIO())
    change(handler)
    logger.handlers = [handler]
    calls: list[tuple] = []
    monkeypatch.setattr(logger, "info", lambda *a: calls.append(a))
    AccessLog(logger).write("x")
    assert calls == [("x",)]


def test_handlers_set_later_are_noticed(logger) -> None:
    access = AccessLog(logger)
    logger.handlers = []
    access.write("lost: no handler yet")
    stream = io.StringIO()
    logger.handlers = [plain(stream)]
    access.write("kept")
    assert stream.getvalue() == "kept\n"
    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(capture)
    access.write("both")
    assert stream.getvalue() == "kept\nboth\n"
    assert [r.getMessage() for r in records] == ["both"]


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_lines_of_one_loop_pass_are_one_write_of_at_most_pipe_buf(logger) -> None:
    stream = CountingStream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [handler]
    access = AccessLog(logger)
    lines = [f'{{"n":{i},"pad":"{"x" * 290}","é":"ü"}}' for i in range(40)]

    async def requests() -> None:
        for line in lines:
            access.write(line)
        assert stream.writes == [] or all(len(w.encode()) <= PIPE_BUF for w in stream.writes)
        await asyncio.sleep(0)  # the loop's pass ends: the rest is flushed

    asyncio.run(requests())
    assert stream.getvalue() == "".join(line + "\n" for line in lines)
    assert 1 < len(stream.writes) < len(lines)  # batched, and split at PIPE_BUF
    for chunk in stream.writes:
        assert len(chunk.encode()) <= PIPE_BUF and chunk.endswith("\n")


def test_lines_within_flush_seconds_share_one_write(logger) -> None:
    stream = CountingStream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [handler]
    access = AccessLog(logger, flush_seconds=0.05)

    async def requests() -> None:
        for n in range(3):  # three passes of the loop, one request each
            access.write(f'{{"n":{n}}}')
            await asyncio.sleep(0)
        assert stream.writes == []  # still waiting for company
        await asyncio.sleep(0.1)
        assert stream.writes == ['{"n":0}\n{"n":1}\n{"n":2}\n']
        access.write('{"n":3}')  # a new batch, its own timer
        await asyncio.sleep(0.1)

    asyncio.run(requests())
    assert stream.writes == ['{"n":0}\n{"n":1}\n{"n":2}\n', '{"n":3}\n']


def test_lines_a_stopped_loop_left_are_written_at_exit_or_by_the_next_loop(logger) -> None:
    stream = CountingStream()
    logger.handlers = [plain(stream)]
    access = AccessLog(logger, flush_seconds=0.05)

    async def one(line: str, then: float) -> None:
        access.write(line)
        await asyncio.sleep(then)

    asyncio.run(one("a", 0))  # the loop ends before its flush was due
    assert stream.getvalue() == ""
    asyncio.run(one("b", 0.1))  # a new loop schedules its own flush
    assert stream.writes == ["a\nb\n"]
    asyncio.run(one("c", 0))
    flush_all()  # what the app's lifespan shutdown does
    assert stream.writes == ["a\nb\n", "c\n"]


def test_a_line_through_logging_keeps_its_place_after_pending_ones(logger) -> None:
    stream = io.StringIO()
    logger.handlers = [plain(stream)]
    access = AccessLog(logger)

    async def requests() -> None:
        access.write("first")
        logger.handlers = [*logger.handlers, logging.NullHandler()]  # not plain any more
        access.write("second")

    asyncio.run(requests())
    assert stream.getvalue() == "first\nsecond\n"
