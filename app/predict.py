"""The prediction boundary, HTTP-free: every entry point (native JSON /predict, the HTML
form, the Open Inference Protocol's infer) hands its input to one Predictor, which
validates it, predicts, encodes the answer and counts the predictions by label.

Steps (each a method, so bench/bench_api.py can time them apart): parse the JSON with
orjson, validate column-wise (app.schema), predict through the bundle's adapter and
estimator, and serialise. No step makes a pydantic model or a DataFrame per row.
`score` is the one way from instances to probabilities; it records the metrics, so no
entry point counts predictions on its own.
"""

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import orjson

from app.errors import ApiError, FieldError
from app.metrics import Metrics
from app.schema import Columns, InputSchema, InvalidInputError, Loc
from ml.adapters import AdapterError
from ml.bundle import LoadedModel

log = logging.getLogger("palpite.predict")

# Refuses a batch over the limit before its rows are built (Predictor.check_batch_size).
RowCheck = Callable[[int, Loc], None]
# A schema with at most this many possible instances (every field an enum: the football
# model's pairings) has every valid instance's answer computed once, at load.
SINGLE_TABLE_LIMIT = 20_000


class Decoded(Protocol):
    @property
    def instances(self) -> list[Any]: ...


Request = TypeVar("Request", bound=Decoded)


@dataclass(frozen=True, slots=True)
class Prediction:
    body: bytes
    # Rows predicted per class index, for the predictions-by-label counter.
    label_counts: np.ndarray


@dataclass(frozen=True, slots=True)
class Scores:
    """A validated batch's class probabilities, each row's winning class index and the
    rows per class: what every entry point (native /predict, /v2 infer) encodes."""

    proba: np.ndarray
    winners: np.ndarray
    label_counts: np.ndarray


class Codec(Protocol[Request]):
    """Another protocol's requests and answers (app.v2_codec.Codec): `decode` makes a
    request whose `instances` are the native API's (their field errors located under
    `loc`), `encode` answers it from the batch's Scores."""

    loc: Loc

    def decode(self, body: bytes, check_rows: RowCheck) -> Request: ...

    def encode(self, request: Request, scores: Scores) -> bytes: ...

    def encode_row(self, request: Request, proba: list[float], winner: int) -> bytes:
        """The same answer for one row, from Python floats."""
        ...


