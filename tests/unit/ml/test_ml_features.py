"""Features: leak-free (a property test), and the same for training and for serving."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.data import infer_seasons
from ml.errors import PalpiteError
from ml.features import (
    FEATURE_CODE_VERSION,
    FEATURE_NAMES,
    UnknownTeamError,
    build_features,
)
from ml.team_state import TeamState, team_state

COLUMNS = ["match_id", "date", "home_team", "away_team", "home_goals", "away_goals",
           "home_state", "away_state", "round"]  # fmt: skip


@pytest.fixture(scope="module")
def small(matches: pd.DataFrame) -> pd.DataFrame:
    """Two seasons and a bit (so a season boundary is in play), with busy match days."""
    return matches.loc[matches["season"] <= 2005, COLUMNS].iloc[:1300].reset_index(drop=True)


def featurise(table: pd.DataFrame) -> pd.DataFrame:
    """The pipeline from clean matches: sort by date, infer seasons, build features."""
    table = table.sort_values("date", kind="stable", ignore_index=True)
    table["season"] = infer_seasons(table["date"])
    return build_features(table).set_axis(table["match_id"].to_numpy())


@st.composite
def alteration(draw: st.DrawFn, n: int) -> tuple[int, str, int]:
    return (
        draw(st.integers(0, n - 1)),
        draw(st.sampled_from(["scores", "swap", "other team", "remove", "postpone"])),
        draw(st.integers(0, 9)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_features_ignore_any_later_or_same_day_match(
    small: pd.DataFrame, data: st.DataObject
) -> None:
    """Alter or remove match j: no match dated on or before j's day (same day included)
    may change its features."""
    before = featurise(small)
    j, kind, value = data.draw(alteration(len(small)))
    changed = small.copy()
    if kind == "scores":
        changed.loc[j, ["home_goals", "away_goals"]] = [value, 9 - value]
    elif kind == "swap":
        home, away = small.at[j, "home_team"], small.at[j, "away_team"]
        changed.loc[j, ["home_team", "away_team"]] = [away, home]
    elif kind == "other team":
        teams = sorted(set(small["home_team"]) - {small.at[j, "away_team"]})
        changed.loc[j, "home_team"] = teams[value % len(teams)]
    elif kind == "remove":
        changed = changed.drop(index=j)
    else:
        changed.loc[j, "date"] = small.at[j, "date"] + pd.Timedelta(days=1 + value)
    after = featurise(changed)
    day = small.at[j, "date"]
    earlier_ids = small.loc[(small["date"] <= day) & (small.index != j), "match_id"]
    pd.testing.assert_frame_equal(after.loc[earlier_ids], before.loc[earlier_ids])


def test_same_day_matches_do_not_see_each_other(small: pd.DataFrame) -> None:
    """A club playing twice on one day: its second match still sees the day-before state."""
    day = small["date"].iloc[600]
    first = small[small["date"] == day].index[0]
    twice = small.copy()
    extra = twice.loc[[first]].assign(match_id=-1, home_goals=7, away_goals=0)
    a = featurise(twice)
    b = featurise(pd.concat([twice, extra], ignore_index=True))
    first_id = small.at[first, "match_id"]
    assert np.array_equal(b.loc[-1].to_numpy(), a.loc[first_id].to_numpy())
    assert np.array_equal(b.loc[first_id].to_numpy(), a.loc[first_id].to_numpy())


def test_features_do_not_depend_on_row_order(matches: pd.DataFrame, features: pd.DataFrame) -> None:
    shuffled = matches.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(build_features(shuffled).loc[matches.index], features)


def test_ratings_carry_signal(matches: pd.DataFrame, features: pd.DataFrame) -> None:
    """Sanity: the stronger-rated side wins more often, and no feature is constant."""
    later = matches["season"] > 2003
    favourite_home = features["elo_diff"] > 100
    favourite_away = features["elo_diff"] < -100
    home_wins = matches["outcome"] == "home_win"
    assert home_wins[later & favourite_home].mean() > home_wins[later & favourite_away].mean() + 0.2
    assert (features.std() > 0).all()
    assert np.isfinite(features.to_numpy()).all()


def _state_round_trip(state: TeamState) -> TeamState:
    return TeamState.from_dict(json.loads(json.dumps(state.to_dict())))


def _busy_day(matches: pd.DataFrame, which: str) -> pd.Timestamp:
    counts = matches.groupby("date").size()
    busy = counts[counts >= 2].index
    if which == "season opener":
        return matches.loc[matches["season"] == 2020, "date"].min()
    return busy[3000 // 3] if which == "mid-season" else busy[-1]


@pytest.mark.parametrize("which", ["mid-season", "season opener", "last busy day"])
def test_snapshot_features_equal_training_features(
    matches: pd.DataFrame, features: pd.DataFrame, which: str
) -> None:
    """Serving from the snapshot (after JSON) computes exactly what training computed for
    a day's matches, from every match before that day."""
    day = _busy_day(matches, which)
    on_day = matches["date"] == day
    assert on_day.sum() >= 2
    state = _state_round_trip(team_state(matches[matches["date"] < day]))
    assert state.season_complete == (which == "season opener")
    served = state.fixtures(matches.loc[on_day, "home_team"], matches.loc[on_day, "away_team"])
    assert np.array_equal(served, features.loc[on_day, list(FEATURE_NAMES)].to_numpy())


