"""A synthetic Brasileirão in the public CSV format: seeded, reproducible, close to the real rates.

The real results file carries no license, so palpite ships this instead. What it models:
- clubs with attack/defence strengths that drift between seasons (mean-reverting) and,
  within a season, a short-term form that drifts round by round;
- goals from Poisson rates with a home advantage that grows with the visitors' travel
  (Brazil is large: Porto Alegre to Belém is over 3,000 km), tuned so home/draw/away and
  goals per match sit near the real league's (49.6% / 26.4% / 23.9%, about 2.45 goals);
- 24 clubs in 2003-2004, 22 in 2005, 20 from 2006; a double round robin; the bottom four
  go down and the best-placed second-division clubs come up (more or fewer to resize);
- the real calendar's quirks: seasons from about April to December, 2003 from March, the
  2020 season from August 2020 to February 2021, a World Cup break in June of World Cup
  years, matches of a round over several days, a few postponed matches played weeks later
  under their original round (so row IDs, which follow rounds, are not chronological);
- the file's own quirks: coaches empty before 2014, formations before 2015, arenas with a
  leading space now and then, and one row whose `vencedor` contradicts its score.
"""

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ml.clubs import CLUBS
from ml.errors import PalpiteError
from ml.fileio import atomic_output
from ml.geo import state_distance_km
from ml.rawformat import DATE_FORMAT, DRAW_MARK, RAW_COLUMNS

FIRST_SEASON = 2003
LAST_SEASON = 2024
RELEGATED = 4
FIRST_COACH_SEASON = 2014
FIRST_FORMATION_SEASON = 2015


_FIRST_NAMES = (
    "Abel", "Adilson", "Antônio", "Caio", "Celso", "Cuca", "Dorival", "Emerson", "Fábio",
    "Fernando", "Gilson", "Guto", "Jair", "Joel", "Lisca", "Luiz", "Marcelo", "Mano",
    "Marcão", "Milton", "Muricy", "Nelson", "Oswaldo", "Paulo", "Renato", "Roger",
    "Rogério", "Tite", "Vagner", "Zé",
)  # fmt: skip
_LAST_NAMES = (
    "Almeida", "Barbosa", "Batista", "Cardoso", "Carvalho", "Costa", "Dias", "Ferreira",
    "Gomes", "Lima", "Machado", "Martins", "Mendes", "Moreira", "Nunes", "Oliveira",
    "Pereira", "Ribeiro", "Rocha", "Santos", "Silva", "Souza", "Teixeira", "Vieira",
)  # fmt: skip
_FORMATIONS = ("4-2-3-1", "4-3-3", "4-4-2", "3-5-2", "4-1-4-1", "4-3-1-2", "3-4-3", "5-3-2")
_FORMATION_WEIGHTS = (0.34, 0.18, 0.16, 0.09, 0.09, 0.07, 0.04, 0.03)
_KICKOFFS = ("11:00", "16:00", "17:00", "18:30", "19:00", "19:30", "20:00", "21:00", "21:30")

# Goal model (log-rate units), tuned by measuring generated leagues (tests/unit/ml check it).
GOALS_PER_MATCH = 2.45  # the league's scoring level, before within-season form
_HOME_ADVANTAGE = 0.43  # between clubs of one state
_TRAVEL_EFFECT = 0.08  # more home advantage per 1000 km the visitors travelled
_BIG_CLUB_BONUS = 0.12
_CLUB_SPREAD = 0.25  # spread of clubs' long-run attack/defence means
_STYLE_SPREAD = 0.2
_SEASON_PERSISTENCE = 0.75  # share of last season's deviation kept
_SEASON_NOISE = 0.15
_FORM_PERSISTENCE = 0.90  # round-to-round
_FORM_NOISE = 0.04
_MAX_GOALS = 12
_POSTPONED_SHARE = 0.015
_ARENA_SPACE_SHARE = 0.08
_WORLD_CUP_BREAK_DAYS = 35


