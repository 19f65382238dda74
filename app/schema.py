"""Request validation, JSON Schema and form fields, all derived from a bundle's input schema.

The service knows no model: a bundle's `input_schema` (docs/bundle.md) is either a
`record` of named string/number fields or a numeric `vector`. Validation is column-wise:
a batch is checked with a few set and numpy operations per field, and only a batch that
fails those checks is walked row by row to say which rows and fields are wrong.
"""

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
from ml.bundle import BundleError, check_input_schema

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
    """The validator for a card's `input_schema`.

    The contract is ml.card's alone (`check_input_schema`, docs/bundle.md): a schema it
    refuses is a SchemaError with its message, and the schema classes only compile one it
    accepted."""
    try:
        check_input_schema(raw)
    except BundleError as exc:
        raise SchemaError(str(exc)) from None
    return RecordSchema(raw) if raw["kind"] == "record" else VectorSchema(raw)
