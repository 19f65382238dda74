"""A test-only `record` adapter: two team names and a number to a 3-column matrix.

It lets the app tests exercise record schemas (enums, distinct fields, number bounds)
with no football code. Registered in ml.adapters.ADAPTERS by conftest.py.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

TEAMS = ["Flamengo", "Palmeiras", "São Paulo", "Atlético Mineiro", "Grêmio", "Santos"]


class RecordAdapter:
    kind: ClassVar[str] = "test-record"
    feature_code_version: ClassVar[int | None] = None

    def __init__(self, teams: Sequence[str]) -> None:
        self.index = {team: i for i, team in enumerate(teams)}

    @classmethod
    def load(cls, bundle_dir: Path, card: Mapping[str, Any]) -> Self:
        fields = {f["name"]: f for f in card["input_schema"]["fields"]}
        return cls(fields["home_team"]["enum"])

    def transform(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        home = [self.index[t] for t in columns["home_team"]]
        away = [self.index[t] for t in columns["away_team"]]
        if "temperature" not in columns:  # the pairs-only schema (conftest.pairs_bundle)
            return np.column_stack([home, away]).astype(np.float64)
        temperature = np.asarray(columns["temperature"], dtype=np.float64)
        return np.column_stack([home, away, temperature]).astype(np.float64)
