"""Pydantic models that document the JSON answers in the OpenAPI schema.

The routes build their bodies directly (orjson) and never instantiate these: a 10,000-row
answer must not become 10,000 model objects. Tests check real answers against the schema.
"""

from typing import Any

from pydantic import BaseModel, Field


class FieldErrorOut(BaseModel):
    loc: list[str | int] = Field(
        description="Path to the bad value, e.g. ['instances', 3, 'home_team']."
    )
    msg: str
    type: str
    suggestions: list[str] | None = Field(None, description="Closest allowed values.")


class ErrorOut(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. invalid_input, no_model.")
    message: str
    errors: list[FieldErrorOut] | None = None
    errors_not_listed: int | None = Field(None, description="Field errors beyond those listed.")


class PredictionOut(BaseModel):
    label: str = Field(description="The most probable class.")
    probabilities: dict[str, float]


class PredictOut(BaseModel):
    model_version: str
    predictions: list[PredictionOut]


class LiveOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    model_version: str


class NotReadyOut(BaseModel):
    status: str
    reason: str


class ModelCardOut(BaseModel):
    """The bundle's model_card.json (docs/bundle.md)."""

    model_config = {"extra": "allow"}
    name: str
    version: str
    created_at: str
    classes: list[str]
    class_labels: dict[str, str]
    input_schema: dict[str, Any]
    training_data: dict[str, Any] | None
    metrics: dict[str, Any] | None
