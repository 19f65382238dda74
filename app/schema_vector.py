"""The `vector` input schema: a fixed-length numeric array per instance."""

import math
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from app.errors import FieldError
from app.schema_common import (
    JSON_NUMBER_TYPES,
    Columns,
    ErrorSink,
    FormField,
    Loc,
    check_rows,
    describe,
    is_number,
    parse_form_number,
)


class VectorSchema:
    """A numeric feature vector: `{"features": [1.0, 2.0, 3.0, 4.0]}`."""

    kind = "vector"

    def __init__(self, raw: Mapping[str, Any]) -> None:
        """`raw`: a vector schema ml.card.check_input_schema accepted (compile_schema)."""
        self.name: str = raw["name"]
        self.length: int = raw["length"]
        self.feature_names: list[str] = list(raw["feature_names"])
        self.example = {self.name: [float(i + 1) for i in range(self.length)]}

    def validate(self, instances: Sequence[Any], loc: Loc) -> Columns:
        matrix = self._fast(instances)
        if matrix is None:
            check_rows(self._check_row, instances, loc)
            raise AssertionError("fast and slow validation disagree")
        return {self.name: matrix}

    def _fast(self, instances: Sequence[Any]) -> np.ndarray | None:
        if set(map(type, instances)) != {dict} or set(map(len, instances)) != {1}:
            return None
        try:
            rows = list(map(itemgetter(self.name), instances))
        except KeyError:
            return None
        if set(map(type, rows)) != {list} or set(map(len, rows)) != {self.length}:
            return None
        if not set(map(type, chain.from_iterable(rows))) <= JSON_NUMBER_TYPES:
            return None
        try:
            matrix = np.array(rows, dtype=np.float64)
        except OverflowError:  # an integer beyond float range
            return None
        if not np.isfinite(matrix).all():
            return None
        return matrix

    def every_instance(self, limit: int) -> list[dict[str, Any]] | None:
        return None  # numbers: no finite set

    def single_row(self, instance: Any) -> list[float] | None:
        """`_fast`'s checks for one instance, in plain Python."""
        if type(instance) is not dict or len(instance) != 1:
            return None
        row = instance.get(self.name)
        if type(row) is not list or len(row) != self.length:
            return None
        if not set(map(type, row)) <= JSON_NUMBER_TYPES:
            return None
        try:
            floats = list(map(float, row))
        except OverflowError:  # an integer beyond float range
            return None
        return floats if all(map(math.isfinite, floats)) else None

    def _check_row(self, inst: Any, loc: Loc, sink: ErrorSink) -> None:
        if not isinstance(inst, dict):
            sink.add(FieldError(loc, f"must be an object, got {describe(inst)}", "object"))
            return
        for key in inst.keys() - {self.name}:
            sink.add(FieldError((*loc, key), "unexpected field", "extra_forbidden"))
        if self.name not in inst:
            sink.add(FieldError((*loc, self.name), "field required", "missing"))
            return
        row, row_loc = inst[self.name], (*loc, self.name)
        if not isinstance(row, list):
            sink.add(FieldError(row_loc, f"must be an array, got {describe(row)}", "array"))
            return
        if len(row) != self.length:
            sink.add(
                FieldError(row_loc, f"must have {self.length} numbers, got {len(row)}", "length")
            )
        for j, value in enumerate(row):
            if not is_number(value):
                msg = (
                    "must be a finite number"
                    if type(value) in JSON_NUMBER_TYPES
                    else f"must be a number, got {describe(value)}"
                )
                sink.add(FieldError((*row_loc, j), msg, "number"))
        # An int too large for a float64 is finite as a Python int but not as a feature.
        if sink.total == 0 and any(abs(v) > np.finfo(np.float64).max for v in row):
            sink.add(FieldError(row_loc, "numbers must fit a 64-bit float", "number"))

    def instance_json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                self.name: {
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": self.length,
                    "maxItems": self.length,
                    "description": "Features in order: " + ", ".join(self.feature_names),
                }
            },
            "required": [self.name],
            "additionalProperties": False,
            "example": self.example,
        }

    def form_fields(self) -> list[FormField]:
        return [FormField(self.name, label, "number") for label in self.feature_names]

    def instance_from_form(self, form: Mapping[str, list[str]]) -> dict[str, Any]:
        sink = ErrorSink()
        values = form.get(self.name) or []
        if len(values) != self.length:
            sink.add(FieldError((self.name,), f"must have {self.length} numbers", "length"))
        row: list[float | str] = []
        for j, raw in enumerate(values):
            if raw == "":
                sink.add(FieldError((self.name, j), "field required", "missing"))
            else:
                row.append(parse_form_number(raw, (self.name, j), sink))
        sink.raise_if_any()
        return {self.name: row}
