"""Leak-free match features, for training and for predicting a future fixture alike.

A match's features use only matches on strictly earlier dates: matches are taken a day
at a time, every match of a day is featurised from the state before that day, and only
then do the day's results update it (so same-day matches never see each other).

Per club, the pre-match state is
- an Elo rating (home advantage, margin of victory, regression toward the mean between
  seasons; clubs first seen after the first season, i.e. promoted, start below it);
- a goal rating: attack and defence on the log scale of expected goals, learnt online (a
  gradient step on the Poisson likelihood after each match), regressed between seasons too;
- recent form: mean points over its last `form_window` matches;
- its state (UF), for the visitors' travel distance.

`assemble` turns both sides' states into the feature matrix. Training and serving both go
through it: serving with the `TeamState` snapshot of every club after the last match.

Bump FEATURE_CODE_VERSION whenever a change here alters any feature value: bundles record
it and a host refuses a bundle built with another version.
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.errors import PalpiteError
from ml.geo import state_distance_km

FEATURE_CODE_VERSION = 1


@dataclass(frozen=True)
class Params:
    elo_initial: float = 1500.0  # every club of the data's first season; the seasons' mean
    elo_k: float = 20.0  # update size for a one-goal result
    elo_home_advantage: float = 70.0  # rating points added to the home side's expectation
    elo_newcomer_gap: float = 80.0  # a club first seen later (promoted) starts this far below
    goal_rate_home: float = 0.34  # log expected goals of the home side, at the start
    goal_rate_away: float = 0.0  # ... and of the visitors
    goal_step: float = 0.02  # learning rate of the clubs' attack/defence
    goal_league_step: float = 0.002  # ... and of the league's home/away goal rates
    season_regression: float = 0.3  # share of a rating's distance to the mean removed per season
    form_window: int = 6  # matches (any venue, across seasons)
    form_default: float = 1.35  # points per match of a club without earlier matches
    travel_default: float = 1.0  # thousand km, when a state code is missing or unknown


PARAMS = Params()

FEATURE_NAMES: tuple[str, ...] = (
    "elo_diff",
    "goal_rate_home",
    "goal_rate_away",
    "form_home",
    "form_away",
    "travel",
)
RATING_FEATURES: tuple[str, ...] = ("elo_diff",)  # what the rating-only baseline sees

TEAM_FIELDS = ("elo", "attack", "defence", "form", "state")
# Up to this many clubs, a snapshot precomputes every pairing's features (n * n rows of
# `assemble`'s output, ~46 KB for 40 clubs): serving a fixture is then one row lookup.
PAIR_TABLE_MAX_TEAMS = 512


class UnknownTeamError(PalpiteError):
    """A fixture names a team the snapshot has never seen."""


@dataclass(frozen=True)
class Sides:
    """Pre-match state of one side (home or away) for a batch of matches, as arrays."""

    elo: np.ndarray
    attack: np.ndarray
    defence: np.ndarray
    form: np.ndarray
    state: np.ndarray  # UF code, "" if unknown


@dataclass(frozen=True)
class League:
    """League-wide pre-match state: the goal model's log expected goals at home and away."""

    goal_rate_home: np.ndarray | float
    goal_rate_away: np.ndarray | float


def assemble(home: Sides, away: Sides, league: League, params: Params = PARAMS) -> np.ndarray:
    """The feature matrix (columns FEATURE_NAMES) from both sides' pre-match state."""
    travel = state_distance_km(home.state, away.state) / 1000.0
    columns = (
        home.elo - away.elo,
        league.goal_rate_home + home.attack - away.defence,
        league.goal_rate_away + away.attack - home.defence,
        home.form,
        away.form,
        np.where(np.isnan(travel), params.travel_default, travel),
    )
    n = len(home.elo)
    return np.column_stack([np.broadcast_to(np.asarray(c, dtype=np.float64), n) for c in columns])


