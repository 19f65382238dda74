"""Open Inference Protocol (KServe V2) REST tensors, HTTP-free: an infer request's tensors
become the native API's instances (so app.schema validates them, field errors and all)
and a batch's Scores become output tensors. The protocol: docs/inference-protocol.md.
"""

import math
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson

from app.errors import ApiError, FieldError
from app.predict import RowCheck, Scores, load_json
from app.schema import InputSchema, Loc, RecordSchema, VectorSchema

PROBABILITIES = "probabilities"
LABEL = "label"
OUTPUTS = (PROBABILITIES, LABEL)
NUMBER_TYPES = ("FP64", "FP32", "INT64", "INT32")
VECTOR_TYPES = ("FP64", "FP32")
_INT_RANGES = {"INT32": (-(2**31), 2**31 - 1), "INT64": (-(2**63), 2**63 - 1)}
_ONE_DIM = (1,)
_INT = {int}  # the types of a valid shape's items (bool is not int here)
_PLAIN_KEYS = frozenset({"name", "shape", "datatype", "data"})
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
# Where the instances built from the tensors sit, for app.schema's field errors.
LOC: Loc = ("inputs",)
_LISTED = 5  # field errors named in one error message


class ProtocolError(ApiError):
    """An ApiError answered in the protocol's shape: `{"error": "<message>"}`."""

    def body(self) -> dict[str, Any]:
        return {"error": self.message}


def protocol_error(exc: ApiError) -> ProtocolError:
    """The same status and message, with the field errors spelled out by tensor name."""
    if isinstance(exc, ProtocolError):
        return exc
    message = exc.message
    if exc.errors:
        listed = "; ".join(describe(e) for e in exc.errors[:_LISTED])
        more = (exc.error_count or len(exc.errors)) - min(len(exc.errors), _LISTED)
        message = f"invalid input: {listed}" + (f" (and {more} more)" if more > 0 else "")
    return ProtocolError(exc.status, exc.code, message)


def describe(error: FieldError) -> str:
    """`home_team[3]: unknown value 'X' (did you mean 'Y'?)` from a loc under LOC."""
    parts = error.loc[len(LOC) :] if error.loc[: len(LOC)] == LOC else error.loc
    names = [p for p in parts if isinstance(p, str)]
    index = ", ".join(str(p) for p in parts if isinstance(p, int))
    where = f"input {names[0]!r}" if names else "request"
    where += f" at [{index}]" if index else ""
    hint = ""
    if error.suggestions:
        hint = " (did you mean " + " or ".join(repr(s) for s in error.suggestions) + "?)"
    return f"{where}: {error.msg}{hint}"


def invalid(message: str) -> ProtocolError:
    return ProtocolError(422, "invalid_input", message)


@dataclass(slots=True)
class InferRequest:
    id: str | None
    instances: list[Any]
    outputs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]


