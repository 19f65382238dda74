"""What every input schema shares: the error types, the error sink that stops at the
listed maximum, form fields, the InputSchema protocol and the value checks."""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.errors import MAX_LISTED_ERRORS, FieldError

Loc = tuple[str | int, ...]
Columns = dict[str, Any]
JSON_NUMBER_TYPES = frozenset({int, float})


class SchemaError(ValueError):
    """The bundle's input schema breaks the card's contract: ml.card's message
    (compile_schema)."""


class InvalidInputError(Exception):
    def __init__(self, errors: list[FieldError], total: int) -> None:
        super().__init__(f"{total} invalid value(s)")
        self.errors = errors
        self.total = total


class ErrorSink:
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

    def every_instance(self, limit: int) -> list[dict[str, Any]] | None:
        """Every instance of the right shape (valid or not) when the schema allows only a
        finite set of them, at most `limit`; None otherwise."""
        ...

    def single_row(self, instance: Any) -> list[float] | None:
        """A plainly valid instance's feature row as Python floats (the single-row path
        without numpy); None sends it down the column-wise path, which decides."""
        ...


def check_rows(
    check_row: Callable[[Any, Loc, ErrorSink], None], instances: Sequence[Any], loc: Loc
) -> None:
    """The slow path: every instance checked, every field error collected, then raised."""
    sink = ErrorSink()
    for i, inst in enumerate(instances):
        check_row(inst, (*loc, i) if loc else (), sink)
    sink.raise_if_any()


def is_number(value: Any) -> bool:
    # bool is an int subclass, but `true` is not a number in a JSON request.
    return type(value) in JSON_NUMBER_TYPES and math.isfinite(value)


def describe(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def parse_form_number(raw: str, loc: Loc, sink: ErrorSink) -> float | str:
    try:
        value = float(raw)
    except ValueError:
        sink.add(FieldError(loc, f"{raw!r} is not a number", "number"))
        return raw
    if not math.isfinite(value):
        sink.add(FieldError(loc, "must be a finite number", "finite_number"))
    return value


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str
    enum: tuple[str, ...] | None
    minimum: float | None
    maximum: float | None

    @classmethod
    def from_schema(cls, raw: Mapping[str, Any]) -> "Field":
        """A field of a record schema ml.card.check_input_schema accepted."""
        return cls(
            name=raw["name"],
            type=raw["type"],
            # An absent or empty label shows the name.
            label=raw.get("label") or raw["name"],
            enum=tuple(raw["enum"]) if "enum" in raw else None,
            minimum=raw.get("minimum"),
            maximum=raw.get("maximum"),
        )
