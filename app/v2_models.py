"""Pydantic models documenting the Open Inference Protocol answers in the OpenAPI schema.

As app.api_models: the routes write their bodies with orjson and never build these.
"""

from typing import Any

from pydantic import BaseModel, Field


class V2ErrorOut(BaseModel):
    error: str = Field(description="What is wrong, naming the input, row and value.")


class V2ServerOut(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2LiveOut(BaseModel):
    live: bool


class V2ReadyOut(BaseModel):
    ready: bool


class V2ModelReadyOut(BaseModel):
    name: str
    ready: bool


class V2MetadataTensorOut(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for the batch dimension.")
    parameters: dict[str, Any] | None = Field(
        None, description="enum (allowed strings), feature_names, or classes (column order)."
    )


class V2ModelOut(BaseModel):
    name: str = Field(description="The model card's name.")
    versions: list[str] = Field(description="The one bundle version this host serves.")
    platform: str
    inputs: list[V2MetadataTensorOut]
    outputs: list[V2MetadataTensorOut]


class V2OutputTensorOut(BaseModel):
    name: str = Field(description="probabilities or label.")
    datatype: str = Field(description="FP64 for probabilities, BYTES for label.")
    shape: list[int]
    data: list[float | str] = Field(description="Row-major, flat.")


class V2InferOut(BaseModel):
    model_name: str
    model_version: str
    id: str | None = Field(None, description="The request's id, echoed.")
    outputs: list[V2OutputTensorOut]
