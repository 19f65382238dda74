"""Read, validate and clean a results CSV in the public format; infer its seasons.

The cleaned table ("matches") has one row per match, sorted by date, with English column
names, the outcome derived from the scores (not from `vencedor`, which the real file
sometimes contradicts) and a season label inferred from the calendar.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ml.errors import PalpiteError
from ml.progress import info
from ml.rawformat import DATE_FORMAT, DRAW_MARK

# Outcome classes in their natural order (the ranked probability score relies on it).
CLASSES: tuple[str, ...] = ("home_win", "draw", "away_win")
CLASS_LABELS: dict[str, str] = {"home_win": "Home win", "draw": "Draw", "away_win": "Away win"}

# Between seasons the league rests three months or more; inside one, the longest breaks
# (World Cups) last about five weeks.
SEASON_GAP_DAYS = 60

REQUIRED_COLUMNS: tuple[str, ...] = (
    "ID",
    "rodata",
    "data",
    "mandante",
    "visitante",
    "mandante_Placar",
    "visitante_Placar",
)
# Used when present; absent ones become empty text.
OPTIONAL_COLUMNS: dict[str, str] = {
    "hora": "kickoff",
    "arena": "arena",
    "vencedor": "winner_as_given",
    "mandante_Estado": "home_state",
    "visitante_Estado": "away_state",
    "tecnico_mandante": "home_coach",
    "tecnico_visitante": "away_coach",
    "formacao_mandante": "home_formation",
    "formacao_visitante": "away_formation",
}

# The cleaned table's columns, in order.
MATCH_COLUMNS: tuple[str, ...] = (
    "match_id",
    "season",
    "round",
    "date",
    "kickoff",
    "home_team",
    "away_team",
    "home_goals",
    "away_goals",
    "outcome",
    "arena",
    "home_state",
    "away_state",
    "home_coach",
    "away_coach",
    "home_formation",
    "away_formation",
)

_MAX_EXAMPLES = 3


class DataError(PalpiteError):
    """The results file cannot be used as it is; the message names the offending rows."""


def read_raw(path: Path) -> pd.DataFrame:
    """The CSV as text columns (nothing parsed yet), with surrounding spaces stripped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=False
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV file ({first_line})") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing columns: {', '.join(missing)}")
    if raw.empty:
        raise DataError(f"{path}: no matches (only a header)")
    return raw.apply(lambda col: col.str.strip())


def _describe(raw: pd.DataFrame, mask: np.ndarray, shown: Sequence[str]) -> str:
    """Name the rows in `mask`: "line 5 (ID '17', mandante='X'), … and 4 more"."""
    rows = np.flatnonzero(mask)
    parts = []
    for i in rows[:_MAX_EXAMPLES]:
        values = "".join(f", {c}={raw.at[i, c]!r}" for c in shown)
        parts.append(f"line {i + 2} (ID {raw.at[i, 'ID']!r}{values})")  # line 1 is the header
    more = f" and {len(rows) - _MAX_EXAMPLES} more" if len(rows) > _MAX_EXAMPLES else ""
    return ", ".join(parts) + more


def _integers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Values and validity of text that must be a plain (optionally signed) integer."""
    ok = text.str.fullmatch(r"[+-]?\d{1,9}").to_numpy(dtype=bool)
    values = np.zeros(len(text), dtype=np.int64)
    values[ok] = text[ok].astype(np.int64).to_numpy()
    return values, ok


def validate_and_parse(raw: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Check every row; return the parsed, cleaned table (unsorted, no season yet).

    Every kind of bad row is reported in one message, each naming its first rows.
    """
    problems: list[str] = []

    def flag(mask: np.ndarray, what: str, shown: Sequence[str]) -> None:
        if mask.any():
            count = int(mask.sum())
            rows = "1 row" if count == 1 else f"{count} rows"
            problems.append(f"{rows} {what}: {_describe(raw, mask, shown)}")

    ids, id_ok = _integers(raw["ID"])
    flag(~id_ok, "with an unparseable ID", [])
    dup = id_ok & pd.Series(ids).where(id_ok).duplicated(keep=False).to_numpy()
    flag(dup, "sharing an ID", [])
    rounds, round_ok = _integers(raw["rodata"])
    flag(~round_ok | (rounds < 1), "with an unparseable round (rodata)", ["rodata"])
    dates = pd.to_datetime(raw["data"], format=DATE_FORMAT, errors="coerce")
    flag(dates.isna().to_numpy(), "with an unparseable date (want dd/mm/yyyy)", ["data"])
    home_goals, hg_ok = _integers(raw["mandante_Placar"])
    away_goals, ag_ok = _integers(raw["visitante_Placar"])
    scores = ["mandante_Placar", "visitante_Placar"]
    flag(~(hg_ok & ag_ok), "with an unparseable score", scores)
    negative = (hg_ok & (home_goals < 0)) | (ag_ok & (away_goals < 0))
    flag(negative, "with a negative score", scores)
    home, away = raw["mandante"], raw["visitante"]
    teams = ["mandante", "visitante"]
    flag(((home == "") | (away == "")).to_numpy(), "without a team name", teams)
    flag(((home == away) & (home != "")).to_numpy(), "where a team plays itself", teams)
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems))

    home_win, draw, away_win = CLASSES
    outcome = np.where(
        home_goals > away_goals, home_win, np.where(home_goals == away_goals, draw, away_win)
    )
    table = pd.DataFrame(
        {
            "match_id": ids,
            "round": rounds,
            "date": dates.dt.normalize(),
            "home_team": home,
            "away_team": away,
            "home_goals": home_goals,
            "away_goals": away_goals,
            "outcome": pd.array(outcome, dtype="str"),
        }
    )
    for column, name in OPTIONAL_COLUMNS.items():
        table[name] = raw[column] if column in raw.columns else pd.Series("", index=raw.index)
    _note_contradictions(raw, table)
    return table


