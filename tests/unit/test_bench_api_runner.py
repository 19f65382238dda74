"""bench_api_runner.pacing: what bench/wrk_post.lua is told for a paced wrk run, and what
the run records of it."""

from bench.bench_api_runner import pacing


def test_the_script_gets_the_whole_rate_and_the_thread_count() -> None:
    env, fields = pacing(26_734.25, threads=2)
    assert env == {"WRK_RATE": "26734.250", "WRK_THREADS": "2"}
    assert fields["requested_rps"] == 26_734.25


def test_each_thread_sends_on_its_share_of_the_rate() -> None:
    """2 threads at 1,000 req/s: each thread has a send slot every 2 ms (not rounded to a
    whole millisecond, and whatever the connection count)."""
    _, fields = pacing(1_000, threads=2)
    assert fields["wrk_thread_interval_ms"] == 2.0
    _, fields = pacing(1_500, threads=2)
    assert round(fields["wrk_thread_interval_ms"], 6) == 1.333333
