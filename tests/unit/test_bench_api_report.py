"""bench_api.py's p99 target row (issue 21): at half the bare maximum when the model held
that rate, else, said so, at 80% of the model's own maximum. Results dicts in, rows out."""

from typing import Any

from bench.bench_api_report import p99_target_lines


def paced(rps: float, requested: float, p99_ms: float) -> dict[str, Any]:
    return {"rps": rps, "requested_rps": requested, "p99_us": p99_ms * 1000}


def results(app_at_half_rps: float) -> dict[str, Any]:
    """One round: the bare max 40,000 (half: 20,000), the app's own 80% 16,000."""
    return {
        "app/paced-bare": paced(app_at_half_rps, 20_000, 3.0),
        "bare/paced": paced(19_900, 20_000, 1.0),
        "app/paced-own80": paced(15_800, 16_000, 1.8),
        "bare/paced-app80": paced(15_900, 16_000, 1.2),
    }


def test_sustained_half_the_bare_max_is_the_target() -> None:
    lines = p99_target_lines(results(app_at_half_rps=19_500), "app", "football")
    assert lines == [
        "| football: p99 ms at half the bare max, sustained (requested ~20,000 req/s;"
        " achieved 19,500 (98%), bare 19,900) | 3.00 | 1.00 | 3.00x | <= 2x |"
    ]


def test_not_sustained_falls_back_to_80_percent_of_its_own_max() -> None:
    lines = p99_target_lines(results(app_at_half_rps=14_000), "app", "football")
    assert lines[0].startswith(
        "| football: half the bare max not sustained (requested ~20,000 req/s,"
        " achieved 14,000: 70%;"
    )
    assert lines[1] == (
        "| football: p99 ms at 80% of its own max (requested ~16,000 req/s;"
        " achieved 15,800 (99%), bare 15,900) | 1.80 | 1.20 | 1.50x | <= 2x |"
    )


def test_the_rows_come_from_one_round_the_median_ratio() -> None:
    """Each round asks for its own rate: the row pairs runs of the same round."""
    rounds = []
    for ratio_ms, rate in ((4.0, 17_000), (2.0, 16_000), (1.5, 15_000)):
        one = results(app_at_half_rps=14_000)
        one["app/paced-own80"] = paced(rate - 100, rate, ratio_ms)
        one["bare/paced-app80"] = paced(rate - 50, rate, 1.0)
        rounds.append(one)
    row = p99_target_lines({"rounds": rounds}, "app", "football")[1]
    assert "~16,000 req/s; achieved 15,900 (99%), bare 15,950) | 2.00 | 1.00 | 2.00x" in row