def load_json(body: bytes) -> Any:
    """The body's JSON document; 400 malformed_json (with a hint for NaN) otherwise."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = (
            " (NaN and Infinity are not JSON numbers)"
            if b"NaN" in body or b"Infinity" in body or b"e999" in body
            else ""
        )
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}{hint}") from None


class Predictor:
    """One model's predictions for every entry point. `metrics` counts predicted rows by
    label (None: nothing counted, as in bench/ and the model check)."""

    def __init__(
        self,
        model: LoadedModel,
        schema: InputSchema,
        batch_limit: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.model = model
        self.schema = schema
        self.batch_limit = batch_limit
        self.metrics = metrics
        self.classes: list[str] = list(model.classes)
        self._head = b'{"model_version":' + orjson.dumps(model.version) + b',"predictions":['
        # One row template per predicted class: the label, then each class's probability.
        quoted = [orjson.dumps(c).replace(b"%", b"%%") for c in self.classes]
        probabilities = b",".join(name + b":%s" for name in quoted)
        self._row_templates = [
            b'{"label":' + name + b',"probabilities":{' + probabilities + b"}}" for name in quoted
        ]
        # What a single instance's answer counts, per winning class (shared, read-only).
        self._one_hot = [np.eye(len(self.classes), dtype=np.int64)[i] for i in range(len(quoted))]
        for counts in self._one_hot:
            counts.flags.writeable = False
        self._answers = self._answer_table()

    def _answer_table(self) -> dict[tuple[Any, ...], tuple[bytes, Scores]]:
        """Every valid instance's single-row answer and winning class, when the schema
        allows few enough instances: each is computed through the same validate, predict
        and encode as a request would be, one row at a time, so the bytes are the ones
        that path gives. Instances it refuses stay out and get its errors per request;
        so do instances the estimator raises on, which keep failing per request (a 500
        that a bake can see) instead of stopping the whole model from loading."""
        table: dict[tuple[Any, ...], tuple[bytes, Scores]] = {}
        instances = (
            self.schema.every_instance(SINGLE_TABLE_LIMIT) or [] if self.schema is not None else []
        )
        self._answer_key: tuple[str, ...] = tuple(instances[0]) if instances else ()
        for instance in instances:
            try:
                proba = self.predict(self.validate([instance], ()))
            except Exception:  # any failure here is that request's own
                continue
            winners = proba.argmax(axis=1)
            body = self._head + self._encode_rows(proba, winners) + b"]}"
            for array in (proba, winners):
                array.flags.writeable = False  # shared by every request for it
            scores = Scores(proba, winners, self._one_hot[int(winners[0])])
            table[tuple(instance.values())] = (body, scores)  # in _answer_key order
        return table

    def parse(self, body: bytes) -> tuple[list[Any], Loc]:
        """The instances of a single or batch request, and where they sit in the body."""
        doc = load_json(body)
        if not isinstance(doc, dict):
            raise _body_error((), 'must be a JSON object: one instance or {"instances": [...]}')
        if "instances" not in doc:
            return [doc], ()
        extra = sorted(set(doc) - {"instances"})
        if extra:
            raise _body_error((extra[0],), "unexpected field beside 'instances'", "extra_forbidden")
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _body_error(("instances",), "must be an array of instances", "array")
        if not instances:
            raise _body_error(
                ("instances",), "empty batch: send at least one instance", "too_short"
            )
        self.check_batch_size(len(instances), ("instances",))
        return instances, ("instances",)

    def check_batch_size(self, rows: int, loc: Loc) -> None:
        if rows > self.batch_limit:
            raise _body_error(
                loc, f"batch of {rows} is over the limit of {self.batch_limit}", "too_long"
            )

    def validate(self, instances: list[Any], loc: Loc) -> Columns:
        try:
            return self.schema.validate(instances, loc)
        except InvalidInputError as exc:
            raise ApiError(
                422, "invalid_input", f"{exc.total} invalid value(s)", exc.errors, exc.total
            ) from None

    def predict(self, columns: Columns) -> np.ndarray:
        try:
            proba = self.model.predict_proba(columns)
        except AdapterError as exc:
            # The schema let it through but the model's adapter cannot use it.
            raise ApiError(422, "invalid_input", str(exc)) from None
        proba = np.asarray(proba, dtype=np.float64)
        if not np.isfinite(proba).all():
            # Extreme inputs can overflow an estimator; NaN must not reach the client.
            raise ApiError(
                422, "unscorable_input", "the model gives no probabilities for these values"
            )
        return proba

    def encode(self, proba: np.ndarray, winners: np.ndarray) -> bytes:
        """The answer's JSON without a Python object per row: orjson writes the matrix's
        numbers (the same shortest round-trip floats it writes for Python floats), and
        each row's numbers go into its predicted class's template."""
        return self._head + self._encode_rows(proba, winners) + b"]}"

    def _encode_rows(self, proba: np.ndarray, winners: np.ndarray) -> bytes:
        matrix = np.ascontiguousarray(proba, dtype=np.float64)  # orjson needs C order
        numbers = orjson.dumps(matrix, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2].split(b"],[")
        templates = self._row_templates
        return b",".join(
            [
                templates[winner] % tuple(row.split(b","))
                for winner, row in zip(winners.tolist(), numbers, strict=True)
            ]
        )

    def _tabled(self, instance: Any) -> tuple[bytes, Scores] | None:
        """The answer table's entry for an instance of the right shape and values."""
        names = self._answer_key
        if type(instance) is not dict or len(instance) != len(names):
            return None
        try:
            return self._answers.get(tuple([instance[name] for name in names]))
        except (KeyError, TypeError):  # a field missing, or an unhashable value
            return None

    def _row(self, instance: Any) -> tuple[list[float], int] | None:
        """A plainly valid vector's probabilities and winning class through the model's
        pure-Python row path, or None."""
        row = self.schema.single_row(instance)
        if row is None:
            return None
        proba = self.model.predict_row(row)
        if proba is None or not all(map(math.isfinite, proba)):
            return None
        return proba, proba.index(max(proba))  # the first of equal maxima, as argmax

    def _single(self, instance: Any) -> tuple[bytes, int] | None:
        """One instance's answer and winning class without numpy, or None: the answer
        table's entry, or the row path's answer. Anything else (errors included) takes
        the general path."""
        if self._answers:
            tabled = self._tabled(instance)
            return None if tabled is None else (tabled[0], int(tabled[1].winners[0]))
        row = self._row(instance)
        if row is None:
            return None
        proba, winner = row
        numbers = orjson.dumps(proba)[1:-1].split(b",")
        return self._head + self._row_templates[winner] % tuple(numbers) + b"]}", winner

    def _single_row(self, instance: Any) -> tuple[list[float], int] | None:
        """The same as probabilities and winning class, for a protocol that encodes them
        itself (/v2 infer)."""
        if self._answers:
            tabled = self._tabled(instance)
            if tabled is None:
                return None
            return tabled[1].proba[0].tolist(), int(tabled[1].winners[0])
        return self._row(instance)

    def _count_single(self, winner: int) -> None:
        if self.metrics is not None:
            self.metrics.record_predictions(self.classes[winner], 1)

    def score(self, instances: list[Any], loc: Loc) -> Scores:
        """Validate and predict a batch, and count its predictions: the one way from
        instances to probabilities, whatever the protocol."""
        proba = self.predict(self.validate(instances, loc))
        winners = proba.argmax(axis=1)
        counts = np.bincount(winners, minlength=len(self.classes))
        if self.metrics is not None:
            record = self.metrics.record_predictions
            for label, count in zip(self.classes, counts.tolist(), strict=True):
                if count:
                    record(label, count)
        return Scores(proba, winners, counts)

    # -- the entry points ---------------------------------------------------------------

    def run(self, body: bytes) -> Prediction:
        """A native /predict body (one instance or a batch) to its JSON answer."""
        instances, loc = self.parse(body)
        if len(instances) == 1:
            single = self._single(instances[0])
            if single is not None:
                self._count_single(single[1])
                return Prediction(single[0], self._one_hot[single[1]])
        scores = self.score(instances, loc)
        return Prediction(self.encode(scores.proba, scores.winners), scores.label_counts)

    def infer(self, codec: Codec[Request], body: bytes) -> bytes:
        """Another protocol's body to its answer, through the same checks and scores."""
        request = codec.decode(body, self.check_batch_size)
        if len(request.instances) == 1:
            row = self._single_row(request.instances[0])
            if row is not None:
                self._count_single(row[1])
                return codec.encode_row(request, *row)
        return codec.encode(request, self.score(request.instances, codec.loc))

    def form(self, values: Mapping[str, list[str]]) -> np.ndarray:
        """The HTML form's values (each field's submitted strings) to one instance's
        probabilities, in `classes` order. InvalidInputError for values the form cannot
        parse, ApiError for invalid or unscorable ones."""
        return self.score([self.schema.instance_from_form(values)], ()).proba[0]


def _body_error(loc: Loc, msg: str, kind: str = "object") -> ApiError:
    return ApiError(422, "invalid_input", msg, [FieldError(loc, msg, kind)])
