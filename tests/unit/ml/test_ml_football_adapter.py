"""The football adapter on its own: loading its snapshot, and refusing what it cannot use."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.adapters import AdapterError, adapter_class
from ml.adapters.football import (
    STATE_FILE,
    FootballAdapter,
    input_schema,
    state_file_bytes,
)
from ml.features import FEATURE_CODE_VERSION, FEATURE_NAMES
from ml.team_state import TeamState, team_state

CARD = {"feature_names": list(FEATURE_NAMES)}


@pytest.fixture(scope="module")
def state(matches: pd.DataFrame) -> TeamState:
    return team_state(matches)


def write_state(bundle: Path, content: bytes) -> Path:
    (bundle / "adapter").mkdir(parents=True)
    (bundle / "adapter" / STATE_FILE).write_bytes(content)
    return bundle


def test_registered_for_football_bundles() -> None:
    assert adapter_class("football") is FootballAdapter
    assert FootballAdapter.feature_code_version == FEATURE_CODE_VERSION


def test_load_and_transform(state: TeamState, tmp_path: Path) -> None:
    adapter = FootballAdapter.load(write_state(tmp_path, state_file_bytes(state)), CARD)
    home, away = state.current_teams[:3], state.current_teams[1:4]
    x = adapter.transform({"home_team": home, "away_team": away})
    assert np.array_equal(x, state.fixtures(home, away))
    assert x.shape == (3, len(FEATURE_NAMES))


def test_schema_lists_the_last_seasons_clubs(state: TeamState) -> None:
    schema = input_schema(state)
    assert [f["enum"] for f in schema["fields"]] == [state.current_teams] * 2
    assert schema["distinct"] == [["home_team", "away_team"]]


@pytest.mark.parametrize(
    ("content", "card", "message"),
    [
        (None, CARD, "cannot read"),
        (b"{not json", CARD, "cannot read"),
        (b'{"feature_code_version": 0}', CARD, "feature code version 0, this installation"),
        (b"[]", CARD, "feature code version None"),
        (b"{}", {"feature_names": ["x"]}, "feature_names \\['x'\\] are not this host's"),
    ],
)
def test_load_refuses_unusable_state(
    content: bytes | None, card: dict, message: str, tmp_path: Path
) -> None:
    bundle = write_state(tmp_path, content) if content is not None else tmp_path
    with pytest.raises(AdapterError, match=message):
        FootballAdapter.load(bundle, card)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"home_team": ["Flamengo"]}, "missing input 'away_team'"),
        ({"home_team": ["Flamengo"], "away_team": []}, "same length"),
        ({"home_team": [["Flamengo"]], "away_team": [["Santos"]]}, "unknown team"),
        ({"home_team": [1], "away_team": ["Santos"]}, "unknown team"),
        ({"home_team": [{"x": 1}], "away_team": ["Santos"]}, "unknown team"),
    ],
)
def test_transform_refuses_bad_columns(state: TeamState, columns: dict, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        FootballAdapter(state).transform(columns)


def test_snapshot_file_round_trips_exactly(state: TeamState) -> None:
    again = TeamState.from_dict(json.loads(state_file_bytes(state)))
    assert again == state