def teams_per_season(season: int) -> int:
    """24 clubs in 2003-2004, 22 in 2005, 20 from 2006 (as in the real league)."""
    if season <= 2004:
        return 24
    if season == 2005:
        return 22
    return 20


def _round_robin(teams: list[int], rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """Double round robin by the circle method; the second half mirrors the first."""
    order = [int(t) for t in rng.permutation(teams)]
    n = len(order)
    half: list[list[tuple[int, int]]] = []
    for r in range(n - 1):
        pairs = []
        for i in range(n // 2):
            a, b = order[i], order[n - 1 - i]
            # Alternate venues so no club plays at home every round.
            pairs.append((a, b) if (r + i) % 2 == 0 else (b, a))
        half.append(pairs)
        order = [order[0], order[-1], *order[1:-1]]
    return half + [[(b, a) for a, b in pairs] for pairs in half]


def _season_dates(
    season: int, rounds: int, previous_end: dt.date | None, rng: np.random.Generator
) -> list[dt.date]:
    """The first day of each round."""
    if season == 2003:
        start, end = dt.date(2003, 3, 29), dt.date(2003, 12, 14)
    elif season == 2020:  # the pandemic season: August 2020 to February 2021
        start, end = dt.date(2020, 8, 8), dt.date(2021, 2, 25)
    else:
        start = dt.date(season, 4, 20) + dt.timedelta(days=int(rng.integers(0, 28)))
        if previous_end is not None:
            start = max(start, previous_end + dt.timedelta(days=90))
        end = dt.date(season, 12, 2) + dt.timedelta(days=int(rng.integers(0, 10)))
    start += dt.timedelta(days=(5 - start.weekday()) % 7)  # a Saturday
    world_cup = season % 4 == 2
    break_from = dt.date(season, 6, 10)
    span = (end - start).days - (_WORLD_CUP_BREAK_DAYS if world_cup else 0)
    dates = []
    for r in range(rounds):
        day = start + dt.timedelta(days=int(r * span / (rounds - 1)))
        if world_cup and day >= break_from:
            day += dt.timedelta(days=_WORLD_CUP_BREAK_DAYS)
        dates.append(day)
    return dates


def _coach_name(rng: np.random.Generator) -> str:
    return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"


class _League:
    """Clubs' strengths and the simulation state carried from season to season."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        n = len(CLUBS)
        big = np.array([c.big for c in CLUBS], dtype=float)
        # Style: open clubs score and concede more (their matches draw less), cagey ones less.
        style = rng.normal(0, _STYLE_SPREAD, n)
        self.attack_mean = big * _BIG_CLUB_BONUS + rng.normal(0, _CLUB_SPREAD, n) + style
        self.defence_mean = big * _BIG_CLUB_BONUS + rng.normal(0, _CLUB_SPREAD, n) - style
        self.attack = self.attack_mean + rng.normal(0, _SEASON_NOISE, n)
        self.defence = self.defence_mean + rng.normal(0, _SEASON_NOISE, n)
        self.level = 0.0  # log scoring level, set per season by `calibrate`
        self.coach = [_coach_name(rng) for _ in range(n)]
        states = np.array([c.state for c in CLUBS], dtype=object)
        home, away = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        self.travel = state_distance_km(states[home.ravel()], states[away.ravel()]).reshape(n, n)
        self.travel /= 1000.0  # thousand km, club by club

    def drift(self) -> None:
        """Between seasons: strengths move toward each club's long-run mean, plus noise."""
        n = len(CLUBS)
        for cur, mean in ((self.attack, self.attack_mean), (self.defence, self.defence_mean)):
            noise = self.rng.normal(0, _SEASON_NOISE, n)
            cur[:] = mean + _SEASON_PERSISTENCE * (cur - mean) + noise

    def calibrate(self, members: list[int]) -> None:
        """Set the scoring level so the season's clubs average GOALS_PER_MATCH between them
        (without it, whichever clubs are up that year would set the league's goal rate)."""
        home, away = np.array([(h, a) for h in members for a in members if h != a]).T
        h_rate, a_rate = self._rates(home, away, np.zeros(len(CLUBS)), level=0.0)
        self.level = float(np.log(GOALS_PER_MATCH / np.mean(h_rate + a_rate)))

    def _rates(
        self, home: np.ndarray, away: np.ndarray, form: np.ndarray, level: float
    ) -> tuple[np.ndarray, np.ndarray]:
        advantage = _HOME_ADVANTAGE + _TRAVEL_EFFECT * self.travel[home, away]
        h_rate = np.exp(
            level + advantage + self.attack[home] + form[home] - self.defence[away] - form[away]
        )
        a_rate = np.exp(level + self.attack[away] + form[away] - self.defence[home] - form[home])
        return h_rate, a_rate

    def promote(self, outside: list[int], count: int) -> list[int]:
        """The second division's best clubs, by strength plus luck."""
        strength = self.attack[outside] + self.defence[outside]
        score = strength + self.rng.normal(0, 0.15, len(outside))
        return [outside[i] for i in np.argsort(-score)[:count]]

    def scores(self, home: np.ndarray, away: np.ndarray, form: np.ndarray) -> np.ndarray:
        """Sample (home goals, away goals) for a round's fixtures."""
        h_rate, a_rate = self._rates(home, away, form, self.level)
        goals = self.rng.poisson(np.stack([h_rate, a_rate], axis=1))
        return np.minimum(goals, _MAX_GOALS)


def _simulate(first_season: int, last_season: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    league = _League(rng)
    members = list(range(teams_per_season(first_season)))
    records: list[dict[str, object]] = []
    previous_end: dt.date | None = None
    for season in range(first_season, last_season + 1):
        if season > first_season:
            league.drift()
        league.calibrate(members)
        rounds = _round_robin(members, rng)
        round_dates = _season_dates(season, len(rounds), previous_end, rng)
        form = np.zeros(len(CLUBS))
        points = np.zeros(len(CLUBS))
        goal_diff = np.zeros(len(CLUBS))
        busy: set[tuple[int, dt.date]] = set()
        season_records = []
        for rnd, (pairs, day0) in enumerate(zip(rounds, round_dates, strict=True), start=1):
            form = _FORM_PERSISTENCE * form + rng.normal(0, _FORM_NOISE, len(CLUBS))
            if season >= FIRST_COACH_SEASON:
                for club in members:
                    if rng.random() < 0.012:  # the sack
                        league.coach[club] = _coach_name(rng)
            home = np.array([p[0] for p in pairs])
            away = np.array([p[1] for p in pairs])
            goals = league.scores(home, away, form)
            offsets = rng.choice(3, size=len(pairs), p=(0.35, 0.5, 0.15))
            for (h, a), (hg, ag), off in zip(pairs, goals, offsets, strict=True):
                day = day0 + dt.timedelta(days=int(off))
                busy.update({(h, day), (a, day)})
                points[h] += 3 if hg > ag else (1 if hg == ag else 0)
                points[a] += 3 if ag > hg else (1 if hg == ag else 0)
                goal_diff[h] += hg - ag
                goal_diff[a] += ag - hg
                season_records.append(
                    {"season": season, "round": rnd, "day": day, "home": h, "away": a,
                     "hg": int(hg), "ag": int(ag),
                     "coach_h": league.coach[h], "coach_a": league.coach[a]}
                )  # fmt: skip
        _postpone(season_records, busy, round_dates[-1], rng)
        records.extend(season_records)
        previous_end = max(r["day"] for r in season_records)
        # Promotion and relegation for the next season's size.
        table = sorted(members, key=lambda c: (points[c], goal_diff[c]), reverse=True)
        stay = table[: len(members) - RELEGATED]
        outside = [c for c in range(len(CLUBS)) if c not in members]
        up = league.promote(outside, teams_per_season(season + 1) - len(stay))
        members = stay + up
    return records


def _postpone(
    records: list[dict[str, object]],
    busy: set[tuple[int, dt.date]],
    last_day: dt.date,
    rng: np.random.Generator,
) -> None:
    """Move a few matches weeks later (keeping their round), on days both clubs are free."""
    for rec in records:
        if rng.random() >= _POSTPONED_SHARE:
            continue
        day = rec["day"]
        assert isinstance(day, dt.date)
        for _ in range(10):
            new_day = day + dt.timedelta(days=int(rng.integers(10, 45)))
            clear = all(
                (club, new_day + dt.timedelta(days=d)) not in busy
                for club in (rec["home"], rec["away"])
                for d in (-1, 0, 1)
            )
            if new_day <= last_day and clear:
                busy.difference_update({(rec["home"], day), (rec["away"], day)})
                busy.update({(rec["home"], new_day), (rec["away"], new_day)})
                rec["day"] = new_day
                break


def generate_league(
    first_season: int = FIRST_SEASON, last_season: int = LAST_SEASON, seed: int = 0
) -> pd.DataFrame:
    """The league as a table of strings, columns and formats exactly as in the public file."""
    if not 1900 <= first_season <= last_season <= 2999:
        raise PalpiteError(
            f"seasons must satisfy 1900 <= first <= last <= 2999, got {first_season}-{last_season}"
        )
    sim = pd.DataFrame(_simulate(first_season, last_season, seed))
    rng = np.random.default_rng([seed, 1])  # decoration only; results have their own stream
    # IDs follow season and round, in random order within a round: not chronological.
    sim["shuffle"] = rng.permutation(len(sim))
    sim = sim.sort_values(["season", "round", "shuffle"], ignore_index=True)
    n = len(sim)
    names = np.array([c.name for c in CLUBS], dtype=object)
    states = np.array([c.state for c in CLUBS], dtype=object)
    arenas = np.array([c.arena for c in CLUBS], dtype=object)
    home, away = sim["home"].to_numpy(), sim["away"].to_numpy()
    hg, ag = sim["hg"].to_numpy(), sim["ag"].to_numpy()
    coaches = (sim["season"] >= FIRST_COACH_SEASON).to_numpy()
    formations = (sim["season"] >= FIRST_FORMATION_SEASON).to_numpy()
    winner = np.where(hg > ag, names[home], np.where(ag > hg, names[away], DRAW_MARK))
    # Like the real file, one row's `vencedor` contradicts its own score.
    decided = np.flatnonzero(hg != ag)
    if len(decided):
        winner[rng.choice(decided)] = DRAW_MARK
    spaced = rng.random(n) < _ARENA_SPACE_SHARE
    table = {
        "ID": np.arange(1, n + 1).astype(str),
        "rodata": sim["round"].astype(str),
        "data": pd.to_datetime(sim["day"]).dt.strftime(DATE_FORMAT),
        "hora": rng.choice(_KICKOFFS, size=n),
        "mandante": names[home],
        "visitante": names[away],
        "formacao_mandante": np.where(formations, _formations(rng, n), ""),
        "formacao_visitante": np.where(formations, _formations(rng, n), ""),
        "tecnico_mandante": np.where(coaches, sim["coach_h"], ""),
        "tecnico_visitante": np.where(coaches, sim["coach_a"], ""),
        "vencedor": winner,
        "arena": np.where(spaced, " ", "") + arenas[home],
        "mandante_Placar": hg.astype(str),
        "visitante_Placar": ag.astype(str),
        "mandante_Estado": states[home],
        "visitante_Estado": states[away],
    }
    return pd.DataFrame({col: pd.array(np.asarray(table[col]), dtype="str") for col in RAW_COLUMNS})


def _formations(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(_FORMATIONS, size=n, p=_FORMATION_WEIGHTS)


def write_league(
    path: Path, first_season: int = FIRST_SEASON, last_season: int = LAST_SEASON, seed: int = 0
) -> int:
    """Write the league CSV atomically (every field double-quoted); return the row count."""
    table = generate_league(first_season, last_season, seed)
    with atomic_output(Path(path)) as tmp:
        table.to_csv(tmp, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")
    return len(table)