def _note_contradictions(raw: pd.DataFrame, table: pd.DataFrame) -> None:
    """Say (on stderr) which rows' `vencedor` disagrees with their score; the score wins."""
    given = table["winner_as_given"]
    if (given == "").all():
        return
    expected = np.where(
        table["outcome"] == CLASSES[0],
        table["home_team"],
        np.where(table["outcome"] == CLASSES[2], table["away_team"], DRAW_MARK),
    )
    mask = ((given != "") & (given != expected)).to_numpy()
    if mask.any():
        rows = _describe(raw, mask, ["vencedor", "mandante_Placar", "visitante_Placar"])
        count = int(mask.sum())
        what = "row's vencedor contradicts" if count == 1 else "rows' vencedor contradict"
        info(f"note: {count} {what} the score (palpite uses the score): {rows}")


def expected_rounds(n_teams: int) -> int:
    """Rounds of a double round robin (with byes when the count is odd)."""
    return 2 * (n_teams - 1) if n_teams % 2 == 0 else 2 * n_teams


def infer_seasons(dates: pd.Series) -> np.ndarray:
    """Season labels for date-sorted matches: a gap over SEASON_GAP_DAYS starts a new season.

    A season is labelled with the year of its first match (the 2020 season, played from
    August 2020 to February 2021, is 2020); labels always increase.
    """
    days = dates.to_numpy().astype("datetime64[D]").astype(np.int64)
    if len(days) and np.any(np.diff(days) < 0):
        raise ValueError("infer_seasons needs matches sorted by date")
    new_season = np.concatenate([[True], np.diff(days) > SEASON_GAP_DAYS])
    starts = np.flatnonzero(new_season)
    labels = []
    for start in starts:
        year = int(dates.iloc[start].year)
        labels.append(max(year, labels[-1] + 1) if labels else year)
    return np.repeat(labels, np.diff(np.append(starts, len(days))))


def check_seasons(matches: pd.DataFrame) -> None:
    """Cross-check the calendar's seasons against the round numbers.

    A merged pair of seasons shows more matches per round (or more rounds) than its clubs
    can play (the median round is used, so a stray row does not count); a split season
    shows a part that does not start at round 1 or stops short of the last round. The
    file's first season may start late and its last may be unfinished.
    """
    seasons = matches.groupby("season", sort=True)
    labels = list(seasons.groups)
    for pos, (label, group) in enumerate(seasons):
        n_teams = len(pd.unique(pd.concat([group["home_team"], group["away_team"]])))
        full = expected_rounds(n_teams)
        first, last = int(group["round"].min()), int(group["round"].max())
        span = f"{group['date'].min():%Y-%m-%d} to {group['date'].max():%Y-%m-%d}"
        hint = f"seasons are split at gaps of more than {SEASON_GAP_DAYS} days between matches"
        per_round = int(group.groupby("round").size().median())
        if last > full or per_round > n_teams // 2:
            raise DataError(
                f"season {label} ({span}) has rounds up to {last} of about {per_round} matches,"
                f" but its {n_teams} teams play {full} rounds of {n_teams // 2}: two seasons"
                f" run together? ({hint})"
            )
        if first != 1 and pos > 0:
            raise DataError(
                f"season {label} ({span}) starts at round {first}, not 1: a season split "
                f"in two? ({hint})"
            )
        if last != full and pos < len(labels) - 1:
            raise DataError(
                f"season {label} ({span}) ends at round {last} of {full}: a season split "
                f"in two? ({hint})"
            )


def clean(raw: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Validated raw rows to the cleaned, date-sorted matches table with seasons."""
    table = validate_and_parse(raw, source)
    table = table.sort_values(["date", "kickoff", "match_id"], kind="stable", ignore_index=True)
    table["season"] = infer_seasons(table["date"])
    check_seasons(table)
    return table.loc[:, list(MATCH_COLUMNS)]


def load_matches(path: Path) -> pd.DataFrame:
    """Cleaned matches from a raw CSV, or from a table `process` wrote (.parquet)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return _read_processed(path)
    return clean(read_raw(path), source=str(path))


def _read_processed(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    missing = [c for c in MATCH_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: not a table from `process` (missing: {', '.join(missing)})")
    return table.loc[:, list(MATCH_COLUMNS)]
