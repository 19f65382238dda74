"""Request validation, JSON Schema and form fields, all derived from a bundle's input schema.

The service knows no model: a bundle's `input_schema` (docs/bundle.md) is either a
`record` of named string/number fields or a numeric `vector`. Validation is column-wise:
a batch is checked with a few set and numpy operations per field, and only a batch that
fails those checks is walked row by row to say which rows and fields are wrong.
"""

from collections.abc import Mapping
from typing import Any

from app.schema_common import (
    Columns,
    FormField,
    InputSchema,
    InvalidInputError,
    Loc,
    SchemaError,
)
from app.schema_record import RecordSchema
from app.schema_vector import VectorSchema

__all__ = [
    "Columns",
    "FormField",
    "InputSchema",
    "InvalidInputError",
    "Loc",
    "RecordSchema",
    "SchemaError",
    "VectorSchema",
    "compile_schema",
]


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
