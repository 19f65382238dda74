"""Every club's state after the last match: the snapshot a football model serves from.

Built from the same passes as the training features (ml.features), so a fixture's
features at serving time are exactly what training computed for a match on that day.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Self

import numpy as np
import pandas as pd

from ml.data import expected_rounds
from ml.errors import PalpiteError
from ml.features import (
    FEATURE_CODE_VERSION,
    PAIR_TABLE_MAX_TEAMS,
    PARAMS,
    TEAM_FIELDS,
    League,
    Params,
    Sides,
    UnknownTeamError,
    assemble,
    encode_matches,
    rating_pass,
    recent_form,
)
from ml.geo import lookup


@dataclass(frozen=True)
class TeamState:
    """Every club's pre-match state for the next match after the data (a JSON snapshot)."""

    as_of: str  # date of the last match, YYYY-MM-DD
    season: int  # season label of the last match
    season_complete: bool  # if so, the ratings already carry the between-season regression
    current_teams: list[str]  # clubs of the last season: what a fixture is usually between
    teams: list[str]
    elo: list[float]
    attack: list[float]
    defence: list[float]
    form: list[float]
    state: list[str]
    goal_rate_home: float
    goal_rate_away: float
    params: Params = PARAMS
    feature_code_version: int = FEATURE_CODE_VERSION
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _arrays: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)
    _pairs: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {team: i for i, team in enumerate(self.teams)})
        arrays = {
            name: np.asarray(getattr(self, name), dtype=object if name == "state" else np.float64)
            for name in TEAM_FIELDS
        }
        object.__setattr__(self, "_arrays", arrays)
        object.__setattr__(self, "_pairs", self._pair_table())

    def _pair_table(self) -> np.ndarray | None:
        """`assemble` for every (home, away) pair at once, row home * n + away; the same
        function as training, computed ahead instead of per request."""
        n = len(self.teams)
        if not 0 < n <= PAIR_TABLE_MAX_TEAMS or {len(v) for v in self._arrays.values()} != {n}:
            return None  # too many clubs, or malformed (from_dict says so after this)
        home, away = np.divmod(np.arange(n * n), n)
        return self._assemble(home, away)

    def _assemble(self, h: np.ndarray, a: np.ndarray) -> np.ndarray:
        home = Sides(**{k: v[h] for k, v in self._arrays.items()})
        away = Sides(**{k: v[a] for k, v in self._arrays.items()})
        return assemble(home, away, League(self.goal_rate_home, self.goal_rate_away), self.params)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init} | {
            "params": asdict(self.params)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a snapshot; PalpiteError if it is malformed or from other feature code."""
        version = data.get("feature_code_version") if isinstance(data, Mapping) else None
        if version != FEATURE_CODE_VERSION:
            raise PalpiteError(
                f"team state was built by feature code version {version}, "
                f"this installation has {FEATURE_CODE_VERSION}"
            )
        try:
            values = dict(data)
            values["params"] = Params(**values["params"])
            state = cls(**values)
        except (KeyError, TypeError) as exc:
            raise PalpiteError(f"malformed team state: {exc}") from exc
        if len({len(getattr(state, name)) for name in ("teams", *TEAM_FIELDS)}) != 1:
            raise PalpiteError("malformed team state: per-team lists differ in length")
        return state

    def fixtures(self, home_teams: Sequence[str], away_teams: Sequence[str]) -> np.ndarray:
        """Features for fixtures between the named clubs, via `assemble` as in training."""
        home_names = list(home_teams)
        away_names = list(away_teams)
        if len(home_names) != len(away_names):
            raise PalpiteError("home and away teams must be two lists of the same length")
        # Plain Python lists here: serving calls this for one fixture at a time, where
        # every numpy call costs more than the work it does.
        h = lookup(self._index, home_names).tolist()
        a = lookup(self._index, away_names).tolist()
        if -1 in h or -1 in a:
            unknown: list[str] = []
            named = zip(home_names + away_names, h + a, strict=True)
            for name, code in named:
                if code < 0 and repr(name) not in unknown and len(unknown) < 5:
                    unknown.append(repr(name))  # any JSON value, even unhashable
            raise UnknownTeamError(f"unknown team(s): {', '.join(unknown)}")
        for name, home, away in zip(home_names, h, a, strict=True):
            if home == away:
                raise PalpiteError(f"a team cannot play itself: {name!r}")
        if self._pairs is not None:
            n = len(self.teams)
            return self._pairs[[home * n + away for home, away in zip(h, a, strict=True)]]
        return self._assemble(np.asarray(h, dtype=np.int64), np.asarray(a, dtype=np.int64))


def team_state(matches: pd.DataFrame, params: Params = PARAMS) -> TeamState:
    """The snapshot after the last match: what training would compute for the next match.

    If the last season's final round is complete, the next match opens a new season, so the
    ratings carry the between-season regression training would apply before it.
    """
    if matches.empty:
        raise PalpiteError("no matches to build a team state from")
    enc = encode_matches(matches)
    _, ratings = rating_pass(enc, params)
    last_season = int(enc.season[-1])
    in_last = enc.season == last_season
    current = np.unique(np.concatenate([enc.home[in_last], enc.away[in_last]]))
    # Finished when the last round has all its matches (its days can straddle the data's end).
    rounds = matches.loc[matches["season"] == last_season, "round"]
    complete = int((rounds == expected_rounds(len(current))).sum()) >= len(current) // 2
    if complete:
        ratings.regress(params)
    codes = np.arange(len(enc.teams))
    form = recent_form(enc, codes, np.full(len(codes), enc.day[-1] + 1), params)
    # Each club's state code as given in its latest match.
    appearances = pd.DataFrame(
        {
            "club": np.concatenate([enc.home, enc.away]),
            "row": np.tile(np.arange(len(enc.day)), 2),
            "state": np.concatenate([enc.home_state, enc.away_state]),
        }
    ).sort_values("row", kind="stable")
    club_state = appearances.groupby("club")["state"].last().reindex(codes, fill_value="")
    last_day = dt.date(1970, 1, 1) + dt.timedelta(days=int(enc.day[-1]))
    return TeamState(
        as_of=last_day.isoformat(),
        season=last_season,
        season_complete=complete,
        current_teams=sorted(str(t) for t in enc.teams[current]),
        teams=[str(t) for t in enc.teams],
        elo=[float(r) for r in ratings.elo],
        attack=[float(r) for r in ratings.attack],
        defence=[float(r) for r in ratings.defence],
        form=form.tolist(),
        state=[str(s) for s in club_state.to_numpy()],
        goal_rate_home=float(ratings.rate_home),
        goal_rate_away=float(ratings.rate_away),
        params=params,
    )
