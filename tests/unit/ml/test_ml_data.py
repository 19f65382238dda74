"""Reading, validating and cleaning the results CSV; season inference; `process`."""

import csv
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.cli import main
from ml.data import DataError, clean, load_matches, read_raw
from ml.features import FEATURE_CODE_VERSION, FEATURE_NAMES

Edit = Callable[[pd.DataFrame], None]


def write_raw(raw: pd.DataFrame, path: Path) -> Path:
    raw.to_csv(path, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")
    return path


@pytest.fixture(scope="module")
def first_season(league_raw: pd.DataFrame) -> pd.DataFrame:
    """The 2003 season's rows (the file is in ID order, and IDs follow the rounds)."""
    return league_raw.iloc[:552].copy()


def set_cell(row: int, column: str, value: str) -> Edit:
    def edit(raw: pd.DataFrame) -> None:
        raw.loc[row, column] = value

    return edit


def copy_id(source: int, target: int) -> Edit:
    def edit(raw: pd.DataFrame) -> None:
        raw.loc[target, "ID"] = raw.loc[source, "ID"]

    return edit


def plays_itself(row: int) -> Edit:
    def edit(raw: pd.DataFrame) -> None:
        raw.loc[row, "visitante"] = raw.loc[row, "mandante"]

    return edit


def drop_column(column: str) -> Edit:
    def edit(raw: pd.DataFrame) -> None:
        del raw[column]

    return edit


BAD_ROWS = {
    "missing column": (drop_column("visitante_Placar"), r"missing columns: visitante_Placar$"),
    "date": (
        set_cell(9, "data", "2003-03-29"),
        r"1 row with an unparseable date .*: line 11 \(ID '10', data='2003-03-29'\)",
    ),
    "impossible date": (set_cell(9, "data", "31/02/2003"), r"unparseable date .*line 11"),
    "score": (set_cell(4, "mandante_Placar", "two"), r"unparseable score: line 6 \(ID '5'"),
    "empty score": (set_cell(4, "visitante_Placar", ""), r"unparseable score: line 6"),
    "negative score": (set_cell(7, "visitante_Placar", "-1"), r"negative score: line 9"),
    "duplicate ID": (
        copy_id(3, 20),
        r"2 rows sharing an ID: line 5 \(ID '4'\), line 22 \(ID '4'\)",
    ),
    "unparseable ID": (set_cell(2, "ID", "x3"), r"unparseable ID: line 4"),
    "plays itself": (plays_itself(12), r"team plays itself: line 14 \(ID '13'"),
    "no team": (set_cell(15, "mandante", ""), r"1 row without a team name: line 17 \(ID '16'"),
    "round": (set_cell(30, "rodata", "first"), r"unparseable round .*line 32"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_rows_give_one_clear_line_and_no_output(
    case: str, first_season: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, pattern = BAD_ROWS[case]
    raw = first_season.copy()
    edit(raw)
    data = write_raw(raw, tmp_path / "bad.csv")
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    assert main(["process", "--data", str(data), "--out", str(out_dir / "t.parquet")]) == 1

    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {data}")
    assert re.search(pattern, last), last
    assert list(out_dir.iterdir()) == []  # not even a temporary file


def test_every_problem_is_reported_at_once(first_season: pd.DataFrame) -> None:
    raw = first_season.copy()
    set_cell(1, "data", "soon")(raw)
    set_cell(2, "mandante_Placar", "-2")(raw)
    with pytest.raises(DataError) as err:
        clean(raw)
    assert "unparseable date" in str(err.value)
    assert "negative score" in str(err.value)
    assert "\n" not in str(err.value)


def test_long_lists_of_bad_rows_are_cut_short(first_season: pd.DataFrame) -> None:
    raw = first_season.copy()
    raw.loc[:99, "data"] = "?"
    with pytest.raises(DataError, match=r"100 rows with an unparseable date.* and 97 more$"):
        clean(raw)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b'"ID","rodata"\n"1","1"\n', "missing columns: data, mandante"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x05", "not a readable CSV"),
    ],
)
def test_unusable_files_give_one_line(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    assert main(["evaluate", "--data", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err.splitlines()[-1]


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["process", "--data", str(tmp_path / "nope.csv"), "--out", "x.parquet"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: data file not found: {tmp_path / 'nope.csv'}"
    )


def test_cleaning(league_raw: pd.DataFrame, matches: pd.DataFrame) -> None:
    assert not matches["arena"].str.startswith(" ").any()
    assert matches["date"].is_monotonic_increasing
    assert len(matches) == len(league_raw)
    # Outcomes come from the scores.
    hg, ag = matches["home_goals"], matches["away_goals"]
    expected = np.where(hg > ag, "home_win", np.where(hg == ag, "draw", "away_win"))
    assert (matches["outcome"].to_numpy() == expected).all()


def test_the_score_wins_over_a_contradicting_vencedor(
    league_csv: Path, matches: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = pd.read_csv(league_csv, dtype=str, keep_default_na=False)
    hg, ag = raw["mandante_Placar"].astype(int), raw["visitante_Placar"].astype(int)
    bad = raw[(raw["vencedor"] == "-") & (hg != ag)]
    assert len(bad) == 1
    match_id = int(bad["ID"].iloc[0])
    row = matches[matches["match_id"] == match_id].iloc[0]
    assert row["outcome"] != "draw"
    clean(read_raw(league_csv))
    assert f"ID '{match_id}'" in capsys.readouterr().err


def test_arena_spaces_are_stripped(league_csv: Path) -> None:
    raw = pd.read_csv(league_csv, dtype=str, keep_default_na=False)
    assert raw["arena"].str.startswith(" ").any()
    assert not read_raw(league_csv)["arena"].str.startswith(" ").any()


def test_seasons_are_inferred_across_calendar_years(matches: pd.DataFrame) -> None:
    sizes = matches.groupby("season").size()
    assert list(sizes.index) == list(range(2003, 2025))
    assert list(sizes) == [552, 552, 462] + [380] * 19
    # Each inferred season is one contiguous block of IDs (IDs follow the true seasons).
    for _, group in matches.groupby("season"):
        ids = group["match_id"]
        assert ids.max() - ids.min() + 1 == len(ids)
    jan_feb_2021 = matches[(matches["date"] >= "2021-01-01") & (matches["date"] < "2021-03-01")]
    assert len(jan_feb_2021) > 50
    assert (jan_feb_2021["season"] == 2020).all()


def _shift(raw: pd.DataFrame, rows: pd.Series, days: int) -> None:
    dates = pd.to_datetime(raw["data"], format="%d/%m/%Y")
    raw.loc[rows, "data"] = (dates[rows] + pd.Timedelta(days=days)).dt.strftime("%d/%m/%Y")


def test_two_seasons_run_together_are_caught(league_raw: pd.DataFrame) -> None:
    raw = league_raw.iloc[: 552 * 2].copy()
    # Bring 2004 forward so it starts a week after 2003 ends.
    dates = pd.to_datetime(raw["data"], format="%d/%m/%Y")
    second = raw.index >= 552
    gap = (dates[second].min() - dates[~second].max()).days
    _shift(raw, pd.Series(second, index=raw.index), -(gap - 7))
    merged = r"season 2003 .* about 24 matches, but its 28 teams .* run together"
    with pytest.raises(DataError, match=merged):
        clean(raw)


def test_a_season_split_by_a_long_break_is_caught(league_raw: pd.DataFrame) -> None:
    raw = league_raw.iloc[: 552 * 2].copy()
    dates = pd.to_datetime(raw["data"], format="%d/%m/%Y")
    later = dates > pd.Timestamp("2003-08-01")
    _shift(raw, later, 90)
    with pytest.raises(DataError, match=r"season 2003 .* ends at round \d+ of 46: a season split"):
        clean(raw)


def test_an_unfinished_last_season_is_fine(league_raw: pd.DataFrame) -> None:
    raw = league_raw.iloc[: 552 + 300].copy()
    assert sorted(clean(raw)["season"].unique()) == [2003, 2004]


def test_process_writes_matches_and_features(
    league_csv: Path, matches: pd.DataFrame, features: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "league.parquet"
    assert main(["process", "--data", str(league_csv), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert table.attrs["feature_code_version"] == FEATURE_CODE_VERSION
    pd.testing.assert_frame_equal(table[list(FEATURE_NAMES)], features)
    pd.testing.assert_frame_equal(load_matches(out), matches)
    assert [p.name for p in tmp_path.iterdir()] == ["league.parquet"]


def test_process_replaces_an_existing_file_only_on_success(
    league_csv: Path, first_season: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "t.parquet"
    out.write_bytes(b"previous")
    bad = first_season.copy()
    set_cell(0, "data", "x")(bad)
    assert main(["process", "--data", str(write_raw(bad, tmp_path / "b.csv")), "--out", str(out)])
    assert out.read_bytes() == b"previous"
