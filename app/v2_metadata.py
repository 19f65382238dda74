"""What /v2 says about the served model, from its card's input schema and classes: the
model metadata response, and the infer request's OpenAPI schema and examples."""

from typing import Any

from app.schema import RecordSchema, VectorSchema
from app.v2_codec import LABEL, NUMBER_TYPES, OUTPUTS, PROBABILITIES, VECTOR_TYPES, Codec


def _tensor_schema(name: str, datatypes: tuple[str, ...], dims: int, item: dict) -> dict:
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": [name]},
            "datatype": {"type": "string", "enum": list(datatypes)},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": dims,
                "maxItems": dims,
            },
            "data": {"type": "array", "items": item, "minItems": 1},
        },
        "required": ["name", "datatype", "shape", "data"],
        "additionalProperties": False,
    }


def row_tensors(codec: Codec, instance: dict[str, Any]) -> list[dict[str, Any]]:
    """The input tensors of one native instance (`{"features": [...]}` or named fields)."""
    schema = codec.schema
    if isinstance(schema, VectorSchema):
        row = instance[schema.name]
        return [{"name": schema.name, "datatype": "FP64", "shape": [1, len(row)], "data": row}]
    assert isinstance(schema, RecordSchema)
    return [
        {
            "name": f.name,
            "datatype": "BYTES" if f.type == "string" else "FP64",
            "shape": [1],
            "data": [instance[f.name]],
        }
        for f in schema.fields
    ]


def single_row_request(codec: Codec) -> dict[str, Any]:
    """A valid one-row infer request (the schema's example), for docs and benchmarks."""
    return {"inputs": row_tensors(codec, codec.schema.example)}


def _inputs(codec: Codec) -> dict[str, Any]:
    """The `inputs` JSON Schema."""
    schema = codec.schema
    if isinstance(schema, VectorSchema):
        tensor = _tensor_schema(schema.name, VECTOR_TYPES, 2, {"type": "number"})
        tensor["properties"]["shape"]["minItems"] = 1
        items: dict[str, Any] = tensor
        count = 1
    else:
        assert isinstance(schema, RecordSchema)
        tensors = []
        for f in schema.fields:
            string = f.type == "string"
            item: dict[str, Any] = {"type": "string"} if string else {"type": "number"}
            if f.enum:
                item["enum"] = list(f.enum)
            datatypes = ("BYTES",) if string else NUMBER_TYPES
            tensors.append(_tensor_schema(f.name, datatypes, 1, item))
        items = {"oneOf": tensors}
        count = len(schema.fields)
    return {
        "type": "array",
        "items": items,
        "minItems": count,
        "maxItems": count,
        "description": "One tensor per input of the model metadata; the batch dimension N"
        " is the same for all of them.",
    }


def infer_request_body(codec: Codec | None, batch_limit: int) -> dict[str, Any]:
    if codec is None:
        content: dict[str, Any] = {"schema": {"type": "object"}}
        return {"required": True, "content": {"application/json": content}}
    inputs = _inputs(codec)
    example = single_row_request(codec)["inputs"]
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "Echoed in the answer."},
            "parameters": {"type": "object"},
            "inputs": inputs,
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": list(OUTPUTS)},
                        "parameters": {"type": "object"},
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                },
                "description": "The outputs to answer; all of them when absent.",
            },
        },
        "required": ["inputs"],
        "additionalProperties": False,
        "description": f"A batch of 1 to {batch_limit} rows as input tensors (JSON data;"
        " the binary data extension is not supported).",
    }
    content = {
        "schema": schema,
        "examples": {
            "single": {"summary": "One row", "value": {"id": "1", "inputs": example}},
            "label": {
                "summary": "Only the label",
                "value": {"inputs": example, "outputs": [{"name": "label"}]},
            },
        },
    }
    return {"required": True, "content": {"application/json": content}}


def model_metadata(codec: Codec, name: str, version: str) -> dict[str, Any]:
    """The model metadata response: tensors, datatypes and shapes from the card."""
    schema = codec.schema
    inputs: list[dict[str, Any]] = []
    if isinstance(schema, RecordSchema):
        for f in schema.fields:
            tensor: dict[str, Any] = {
                "name": f.name,
                "datatype": "BYTES" if f.type == "string" else "FP64",
                "shape": [-1],
            }
            if f.enum:
                tensor["parameters"] = {"enum": list(f.enum)}
            inputs.append(tensor)
    else:
        assert isinstance(schema, VectorSchema)
        inputs.append(
            {
                "name": schema.name,
                "datatype": "FP64",
                "shape": [-1, schema.length],
                "parameters": {"feature_names": schema.feature_names},
            }
        )
    outputs = [
        {
            "name": PROBABILITIES,
            "datatype": "FP64",
            "shape": [-1, len(codec.classes)],
            "parameters": {"classes": codec.classes},
        },
        {"name": LABEL, "datatype": "BYTES", "shape": [-1]},
    ]
    return {
        "name": name,
        "versions": [version],
        "platform": "palpite-scikit-learn",
        "inputs": inputs,
        "outputs": outputs,
    }
