"""The synthetic league: the public file's exact format, reproducible, and realistic."""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.errors import PalpiteError
from ml.generate import generate_league, teams_per_season, write_league
from ml.rawformat import RAW_COLUMNS

# The real league, 2003-2024 (issue 2).
REAL_RATES = {"home_win": 0.496, "draw": 0.264, "away_win": 0.239}


def test_header_and_every_field_are_double_quoted(league_csv: Path) -> None:
    lines = league_csv.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(f'"{c}"' for c in RAW_COLUMNS)
    for line in lines[1:50]:
        fields = next(csv.reader([line]))
        assert line == ",".join(f'"{f}"' for f in fields)


def test_field_formats(league_raw: pd.DataFrame) -> None:
    raw = league_raw
    assert raw["data"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
    assert raw["hora"].str.fullmatch(r"\d{2}:\d{2}").all()
    assert raw["mandante_Placar"].str.fullmatch(r"\d+").all()
    assert raw["mandante_Estado"].str.fullmatch(r"[A-Z]{2}").all()
    formations = pd.concat([raw["formacao_mandante"], raw["formacao_visitante"]])
    assert formations[formations != ""].str.fullmatch(r"\d(-\d){2,3}").all()


def test_coaches_and_formations_empty_in_early_years(league_raw: pd.DataFrame) -> None:
    year = league_raw["data"].str[-4:].astype(int)
    for column, first_year in (("tecnico_mandante", 2014), ("formacao_visitante", 2015)):
        assert (league_raw.loc[year < first_year, column] == "").all()
        assert (league_raw.loc[year >= first_year, column] != "").all()


def test_vencedor_names_the_winner_or_a_dash_with_one_contradiction(league_csv: Path) -> None:
    raw = pd.read_csv(league_csv, dtype=str, keep_default_na=False)
    hg, ag = raw["mandante_Placar"].astype(int), raw["visitante_Placar"].astype(int)
    expected = np.where(hg > ag, raw["mandante"], np.where(ag > hg, raw["visitante"], "-"))
    assert (raw["vencedor"] != expected).sum() == 1


def test_arenas_sometimes_carry_a_leading_space(league_csv: Path) -> None:
    raw = pd.read_csv(league_csv, dtype=str, keep_default_na=False)
    spaced = raw["arena"].str.startswith(" ")
    assert 0.02 < spaced.mean() < 0.2


def test_ids_are_unique_but_not_chronological(league_raw: pd.DataFrame) -> None:
    ids = league_raw["ID"].astype(int)
    assert ids.is_unique
    dates = pd.to_datetime(league_raw["data"], format="%d/%m/%Y")
    assert not dates.iloc[ids.argsort()].is_monotonic_increasing


def test_teams_per_season_and_promotion(matches: pd.DataFrame) -> None:
    teams: dict[int, set[str]] = {}
    for season, group in matches.groupby("season"):
        teams[int(season)] = set(group["home_team"]) | set(group["away_team"])
        assert len(group) == len(teams[int(season)]) * (len(teams[int(season)]) - 1)
    assert sorted(teams) == list(range(2003, 2025))
    assert {s: len(t) for s, t in teams.items()} == {s: teams_per_season(s) for s in teams}
    for season in range(2004, 2025):
        # Four go down every year; the rest of the change is the promoted clubs.
        assert len(teams[season - 1] - teams[season]) == 4
    assert 35 <= len(set().union(*teams.values())) <= 45


def test_the_2020_season_runs_into_2021(matches: pd.DataFrame) -> None:
    s2020 = matches[matches["season"] == 2020]
    assert s2020["date"].min() == pd.Timestamp("2020-08-08")
    assert s2020["date"].max().year == 2021


def test_realism_outcome_rates_and_goals(matches: pd.DataFrame) -> None:
    rates = matches["outcome"].value_counts(normalize=True)
    for outcome, real in REAL_RATES.items():
        assert abs(rates[outcome] - real) < 0.03, (outcome, rates[outcome])
    goals = (matches["home_goals"] + matches["away_goals"]).mean()
    assert 2.2 <= goals <= 2.7
    assert 8_700 <= len(matches) <= 8_900


@pytest.mark.parametrize("seed", [1, 2])
def test_realism_holds_for_other_seeds(seed: int) -> None:
    raw = generate_league(2010, 2019, seed=seed)
    hg, ag = raw["mandante_Placar"].astype(int), raw["visitante_Placar"].astype(int)
    assert abs((hg > ag).mean() - REAL_RATES["home_win"]) < 0.03
    assert abs((hg == ag).mean() - REAL_RATES["draw"]) < 0.03
    assert 2.2 <= (hg + ag).mean() <= 2.7


def test_same_seed_same_bytes_other_seed_other_league(tmp_path: Path) -> None:
    digests = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_league(tmp_path / f"{name}.csv", 2003, 2005, seed)
        digests.append(hashlib.sha256((tmp_path / f"{name}.csv").read_bytes()).hexdigest())
    assert digests[0] == digests[1] != digests[2]


def test_bad_season_range_is_refused() -> None:
    with pytest.raises(PalpiteError, match="first <= last"):
        generate_league(2010, 2005)


def test_missing_output_directory_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_league(tmp_path / "no" / "such" / "dir.csv", 2003, 2003)
    assert not (tmp_path / "no").exists()
