"""The `vector` adapter: each instance is already the estimator's numeric feature row."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from ml.adapters import AdapterError


class VectorAdapter:
    kind: ClassVar[str] = "vector"
    feature_code_version: ClassVar[int | None] = None

    def __init__(self, name: str, length: int) -> None:
        self.name = name
        self.length = length

    @classmethod
    def load(cls, bundle_dir: Path, card: Mapping[str, Any]) -> Self:
        schema = card["input_schema"]
        return cls(schema["name"], int(schema["length"]))

    def transform(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        if self.name not in columns:
            raise AdapterError(f"missing input {self.name!r}")
        try:
            matrix = np.asarray(columns[self.name], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise AdapterError(f"{self.name!r} must be numbers: {exc}") from exc
        if matrix.ndim != 2 or matrix.shape[1] != self.length:
            raise AdapterError(
                f"{self.name!r} must be rows of {self.length} numbers, got shape {matrix.shape}"
            )
        if not np.isfinite(matrix).all():
            raise AdapterError(f"{self.name!r} must be finite numbers (no NaN or infinity)")
        return matrix
