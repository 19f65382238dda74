"""bench_api_runner.pacing: what bench/wrk_post.lua is told for a paced wrk run, and what
the run records of it; wrk_summary: what it prints back (both benches read it)."""

from bench.bench_api_runner import pacing, wrk_summary


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


def test_the_summary_line_is_found_among_wrk_s_own_output() -> None:
    out = (
        "Running 2s test @ http://127.0.0.1:18600/predict\n"
        'WRK_JSON {"requests": 5000, "duration_us": 2000000, "socket_errors": 0,'
        ' "non2xx": 0, "p50_us": 900, "p90_us": 1500, "p99_us": 3000, "max_us": 9000}\n'
    )
    summary = wrk_summary(out)
    assert summary["rps"] == 2500.0
    assert summary["p99_us"] == 3000 and summary["requests"] == 5000
