"""Request validation, JSON Schema and form fields, all derived from a bundle's input schema.

The service knows no model: a bundle's `input_schema` (docs/bundle.md) is either a
`record` of named string/number fields or a numeric `vector`. Validation is column-wise:
a batch is checked with a few set and numpy operations per field, and only a batch that
fails those checks is walked row by row to say which rows and fields are wrong.
"""

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, combinations
from operator import itemgetter
from typing import Any, Protocol

import numpy as np

from app.errors import MAX_LISTED_ERRORS, FieldError
from app.suggest import Suggester

Loc = tuple[str | int, ...]
Columns = dict[str, Any]
_NUMBER_TYPES = frozenset({int, float})


class SchemaError(ValueError):
    """The bundle's input schema is not one this service understands."""


class InvalidInputError(Exception):
    def __init__(self, errors: list[FieldError], total: int) -> None:
        super().__init__(f"{total} invalid value(s)")
        self.errors = errors
        self.total = total


class _ErrorSink:
    """Collects field errors, keeping only the first few but counting all."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.total = 0

    def add(self, error: FieldError) -> None:
        self.total += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(error)

    def raise_if_any(self) -> None:
        if self.total:
            raise InvalidInputError(self.errors, self.total)


@dataclass(frozen=True)
class FormField:
    """One control of the HTML form."""

    name: str
    label: str
    kind: str  # "select", "text" or "number"
    options: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


class InputSchema(Protocol):
    kind: str
    example: dict[str, Any]

    def validate(self, instances: Sequence[Any], loc: Loc) -> Columns:
        """Column-wise, validated instances; InvalidInputError with field errors otherwise."""
        ...

    def instance_json_schema(self) -> dict[str, Any]: ...

    def form_fields(self) -> list[FormField]: ...

    def instance_from_form(self, form: Mapping[str, list[str]]) -> dict[str, Any]:
        """An instance from form values (numbers parsed); InvalidInputError if unparseable."""
        ...


def _check_rows(
    check_row: Callable[[Any, Loc, _ErrorSink], None], instances: Sequence[Any], loc: Loc
) -> None:
    """The slow path: every instance checked, every field error collected, then raised."""
    sink = _ErrorSink()
    for i, inst in enumerate(instances):
        check_row(inst, (*loc, i) if loc else (), sink)
    sink.raise_if_any()


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but `true` is not a number in a JSON request.
    return type(value) in _NUMBER_TYPES and math.isfinite(value)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _parse_form_number(raw: str, loc: Loc, sink: _ErrorSink) -> float | str:
    try:
        value = float(raw)
    except ValueError:
        sink.add(FieldError(loc, f"{raw!r} is not a number", "number"))
        return raw
    if not math.isfinite(value):
        sink.add(FieldError(loc, "must be a finite number", "finite_number"))
    return value


@dataclass(frozen=True)
class _Field:
    name: str
    type: str
    label: str
    enum: tuple[str, ...] | None
    minimum: float | None
    maximum: float | None

    @classmethod
    def parse(cls, raw: Any) -> "_Field":
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise SchemaError(f"record field without a name: {raw!r}")
        ftype = raw.get("type")
        if ftype not in ("string", "number"):
            raise SchemaError(f"field {raw['name']!r}: unsupported type {ftype!r}")
        enum = raw.get("enum")
        if enum is not None and (
            ftype != "string" or not enum or not all(isinstance(v, str) for v in enum)
        ):
            raise SchemaError(f"field {raw['name']!r}: enum must be a non-empty list of strings")
        return cls(
            name=raw["name"],
            type=ftype,
            label=str(raw.get("label") or raw["name"]),
            enum=tuple(enum) if enum is not None else None,
            minimum=raw.get("minimum"),
            maximum=raw.get("maximum"),
        )


class RecordSchema:
    """Named fields: `{"home_team": "Flamengo", "away_team": "Palmeiras"}`."""

    kind = "record"

    def __init__(self, raw: Mapping[str, Any]) -> None:
        fields = raw.get("fields")
        if not isinstance(fields, list) or not fields:
            raise SchemaError("record schema needs a non-empty 'fields' list")
        self.fields = [_Field.parse(f) for f in fields]
        self.names = [f.name for f in self.fields]
        if len(set(self.names)) != len(self.names):
            raise SchemaError("record schema has duplicate field names")
        if "instances" in self.names:
            raise SchemaError("'instances' cannot be a field name: it marks a batch")
        self.distinct: list[tuple[str, ...]] = []
        for group in raw.get("distinct") or []:
            if not isinstance(group, list) or not set(group) <= set(self.names):
                raise SchemaError(f"distinct group {group!r} names unknown fields")
            self.distinct.append(tuple(group))
        self._enum_sets = {f.name: frozenset(f.enum) for f in self.fields if f.enum}
        self._suggesters = {f.name: Suggester(f.enum) for f in self.fields if f.enum}
        self.example = self._example()

    def _example(self) -> dict[str, Any]:
        example: dict[str, Any] = {}
        for f in self.fields:
            if f.enum:
                # Distinct fields get different values, so the example is a valid request.
                taken = {
                    example[g]
                    for grp in self.distinct
                    if f.name in grp
                    for g in grp
                    if g in example
                }
                example[f.name] = next((v for v in f.enum if v not in taken), f.enum[0])
            elif f.type == "string":
                example[f.name] = "text"
            else:
                example[f.name] = f.minimum if f.minimum is not None else 0.0
        return example

    # -- validation ---------------------------------------------------------------------

    def validate(self, instances: Sequence[Any], loc: Loc) -> Columns:
        columns = self._fast(instances)
        if columns is None:
            _check_rows(self._check_row, instances, loc)
            # The slow path found nothing the fast path disliked: cannot happen unless
            # they disagree, which would be a bug worth a loud failure.
            raise AssertionError("fast and slow validation disagree")
        return columns

    def _fast(self, instances: Sequence[Any]) -> Columns | None:
        if set(map(type, instances)) != {dict} or set(map(len, instances)) != {len(self.names)}:
            return None
        columns: Columns = {}
        try:
            for f in self.fields:
                columns[f.name] = list(map(itemgetter(f.name), instances))
        except KeyError:
            return None
        for f in self.fields:
            col = columns[f.name]
            if f.type == "string":
                if set(map(type, col)) != {str}:
                    return None
                if f.enum and not set(col) <= self._enum_sets[f.name]:
                    return None
            else:
                if not set(map(type, col)) <= _NUMBER_TYPES:
                    return None
                values = np.asarray(col, dtype=np.float64)
                if not np.isfinite(values).all():
                    return None
                if f.minimum is not None and (values < f.minimum).any():
                    return None
                if f.maximum is not None and (values > f.maximum).any():
                    return None
                columns[f.name] = values
        for group in self.distinct:
            for a, b in combinations(group, 2):
                if any(map(operator.eq, columns[a], columns[b])):
                    return None
        return columns

    def _check_row(self, inst: Any, loc: Loc, sink: _ErrorSink) -> None:
        if not isinstance(inst, dict):
            sink.add(FieldError(loc, f"must be an object, got {_describe(inst)}", "object"))
            return
        for key in inst.keys() - set(self.names):
            sink.add(FieldError((*loc, key), "unexpected field", "extra_forbidden"))
        for f in self.fields:
            if f.name not in inst:
                sink.add(FieldError((*loc, f.name), "field required", "missing"))
                continue
            self._check_value(f, inst[f.name], (*loc, f.name), sink)
        for group in self.distinct:
            for a, b in combinations(group, 2):
                if a in inst and b in inst and inst[a] == inst[b]:
                    sink.add(FieldError((*loc, b), f"must differ from {a!r}", "distinct"))

    def _check_value(self, f: _Field, value: Any, loc: Loc, sink: _ErrorSink) -> None:
        if f.type == "string":
            if type(value) is not str:
                sink.add(FieldError(loc, f"must be a string, got {_describe(value)}", "string"))
            elif f.enum and value not in self._enum_sets[f.name]:
                sink.add(
                    FieldError(
                        loc,
                        f"unknown value {value!r}",
                        "enum",
                        tuple(self._suggesters[f.name].suggest(value)),
                    )
                )
            return
        if type(value) not in _NUMBER_TYPES:
            sink.add(FieldError(loc, f"must be a number, got {_describe(value)}", "number"))
        elif not math.isfinite(value):
            sink.add(FieldError(loc, "must be a finite number", "finite_number"))
        elif f.minimum is not None and value < f.minimum:
            sink.add(FieldError(loc, f"must be >= {f.minimum}", "minimum"))
        elif f.maximum is not None and value > f.maximum:
            sink.add(FieldError(loc, f"must be <= {f.maximum}", "maximum"))

    # -- OpenAPI and form ---------------------------------------------------------------

    def instance_json_schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for f in self.fields:
            prop: dict[str, Any] = {"type": f.type, "title": f.label}
            if f.enum:
                prop["enum"] = list(f.enum)
            if f.minimum is not None:
                prop["minimum"] = f.minimum
            if f.maximum is not None:
                prop["maximum"] = f.maximum
            props[f.name] = prop
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "required": list(self.names),
            "additionalProperties": False,
            "example": self.example,
        }
        if self.distinct:
            groups = "; ".join(", ".join(g) for g in self.distinct)
            schema["description"] = f"These fields must differ: {groups}."
        return schema

    def form_fields(self) -> list[FormField]:
        out = []
        for f in self.fields:
            if f.enum:
                out.append(FormField(f.name, f.label, "select", f.enum))
            elif f.type == "string":
                out.append(FormField(f.name, f.label, "text"))
            else:
                out.append(FormField(f.name, f.label, "number", (), f.minimum, f.maximum))
        return out

    def instance_from_form(self, form: Mapping[str, list[str]]) -> dict[str, Any]:
        sink = _ErrorSink()
        inst: dict[str, Any] = {}
        for f in self.fields:
            values = form.get(f.name) or []
            if not values or values[0] == "":
                sink.add(FieldError((f.name,), "field required", "missing"))
                continue
            inst[f.name] = (
                values[0] if f.type == "string" else _parse_form_number(values[0], (f.name,), sink)
            )
        sink.raise_if_any()
        return inst


class VectorSchema:
    """A numeric feature vector: `{"features": [1.0, 2.0, 3.0, 4.0]}`."""

    kind = "vector"

    def __init__(self, raw: Mapping[str, Any]) -> None:
        name, length = raw.get("name"), raw.get("length")
        if not isinstance(name, str) or not name or name == "instances":
            raise SchemaError(f"vector schema needs a 'name' (not 'instances'), got {name!r}")
        if type(length) is not int or length < 1:
            raise SchemaError(f"vector schema needs a positive integer 'length', got {length!r}")
        self.name = name
        self.length = length
        names = raw.get("feature_names") or [f"x{i}" for i in range(length)]
        if len(names) != length:
            raise SchemaError(f"vector schema: {len(names)} feature_names for length {length}")
        self.feature_names = [str(n) for n in names]
        self.example = {name: [float(i + 1) for i in range(length)]}

    def validate(self, instances: Sequence[Any], loc: Loc) -> Columns:
        matrix = self._fast(instances)
        if matrix is None:
            _check_rows(self._check_row, instances, loc)
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
        if not set(map(type, chain.from_iterable(rows))) <= _NUMBER_TYPES:
            return None
        try:
            matrix = np.array(rows, dtype=np.float64)
        except OverflowError:  # an integer beyond float range
            return None
        if not np.isfinite(matrix).all():
            return None
        return matrix

    def _check_row(self, inst: Any, loc: Loc, sink: _ErrorSink) -> None:
        if not isinstance(inst, dict):
            sink.add(FieldError(loc, f"must be an object, got {_describe(inst)}", "object"))
            return
        for key in inst.keys() - {self.name}:
            sink.add(FieldError((*loc, key), "unexpected field", "extra_forbidden"))
        if self.name not in inst:
            sink.add(FieldError((*loc, self.name), "field required", "missing"))
            return
        row, row_loc = inst[self.name], (*loc, self.name)
        if not isinstance(row, list):
            sink.add(FieldError(row_loc, f"must be an array, got {_describe(row)}", "array"))
            return
        if len(row) != self.length:
            sink.add(
                FieldError(row_loc, f"must have {self.length} numbers, got {len(row)}", "length")
            )
        for j, value in enumerate(row):
            if not _is_number(value):
                msg = (
                    "must be a finite number"
                    if type(value) in _NUMBER_TYPES
                    else f"must be a number, got {_describe(value)}"
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
        sink = _ErrorSink()
        values = form.get(self.name) or []
        if len(values) != self.length:
            sink.add(FieldError((self.name,), f"must have {self.length} numbers", "length"))
        row: list[float | str] = []
        for j, raw in enumerate(values):
            if raw == "":
                sink.add(FieldError((self.name, j), "field required", "missing"))
            else:
                row.append(_parse_form_number(raw, (self.name, j), sink))
        sink.raise_if_any()
        return {self.name: row}


def compile_schema(raw: Any) -> InputSchema:
    """The validator for a card's `input_schema`; SchemaError if it is not understood."""
    if not isinstance(raw, Mapping):
        raise SchemaError("input_schema must be an object")
    kind = raw.get("kind")
    if kind == "record":
        return RecordSchema(raw)
    if kind == "vector":
        return VectorSchema(raw)
    raise SchemaError(f"unknown input_schema kind {kind!r} (this service knows record, vector)")