class Codec:
    """Requests and answers of one model's infer endpoint (app.predict.Codec)."""

    loc = LOC

    def __init__(self, schema: InputSchema, classes: list[str], name: str, version: str) -> None:
        self.schema = schema
        self.classes = classes
        self._labels = np.array(classes, dtype=object)
        self._head = {"model_name": name, "model_version": version}
        # What _fast accepts: per input in order, its name, datatypes and shape lengths.
        # (Tuples, not sets: a datatype sent as a list must not be hashed.)
        self._plain: list[tuple[str, tuple[str, ...], tuple[int, ...]]] = []
        self._names_order: list[str] = []
        if isinstance(schema, RecordSchema):
            self._names_order = schema.names
            for f in schema.fields:
                types = ("BYTES",) if f.type == "string" else VECTOR_TYPES
                self._plain.append((f.name, types, _ONE_DIM))
        elif isinstance(schema, VectorSchema):
            self._plain.append((schema.name, VECTOR_TYPES, (1, 2)))

    # -- requests -----------------------------------------------------------------------

    def decode(self, body: bytes, check_rows: RowCheck) -> InferRequest:
        doc = load_json(body)
        if not isinstance(doc, dict):
            raise invalid("the body must be a JSON object with 'inputs'")
        extra = doc.keys() - _REQUEST_KEYS
        if extra:
            raise invalid(f"unexpected request field {min(extra)!r}")
        request_id = doc.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise invalid("'id' must be a string")
        _check_parameters(doc.get("parameters"), "request")
        raw_inputs = doc.get("inputs")
        instances = self._fast(raw_inputs, check_rows)
        if instances is None:
            if not isinstance(raw_inputs, list) or not raw_inputs:
                raise invalid("'inputs' must be a non-empty array of tensors")
            tensors = [_tensor(raw, i) for i, raw in enumerate(raw_inputs)]
            if isinstance(self.schema, RecordSchema):
                instances = self._record(tensors, check_rows)
            else:
                assert isinstance(self.schema, VectorSchema)
                instances = self._vector(tensors, check_rows)
        return InferRequest(request_id, instances, _outputs(doc.get("outputs")))

    def _fast(self, raw: Any, check_rows: RowCheck) -> list[Any] | None:
        """The instances of the plain form, in a few operations: the inputs in metadata
        order, each exactly {name, datatype, shape, data} with flat data and an FP or
        BYTES datatype. None for anything else, which the full checks then decode (or
        refuse): both give the same instances for what this accepts."""
        plain = self._plain
        if type(raw) is not list or len(raw) != len(plain):
            return None
        columns = []
        rows = -1
        for tensor, (name, datatypes, dims) in zip(raw, plain, strict=True):
            if (
                type(tensor) is not dict
                or tensor.keys() != _PLAIN_KEYS
                or tensor["name"] != name
                or tensor["datatype"] not in datatypes
            ):
                return None
            shape, data = tensor["shape"], tensor["data"]
            if type(shape) is not list or type(data) is not list or len(shape) not in dims:
                return None
            if dims == _ONE_DIM:  # a record field: [N], data as is (no nesting in 1-D)
                n = shape[0]
                if type(n) is not int or n < 1 or len(data) != n or (rows != -1 and n != rows):
                    return None
            else:  # the vector: [k] or [N, k], flat data
                if set(map(type, shape)) != _INT or min(shape) < 1:
                    return None
                if list in set(map(type, data)) or len(data) != math.prod(shape):
                    return None
                n = shape[0] if len(shape) == 2 else 1
            rows = n
            columns.append(data)
        if isinstance(self.schema, VectorSchema):
            k, data = self.schema.length, columns[0]
            if shape[-1] != k:
                return None
            check_rows(rows, LOC)
            return [{self.schema.name: data[i * k : (i + 1) * k]} for i in range(rows)]
        check_rows(rows, LOC)
        return [
            dict(zip(self._names_order, row, strict=True)) for row in zip(*columns, strict=True)
        ]

    def _names(self, tensors: list[_Tensor], expected: list[str]) -> dict[str, _Tensor]:
        by_name: dict[str, _Tensor] = {}
        for t in tensors:
            if t.name in by_name:
                raise invalid(f"input {t.name!r} is given twice")
            if t.name not in expected:
                raise invalid(f"unknown input {t.name!r}: this model takes {', '.join(expected)}")
            by_name[t.name] = t
        missing = [n for n in expected if n not in by_name]
        if missing:
            raise invalid(f"missing input {missing[0]!r}: this model takes {', '.join(expected)}")
        return by_name

    def _record(self, tensors: list[_Tensor], check_rows: RowCheck) -> list[Any]:
        assert isinstance(self.schema, RecordSchema)
        by_name = self._names(tensors, self.schema.names)
        columns = []
        rows: int | None = None
        for field in self.schema.fields:
            t = by_name[field.name]
            allowed = ("BYTES",) if field.type == "string" else NUMBER_TYPES
            _check_datatype(t, allowed)
            if len(t.shape) != 1:
                raise invalid(f"input {t.name!r}: shape must be [N], got {list(t.shape)}")
            if rows is not None and t.shape[0] != rows:
                raise invalid(
                    f"input {t.name!r}: shape [{t.shape[0]}] differs from"
                    f" the other inputs' [{rows}]"
                )
            rows = t.shape[0]
            columns.append(t.data)
        assert rows is not None
        check_rows(rows, LOC)
        names = self.schema.names
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def _vector(self, tensors: list[_Tensor], check_rows: RowCheck) -> list[Any]:
        assert isinstance(self.schema, VectorSchema)
        schema = self.schema
        t = self._names(tensors, [schema.name])[schema.name]
        _check_datatype(t, VECTOR_TYPES)
        k = schema.length
        if t.shape == (k,):
            rows = 1
        elif len(t.shape) == 2 and t.shape[1] == k:
            rows = t.shape[0]
        else:
            raise invalid(f"input {t.name!r}: shape must be [N, {k}] or [{k}], got {list(t.shape)}")
        check_rows(rows, LOC)
        data = t.data
        return [{schema.name: data[i * k : (i + 1) * k]} for i in range(rows)]

    # -- answers ------------------------------------------------------------------------

    def encode(self, request: InferRequest, scores: Scores) -> bytes:
        wanted = request.outputs
        proba = (
            np.ascontiguousarray(scores.proba, dtype=np.float64).ravel()
            if PROBABILITIES in wanted
            else None
        )
        labels = self._labels[scores.winners].tolist() if LABEL in wanted else None
        return self._answer(request, len(scores.winners), proba, labels)

    def encode_row(self, request: InferRequest, proba: list[float], winner: int) -> bytes:
        """One row's answer without numpy: orjson writes Python floats as it writes the
        float64s of `encode`, so the bytes are the same."""
        return self._answer(request, 1, proba, [self.classes[winner]])

    def _answer(
        self, request: InferRequest, rows: int, proba: Any, labels: list[str] | None
    ) -> bytes:
        outputs = []
        for name in request.outputs:
            if name == PROBABILITIES:
                outputs.append(
                    {
                        "name": PROBABILITIES,
                        "datatype": "FP64",
                        "shape": [rows, len(self.classes)],
                        "data": proba,
                    }
                )
            else:
                label = {"name": LABEL, "datatype": "BYTES", "shape": [rows], "data": labels}
                outputs.append(label)
        doc: dict[str, Any] = {**self._head, "outputs": outputs}
        if request.id is not None:
            doc["id"] = request.id
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def _check_parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{where} 'parameters' must be an object")
    if "binary_data_size" in value or "shared_memory_region" in value:
        raise ProtocolError(
            415,
            "unsupported_media_type",
            f"{where}: the binary data and shared memory extensions are not supported;"
            " send tensor data as JSON",
        )
    return value