def test_snapshot_of_a_finished_season(matches: pd.DataFrame) -> None:
    state = team_state(matches)
    assert state.as_of == f"{matches['date'].max():%Y-%m-%d}"
    assert state.season == 2024
    assert state.season_complete
    last = matches[matches["season"] == 2024]
    assert state.current_teams == sorted(set(last["home_team"]))
    assert len(state.teams) == len(set(matches["home_team"]) | set(matches["away_team"]))
    # Ratings already regressed toward the mean for the next season.
    unfinished = team_state(matches.iloc[:-1])
    assert not unfinished.season_complete
    assert np.std(state.elo) < np.std(unfinished.elo)


def test_pair_table_matches_assembling_per_request(
    matches: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serving reads precomputed pairings; a snapshot too large for the table assembles per
    request. Both give the same features for every pairing, in any order."""
    tabled = team_state(matches)
    monkeypatch.setattr("ml.team_state.PAIR_TABLE_MAX_TEAMS", 0)
    untabled = TeamState.from_dict(tabled.to_dict())
    assert tabled._pairs is not None and untabled._pairs is None
    teams = np.array(tabled.teams, dtype=object)
    home, away = (teams[i] for i in np.divmod(np.arange(len(teams) ** 2), len(teams)))
    differ = home != away
    rng = np.random.default_rng(0)
    order = rng.permutation(int(differ.sum()))
    home, away = home[differ][order], away[differ][order]
    assert np.array_equal(tabled.fixtures(home, away), untabled.fixtures(home, away))


def test_fixture_errors(matches: pd.DataFrame) -> None:
    state = team_state(matches)
    a, b = state.current_teams[:2]
    with pytest.raises(UnknownTeamError, match=r"unknown team.*'Atlantis FC'"):
        state.fixtures([a, "Atlantis FC"], [b, a])
    with pytest.raises(PalpiteError, match="cannot play itself"):
        state.fixtures([a], [a])
    with pytest.raises(PalpiteError, match="same length"):
        state.fixtures([a, b], [b])


def test_snapshot_from_other_feature_code_is_refused(matches: pd.DataFrame) -> None:
    data = team_state(matches).to_dict()
    data["feature_code_version"] = FEATURE_CODE_VERSION + 1
    with pytest.raises(PalpiteError, match=f"version {FEATURE_CODE_VERSION + 1}, this"):
        TeamState.from_dict(data)
    with pytest.raises(PalpiteError, match="malformed"):
        TeamState.from_dict({"feature_code_version": FEATURE_CODE_VERSION})
