"""The `record` input schema: named string/number fields, validated column-wise."""

import math
import operator
from collections.abc import Mapping, Sequence
from itertools import combinations, product
from operator import itemgetter
from typing import Any

import numpy as np

from app.errors import FieldError
from app.schema_common import (
    JSON_NUMBER_TYPES,
    Columns,
    ErrorSink,
    Field,
    FormField,
    Loc,
    check_rows,
    describe,
    parse_form_number,
)
from app.suggest import Suggester


class RecordSchema:
    """Named fields: `{"home_team": "Flamengo", "away_team": "Palmeiras"}`."""

    kind = "record"

    def __init__(self, raw: Mapping[str, Any]) -> None:
        """`raw`: a record schema ml.card.check_input_schema accepted (compile_schema)."""
        self.fields = [Field.from_schema(f) for f in raw["fields"]]
        self.names = [f.name for f in self.fields]
        self.distinct: list[tuple[str, ...]] = [tuple(g) for g in raw.get("distinct", [])]
        self._enum_sets = {f.name: frozenset(f.enum) for f in self.fields if f.enum}
        self._suggesters = {f.name: Suggester(f.enum) for f in self.fields if f.enum}
        self.example = self._example()

    def _example(self) -> dict[str, Any]:
        """A valid request (the OpenAPI example, the form's first values, what the hosts'
        model check predicts): fields of a `distinct` group take different values, and
        numbers stay within their bounds."""
        example: dict[str, Any] = {}
        for f in self.fields:
            taken = {
                example[g] for grp in self.distinct if f.name in grp for g in grp if g in example
            }
            candidates = self._candidates(f)
            example[f.name] = next((v for v in candidates if v not in taken), candidates[0])
        return example

    def _candidates(self, f: Field) -> list[Any]:
        """Example values for `f`, the first preferred; enough for its `distinct` group."""
        if f.enum:
            return list(f.enum)
        n = len(self.fields)
        if f.type == "string":
            return ["text", *(f"text {k}" for k in range(2, n + 1))]
        if f.minimum is not None:
            start = f.minimum
        else:
            start = min(0.0, f.maximum) if f.maximum is not None else 0.0
        room = math.inf if f.maximum is None else f.maximum - start
        step = min(1.0, room / n)
        return [start + k * step for k in range(n)] if step > 0 else [start]

    # -- validation ---------------------------------------------------------------------

    def validate(self, instances: Sequence[Any], loc: Loc) -> Columns:
        columns = self._fast(instances)
        if columns is None:
            check_rows(self._check_row, instances, loc)
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
                if not set(map(type, col)) <= JSON_NUMBER_TYPES:
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

    def _check_row(self, inst: Any, loc: Loc, sink: ErrorSink) -> None:
        if not isinstance(inst, dict):
            sink.add(FieldError(loc, f"must be an object, got {describe(inst)}", "object"))
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

    def _check_value(self, f: Field, value: Any, loc: Loc, sink: ErrorSink) -> None:
        if f.type == "string":
            if type(value) is not str:
                sink.add(FieldError(loc, f"must be a string, got {describe(value)}", "string"))
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
        if type(value) not in JSON_NUMBER_TYPES:
            sink.add(FieldError(loc, f"must be a number, got {describe(value)}", "number"))
        elif not math.isfinite(value):
            sink.add(FieldError(loc, "must be a finite number", "finite_number"))
        elif f.minimum is not None and value < f.minimum:
            sink.add(FieldError(loc, f"must be >= {f.minimum}", "minimum"))
        elif f.maximum is not None and value > f.maximum:
            sink.add(FieldError(loc, f"must be <= {f.maximum}", "maximum"))

    def every_instance(self, limit: int) -> list[dict[str, Any]] | None:
        if not all(f.type == "string" and f.enum for f in self.fields):
            return None
        size = math.prod(len(f.enum or ()) for f in self.fields)
        if size > limit:
            return None
        values = product(*(f.enum or () for f in self.fields))
        return [dict(zip(self.names, combo, strict=True)) for combo in values]

    def single_row(self, instance: Any) -> list[float] | None:
        return None  # records go through the adapter's features

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
        sink = ErrorSink()
        inst: dict[str, Any] = {}
        for f in self.fields:
            values = form.get(f.name) or []
            if not values or values[0] == "":
                sink.add(FieldError((f.name,), "field required", "missing"))
                continue
            inst[f.name] = (
                values[0] if f.type == "string" else parse_form_number(values[0], (f.name,), sink)
            )
        sink.raise_if_any()
        return inst