def _tensor(raw: Any, index: int) -> _Tensor:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise invalid(f"inputs[{index}] must be a tensor object with a 'name'")
    name = raw["name"]
    extra = raw.keys() - _TENSOR_KEYS
    if extra:
        raise invalid(f"input {name!r}: unexpected field {min(extra)!r}")
    if "parameters" in raw:
        _check_parameters(raw["parameters"], f"input {name!r}")
    datatype, shape, data = raw.get("datatype"), raw.get("shape"), raw.get("data")
    if type(datatype) is not str:
        raise invalid(f"input {name!r}: 'datatype' must be a string")
    if type(shape) is not list or set(map(type, shape)) != _INT or min(shape) < 1:
        raise invalid(f"input {name!r}: 'shape' must be a list of positive integers")
    if not isinstance(data, list):
        raise invalid(f"input {name!r}: 'data' must be an array")
    flat = _flatten(data) if len(shape) > 1 else data
    expected = math.prod(shape)
    if len(flat) != expected:
        raise invalid(
            f"input {name!r}: shape {shape} needs {expected} value(s), 'data' has {len(flat)}"
        )
    return _Tensor(name, datatype, tuple(shape), flat)


def _flatten(data: list[Any]) -> list[Any]:
    """Row-major flat data, from the flat or the nested form the protocol allows for a
    tensor of two or more dimensions (a 1-D tensor's data has no nesting)."""
    while list in set(map(type, data)):
        data = list(chain.from_iterable(v if type(v) is list else (v,) for v in data))
    return data


def _check_datatype(t: _Tensor, allowed: tuple[str, ...]) -> None:
    if t.datatype not in allowed:
        raise invalid(
            f"input {t.name!r}: datatype must be {' or '.join(allowed)}, got {t.datatype!r}"
        )
    span = _INT_RANGES.get(t.datatype)
    if span is not None and not all(type(v) is int and span[0] <= v <= span[1] for v in t.data):
        raise invalid(f"input {t.name!r}: {t.datatype} data must be integers in its range")


def _outputs(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return OUTPUTS
    if not isinstance(raw, list):
        raise invalid("'outputs' must be an array")
    names: list[str] = []
    for i, out in enumerate(raw):
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise invalid(f"outputs[{i}] must be an object with a 'name'")
        if set(out) - {"name", "parameters"}:
            raise invalid(f"output {out['name']!r}: unexpected field")
        if out["name"] not in OUTPUTS:
            raise invalid(f"unknown output {out['name']!r}: this model gives {', '.join(OUTPUTS)}")
        if out["name"] not in names:
            names.append(out["name"])
    return tuple(names) if names else OUTPUTS