def _margin_multiplier(goal_diff: np.ndarray) -> np.ndarray:
    """World Football Elo's margin-of-victory weight: 1, 1.5, then (11 + margin) / 8."""
    gd = np.abs(goal_diff).astype(np.float64)
    return np.where(gd <= 1, 1.0, np.where(gd == 2, 1.5, (11.0 + gd) / 8.0))


@dataclass
class _Encoded:
    """Matches sorted by day, as arrays (clubs as integer codes)."""

    order: np.ndarray  # row of the caller's table for each sorted match
    teams: np.ndarray  # code -> name
    day: np.ndarray
    season: np.ndarray
    home: np.ndarray
    away: np.ndarray
    home_goals: np.ndarray
    away_goals: np.ndarray
    home_state: np.ndarray
    away_state: np.ndarray


def _text(matches: pd.DataFrame, column: str) -> np.ndarray:
    if column not in matches.columns:
        return np.full(len(matches), "", dtype=object)
    return matches[column].fillna("").to_numpy(dtype=object)


def encode_matches(matches: pd.DataFrame) -> _Encoded:
    day = matches["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    order = np.argsort(day, kind="stable")
    codes, teams = pd.factorize(
        pd.concat([matches["home_team"], matches["away_team"]], ignore_index=True)
    )
    n = len(matches)
    return _Encoded(
        order=order,
        teams=np.asarray(teams, dtype=object),
        day=day[order],
        season=matches["season"].to_numpy(dtype=np.int64)[order],
        home=codes[:n][order],
        away=codes[n:][order],
        home_goals=matches["home_goals"].to_numpy(dtype=np.int64)[order],
        away_goals=matches["away_goals"].to_numpy(dtype=np.int64)[order],
        home_state=_text(matches, "home_state")[order],
        away_state=_text(matches, "away_state")[order],
    )


@dataclass
class _Ratings:
    """Sequential state: per-club Elo and goal ratings, league goal rates."""

    elo: list[float]
    attack: list[float]
    defence: list[float]
    rate_home: float
    rate_away: float

    def regress(self, params: Params) -> None:
        """Between seasons: part of the way back to the mean (clubs change over summer)."""
        keep = 1.0 - params.season_regression
        mean = params.elo_initial
        self.elo = [r if math.isnan(r) else mean + keep * (r - mean) for r in self.elo]
        self.attack = [keep * r for r in self.attack]
        self.defence = [keep * r for r in self.defence]


def rating_pass(enc: _Encoded, params: Params) -> tuple[np.ndarray, _Ratings]:
    """Pre-match ratings per sorted match (columns: elo, attack, defence of home then away;
    league home and away rates), and the state after the last match.

    Inherently sequential; a plain loop over Python floats beats numpy calls per day here,
    and its cost is linear in the number of matches.
    """
    n = len(enc.day)
    hg, ag = enc.home_goals, enc.away_goals
    actual = np.where(hg > ag, 1.0, np.where(hg == ag, 0.5, 0.0)).tolist()
    weight = (params.elo_k * _margin_multiplier(hg - ag)).tolist()
    home_goals, away_goals = hg.astype(np.float64).tolist(), ag.astype(np.float64).tolist()
    home, away, season = enc.home.tolist(), enc.away.tolist(), enc.season.tolist()
    n_teams = len(enc.teams)
    st = _Ratings(
        elo=[math.nan] * n_teams,
        attack=[0.0] * n_teams,
        defence=[0.0] * n_teams,
        rate_home=params.goal_rate_home,
        rate_away=params.goal_rate_away,
    )
    pre = [[0.0] * 8 for _ in range(n)]
    bounds = [0, *(np.flatnonzero(np.diff(enc.day)) + 1).tolist(), n]
    first_season = season[0] if n else 0
    current_season = first_season
    hfa, step, league_step = params.elo_home_advantage, params.goal_step, params.goal_league_step
    for s, e in itertools.pairwise(bounds):
        if season[s] != current_season:
            st.regress(params)
            current_season = season[s]
        newcomer = params.elo_initial
        if current_season != first_season:
            newcomer -= params.elo_newcomer_gap
        elo, att, dfn = st.elo, st.attack, st.defence
        for i in range(s, e):  # the day's state, before any of its results
            h, a = home[i], away[i]
            if math.isnan(elo[h]):
                elo[h] = newcomer
            if math.isnan(elo[a]):
                elo[a] = newcomer
            pre[i] = [elo[h], att[h], dfn[h], elo[a], att[a], dfn[a], st.rate_home, st.rate_away]
        d_home = d_away = 0.0
        for i in range(s, e):  # then the day's results, all from that same state
            elo_h, att_h, dfn_h, elo_a, att_a, dfn_a, rate_h, rate_a = pre[i]
            h, a = home[i], away[i]
            expected = 1.0 / (1.0 + 10.0 ** (-(elo_h + hfa - elo_a) / 400.0))
            delta = weight[i] * (actual[i] - expected)
            elo[h] += delta
            elo[a] -= delta
            surprise_h = home_goals[i] - math.exp(rate_h + att_h - dfn_a)
            surprise_a = away_goals[i] - math.exp(rate_a + att_a - dfn_h)
            att[h] += step * surprise_h
            dfn[a] -= step * surprise_h
            att[a] += step * surprise_a
            dfn[h] -= step * surprise_a
            d_home += league_step * surprise_h
            d_away += league_step * surprise_a
        st.rate_home += d_home
        st.rate_away += d_away
    return np.array(pre, dtype=np.float64).reshape(n, 8), st


def recent_form(
    enc: _Encoded, query_team: np.ndarray, query_day: np.ndarray, params: Params
) -> np.ndarray:
    """Mean points over each queried club's last `form_window` matches on days strictly
    before the query day. Vectorised: prefix sums over matches sorted by (club, day) and a
    binary search for each query's window.
    """
    hg, ag = enc.home_goals, enc.away_goals
    team = np.concatenate([enc.home, enc.away]).astype(np.int64)
    day = np.concatenate([enc.day, enc.day])
    points = np.concatenate(
        [np.where(hg > ag, 3.0, np.where(hg == ag, 1.0, 0.0)),
         np.where(ag > hg, 3.0, np.where(hg == ag, 1.0, 0.0))]
    )  # fmt: skip
    if len(team) == 0:
        return np.full(len(query_team), params.form_default)
    origin = min(day.min(), query_day.min(initial=day.min()))
    width = max(day.max(), query_day.max(initial=day.max())) - origin + 2
    key = team * width + (day - origin)
    order = np.argsort(key, kind="stable")
    key = key[order]
    prefix = np.concatenate([[0.0], np.cumsum(points[order])])
    q_team = query_team.astype(np.int64)
    upto = np.searchsorted(key, q_team * width + (query_day - origin), side="left")
    first = np.searchsorted(key, q_team * width, side="left")
    lo = np.maximum(upto - params.form_window, first)
    count = upto - lo
    total = prefix[upto] - prefix[lo]
    return np.where(count > 0, total / np.maximum(count, 1), params.form_default)


def build_features(matches: pd.DataFrame, params: Params = PARAMS) -> pd.DataFrame:
    """Features for every match (columns FEATURE_NAMES), aligned with `matches`' rows.

    `matches` needs date, season, home_team, away_team, home_goals, away_goals and, if it
    has them, home_state and away_state; any row order.
    """
    enc = encode_matches(matches)
    n = len(enc.day)
    pre, _ = rating_pass(enc, params)
    both_days = np.concatenate([enc.day, enc.day])
    form = recent_form(enc, np.concatenate([enc.home, enc.away]), both_days, params)
    home = Sides(pre[:, 0], pre[:, 1], pre[:, 2], form[:n], enc.home_state)
    away = Sides(pre[:, 3], pre[:, 4], pre[:, 5], form[n:], enc.away_state)
    matrix = assemble(home, away, League(pre[:, 6], pre[:, 7]), params)
    unsorted = np.empty_like(matrix)
    unsorted[enc.order] = matrix
    return pd.DataFrame(unsorted, columns=list(FEATURE_NAMES), index=matches.index)
