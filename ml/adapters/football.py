"""The `football` adapter: two team names per fixture to the model's features.

It holds the bundle's team-state snapshot and computes features with
`ml.team_state.TeamState.fixtures`, which goes through the same `assemble` function as
training: there is no second implementation of the features to drift out of step.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from ml.adapters import AdapterError
from ml.errors import PalpiteError
from ml.features import FEATURE_CODE_VERSION, FEATURE_NAMES
from ml.team_state import TeamState

STATE_FILE = "team_state.json"  # under the bundle's adapter/ directory
FIELDS = ("home_team", "away_team")
_LABELS = {"home_team": "Home team", "away_team": "Away team"}


def input_schema(state: TeamState) -> dict[str, Any]:
    """The card's input schema: two distinct clubs of the latest season in the data."""
    return {
        "kind": "record",
        "fields": [
            {"name": name, "type": "string", "label": _LABELS[name], "enum": state.current_teams}
            for name in FIELDS
        ],
        "distinct": [list(FIELDS)],
    }


def state_file_bytes(state: TeamState) -> bytes:
    """The snapshot as the bundle stores it (floats round-trip exactly through JSON)."""
    return json.dumps(state.to_dict(), indent=1, ensure_ascii=False).encode("utf-8")


class FootballAdapter:
    kind: ClassVar[str] = "football"
    feature_code_version: ClassVar[int | None] = FEATURE_CODE_VERSION

    def __init__(self, state: TeamState) -> None:
        self.state = state

    @classmethod
    def load(cls, bundle_dir: Path, card: Mapping[str, Any]) -> Self:
        # Same feature-code version should mean the same columns; say so if it does not.
        if list(card.get("feature_names", [])) != list(FEATURE_NAMES):
            raise AdapterError(
                f"football adapter: the card's feature_names {card.get('feature_names')} are"
                f" not this host's {list(FEATURE_NAMES)}"
            )
        path = Path(bundle_dir) / "adapter" / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AdapterError(f"football adapter: cannot read {path}: {exc}") from exc
        try:
            return cls(TeamState.from_dict(data))
        except PalpiteError as exc:
            raise AdapterError(f"football adapter: {exc}") from exc

    def transform(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        missing = [name for name in FIELDS if name not in columns]
        if missing:
            raise AdapterError(f"missing input {', '.join(repr(m) for m in missing)}")
        home, away = (columns[name] for name in FIELDS)
        if isinstance(home, str) or isinstance(away, str) or len(home) != len(away):
            raise AdapterError("home_team and away_team must be lists of the same length")
        try:
            return self.state.fixtures(home, away)
        except PalpiteError as exc:
            raise AdapterError(str(exc)) from exc
