"""Shared ML fixtures: one generated league per session (it takes about a second)."""

from pathlib import Path

import pandas as pd
import pytest

from ml.data import clean, read_raw
from ml.features import build_features
from ml.generate import write_league

SEED = 0


@pytest.fixture(scope="session")
def league_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic league, 2003-2024, as the CSV the generator writes."""
    path = tmp_path_factory.mktemp("league") / "campeonato-brasileiro-full.csv"
    write_league(path, seed=SEED)
    return path


@pytest.fixture(scope="session")
def league_raw(league_csv: Path) -> pd.DataFrame:
    """The CSV's text columns, as `read_raw` gives them (do not modify: copy first)."""
    return read_raw(league_csv)


@pytest.fixture(scope="session")
def matches(league_raw: pd.DataFrame) -> pd.DataFrame:
    """The cleaned, date-sorted matches with seasons."""
    return clean(league_raw)


@pytest.fixture(scope="session")
def features(matches: pd.DataFrame) -> pd.DataFrame:
    return build_features(matches)
