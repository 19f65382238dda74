"""The Open Inference Protocol (KServe V2) codec and /v2 endpoints, in process.

The real-client tests (tritonclient against gunicorn) are tests/integration/test_v2_protocol.py.
"""

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import ApiError
from app.predict import Scores
from app.schema import compile_schema
from app.v2_codec import OUTPUTS, Codec, InferRequest, ProtocolError, protocol_error
from app.v2_metadata import model_metadata

TEAMS_FIELD = {"name": "home_team", "type": "string", "enum": ["Flamengo", "Palmeiras"]}
RECORD = compile_schema(
    {
        "kind": "record",
        "fields": [
            TEAMS_FIELD,
            {**TEAMS_FIELD, "name": "away_team"},
            {"name": "temperature", "type": "number", "minimum": -30, "maximum": 50},
        ],
        "distinct": [["home_team", "away_team"]],
    }
)
VECTOR = compile_schema(
    {"kind": "vector", "name": "features", "length": 3, "feature_names": ["x0", "x1", "x2"]}
)


def no_limit(rows: int, loc: Any) -> None:
    assert rows >= 1


def tensor(name: str, datatype: str, shape: list[int], data: list) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def record_body(**changes: Any) -> dict:
    inputs = {
        "home_team": tensor("home_team", "BYTES", [2], ["Flamengo", "Palmeiras"]),
        "away_team": tensor("away_team", "BYTES", [2], ["Palmeiras", "Flamengo"]),
        "temperature": tensor("temperature", "INT32", [2], [20, 31]),
    }
    return {"inputs": list(inputs.values()), **changes}


def decode(codec: Codec, doc: Any) -> Any:
    return codec.decode(json.dumps(doc).encode(), no_limit)


@pytest.fixture
def record_codec() -> Codec:
    return Codec(RECORD, ["home_win", "draw", "away_win"], "m", "v1")


@pytest.fixture
def vector_codec() -> Codec:
    return Codec(VECTOR, ["no", "yes"], "clf", "v2")


def test_record_tensors_become_native_instances(record_codec):
    request = decode(record_codec, record_body(id="req-7"))
    assert request.id == "req-7"
    assert request.outputs == ("probabilities", "label")
    assert request.instances == [
        {"home_team": "Flamengo", "away_team": "Palmeiras", "temperature": 20},
        {"home_team": "Palmeiras", "away_team": "Flamengo", "temperature": 31},
    ]


@pytest.mark.parametrize(
    ("shape", "data", "rows"),
    [
        ([3], [1.0, 2.0, 3.0], [[1.0, 2.0, 3.0]]),
        ([2, 3], [1, 2, 3, 4, 5, 6.5], [[1, 2, 3], [4, 5, 6.5]]),
        ([2, 3], [[1, 2, 3], [4, 5, 6.5]], [[1, 2, 3], [4, 5, 6.5]]),  # nested data
    ],
)
def test_vector_shapes(vector_codec, shape, data, rows):
    request = decode(vector_codec, {"inputs": [tensor("features", "FP32", shape, data)]})
    assert request.instances == [{"features": row} for row in rows]


def test_outputs_select_and_encode(record_codec):
    request = decode(record_codec, record_body(id="x", outputs=[{"name": "label"}]))
    scores = Scores(np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]), np.array([1, 0]), np.zeros(3))
    answer = json.loads(record_codec.encode(request, scores))
    assert answer == {
        "model_name": "m",
        "model_version": "v1",
        "id": "x",
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["draw", "home_win"]}
        ],
    }
    request = decode(record_codec, record_body())
    answer = json.loads(record_codec.encode(request, scores))
    assert "id" not in answer
    proba = answer["outputs"][0]
    assert proba == {
        "name": "probabilities",
        "datatype": "FP64",
        "shape": [2, 3],
        "data": [0.2, 0.5, 0.3, 0.6, 0.3, 0.1],
    }


def test_metadata_from_the_schema(record_codec, vector_codec):
    meta = model_metadata(record_codec, "m", "v1")
    assert meta["name"] == "m" and meta["versions"] == ["v1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("home_team", "BYTES", [-1]),
        ("away_team", "BYTES", [-1]),
        ("temperature", "FP64", [-1]),
    ]
    assert meta["inputs"][0]["parameters"] == {"enum": ["Flamengo", "Palmeiras"]}
    assert meta["outputs"][0]["shape"] == [-1, 3]
    assert meta["outputs"][0]["parameters"] == {"classes": ["home_win", "draw", "away_win"]}
    vmeta = model_metadata(vector_codec, "clf", "v2")
    assert vmeta["inputs"] == [
        {
            "name": "features",
            "datatype": "FP64",
            "shape": [-1, 3],
            "parameters": {"feature_names": ["x0", "x1", "x2"]},
        }
    ]


def _without(name: str) -> dict:
    body = record_body()
    body["inputs"] = [t for t in body["inputs"] if t["name"] != name]
    return body


def _changed(index: int, **fields: Any) -> dict:
    body = record_body()
    body["inputs"][index] = {**body["inputs"][index], **fields}
    return body


@pytest.mark.parametrize(
    ("doc", "status", "message"),
    [
        ([1], 422, "JSON object with 'inputs'"),
        ({"inputs": []}, 422, "non-empty array"),
        (record_body(extra=1), 422, "unexpected request field 'extra'"),
        (record_body(id=5), 422, "'id' must be a string"),
        (_without("away_team"), 422, "missing input 'away_team'"),
        (_changed(0, name="home"), 422, "unknown input 'home'"),
        (_changed(1, name="home_team"), 422, "input 'home_team' is given twice"),
        (_changed(0, shape=[3]), 422, "shape [3] needs 3 value(s), 'data' has 2"),
        (_changed(0, shape=[2, 1]), 422, "input 'home_team': shape must be [N]"),
        (_changed(0, shape=[1], data=["Flamengo"]), 422, "differs from the other inputs'"),
        (_changed(0, shape=[0], data=[]), 422, "'shape' must be a list of positive integers"),
        (_changed(0, datatype="FP32"), 422, "input 'home_team': datatype must be BYTES"),
        (_changed(2, datatype="BYTES"), 422, "input 'temperature': datatype must be FP64"),
        (_changed(2, data=[20.5, 31]), 422, "INT32 data must be integers"),
        (_changed(2, datatype="INT32", data=[2**40, 1]), 422, "INT32 data must be integers"),
        (_changed(0, data="Flamengo"), 422, "'data' must be an array"),
        (record_body(outputs=[{"name": "proba"}]), 422, "unknown output 'proba'"),
        (_changed(0, parameters={"binary_data_size": 8}), 415, "binary data"),
    ],
)
def test_request_errors(record_codec, doc, status, message):
    with pytest.raises(ProtocolError) as err:
        decode(record_codec, doc)
    assert err.value.status == status
    assert message in err.value.body()["error"]


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ([tensor("features", "FP64", [2, 4], [0.0] * 8)], "shape must be [N, 3] or [3]"),
        ([tensor("features", "BYTES", [3], ["a", "b", "c"])], "datatype must be FP64 or FP32"),
        ([tensor("features", "INT64", [3], [1, 2, 3])], "datatype must be FP64 or FP32"),
        ([tensor("x", "FP64", [3], [1, 2, 3])], "unknown input 'x'"),
    ],
)
def test_vector_request_errors(vector_codec, tensors, message):
    with pytest.raises(ProtocolError) as err:
        decode(vector_codec, {"inputs": tensors})
    assert message in err.value.message


def test_batch_limit_is_the_predictors(vector_codec):
    def limit(rows: int, loc: Any) -> None:
        raise ApiError(422, "invalid_input", f"batch of {rows} is over the limit of 1")

    with pytest.raises(ApiError, match="batch of 2 is over the limit of 1"):
        vector_codec.decode(
            json.dumps({"inputs": [tensor("features", "FP64", [2, 3], [0.0] * 6)]}).encode(),
            limit,
        )


FEATURES = b'{"inputs": [{"name": "features", "datatype": '


@pytest.mark.parametrize(
    "body",
    [
        FEATURES + b'"FP64", "shape": [3], "data": [NaN, 1, 2]}]}',
        FEATURES + b'"FP64", "shape": [3], "data": [1e999, 1, 2]}]}',
        FEATURES + b'"BYTES", "shape": [1], "data": ["\xff"]}]}',  # not UTF-8
        FEATURES + b'"BYTES", "shape": [1], "data": ["\\ud800"]}]}',  # a lone surrogate
    ],
)
def test_non_json_numbers_and_non_utf8_bytes_are_400(vector_codec, body):
    with pytest.raises(ApiError) as err:
        vector_codec.decode(body, no_limit)
    assert err.value.status == 400
    assert "not valid JSON" in protocol_error(err.value).body()["error"]


# -- the endpoints, in process ---------------------------------------------------------


def infer(client: TestClient, path: str, doc: Any, **headers: str):
    return client.post(path, content=json.dumps(doc), headers=headers)


RECORD_ROW = [
    tensor("home_team", "BYTES", [1], ["Flamengo"]),
    tensor("away_team", "BYTES", [1], ["Santos"]),
    tensor("temperature", "FP64", [1], [21.5]),
]


def test_record_infer_matches_predict(record_client):
    version = record_client.get("/health/ready").json()["model_version"]
    native = record_client.post(
        "/predict", json={"home_team": "Flamengo", "away_team": "Santos", "temperature": 21.5}
    ).json()["predictions"][0]
    for path in (
        "/v2/models/test-record/infer",
        f"/v2/models/test-record/versions/{version}/infer",
    ):
        r = infer(record_client, path, {"id": "q", "inputs": RECORD_ROW})
        assert r.status_code == 200, r.text
        assert r.headers["x-model-version"] == version
        body = r.json()
        assert body["id"] == "q" and body["model_version"] == version
        proba, label = body["outputs"]
        assert proba["data"] == list(native["probabilities"].values())
        assert label["data"] == [native["label"]]
    metrics = record_client.get("/metrics").text
    assert 'route="/v2/models/{name}/infer",status="200"' in metrics
    assert 'route="/v2/models/{name}/versions/{version}/infer",status="200"' in metrics
    assert f'palpite_predictions_total{{label="{native["label"]}"}} 3.0' in metrics


def test_unknown_model_and_version_are_404(record_client):
    for path in (
        "/v2/models/other",
        "/v2/models/other/ready",
        "/v2/models/test-record/versions/20200101T000000Z-00000000",
        "/v2/models/test-record/versions/20200101T000000Z-00000000/ready",
    ):
        r = record_client.get(path)
        assert r.status_code == 404 and "error" in r.json(), path
    r = infer(record_client, "/v2/models/other/infer", {"inputs": RECORD_ROW})
    assert r.status_code == 404
    assert r.json() == {"error": "unknown model 'other': this server serves 'test-record'"}
    r = infer(record_client, "/v2/models/test-record/versions/v0/infer", {"inputs": RECORD_ROW})
    assert r.status_code == 404 and "has no version 'v0'" in r.json()["error"]


def test_field_errors_name_the_input(record_client):
    row = [*RECORD_ROW[:2], tensor("temperature", "FP64", [1], [80.0])]
    r = infer(record_client, "/v2/models/test-record/infer", {"inputs": row})
    assert r.status_code == 422
    assert r.json() == {"error": "invalid input: input 'temperature' at [0]: must be <= 50"}
    same = [RECORD_ROW[0], tensor("away_team", "BYTES", [1], ["Flamengo"]), RECORD_ROW[2]]
    r = infer(record_client, "/v2/models/test-record/infer", {"inputs": same})
    assert r.status_code == 422 and "must differ from 'home_team'" in r.json()["error"]


def test_media_types_and_limits(make_client, vector_bundle):
    client = make_client(vector_bundle, batch_limit=2, max_body_bytes=2048)
    row = {"inputs": [tensor("features", "FP64", [4], [1, 2, 3, 4])]}
    assert infer(client, "/v2/models/clf/infer", row).status_code == 200  # no content type
    r = infer(client, "/v2/models/clf/infer", row, **{"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    r = infer(client, "/v2/models/clf/infer", row, **{"inference-header-content-length": "50"})
    assert r.status_code == 415 and "binary data extension" in r.json()["error"]
    batch = {"inputs": [tensor("features", "FP64", [3, 4], [1.0] * 12)]}
    r = infer(client, "/v2/models/clf/infer", batch)
    assert r.status_code == 422 and "batch of 3 is over the limit of 2" in r.json()["error"]
    big = {"inputs": [tensor("features", "FP64", [1, 4], [1.0] * 4)], "id": "x" * 4000}
    r = infer(client, "/v2/models/clf/infer", big)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


def test_health_and_metadata(record_client, empty_client):
    assert record_client.get("/v2").json()["name"] == "palpite"
    assert record_client.get("/v2/health/live").json() == {"live": True}
    assert record_client.get("/v2/health/ready").json() == {"ready": True}
    assert record_client.get("/v2/models/test-record/ready").json() == {
        "name": "test-record",
        "ready": True,
    }
    meta = record_client.get("/v2/models/test-record").json()
    assert [t["name"] for t in meta["inputs"]] == ["home_team", "away_team", "temperature"]
    r = empty_client.get("/v2/health/ready")
    assert r.status_code == 503 and r.json() == {"ready": False}
    r = infer(empty_client, "/v2/models/any/infer", {"inputs": RECORD_ROW})
    assert r.status_code == 503 and r.json()["error"].startswith("no model loaded")
    assert empty_client.get("/v2/models/any").status_code == 503


def _reordered() -> dict:
    body = record_body()
    body["inputs"].reverse()
    return body


FAST_AND_FULL = [
    ("record", record_body()),
    ("record", _changed(2, datatype="FP32", data=[20.5, 31])),
    ("record", _changed(2, datatype="INT32")),  # INT*: the full checks only
    ("record", _reordered()),  # another order: the full checks only
    ("record", _changed(0, parameters={})),
    ("record", _changed(0, data=[["Flamengo"], ["Palmeiras"]])),  # nested
    ("record", _changed(0, shape=[3])),
    ("record", _changed(0, shape=[1], data=["Flamengo"])),
    ("record", _changed(0, data=["Flamengo", 3])),
    ("record", _changed(0, datatype=["BYTES"])),  # unhashable
    ("record", _changed(0, name=["home_team"])),
    ("vector", {"inputs": [tensor("features", "FP64", [3], [1.0, 2.0, 3.0])]}),
    ("vector", {"inputs": [tensor("features", "FP32", [2, 3], [1, 2, 3, 4, 5, 6.5])]}),
    ("vector", {"inputs": [tensor("features", "FP32", [2, 3], [[1, 2, 3], [4, 5, 6]])]}),
    ("vector", {"inputs": [tensor("features", "FP64", [2, 4], [0.0] * 8)]}),
    ("vector", {"inputs": [tensor("features", "FP64", [4], [0.0] * 4)]}),
    ("vector", {"inputs": [tensor("features", "FP64", [1, 3], [0.0] * 2)]}),
    ("vector", {"inputs": [tensor("features", "FP64", [True, 3], [0.0] * 3)]}),
    ("vector", {"inputs": [tensor("features", ["FP64"], [1, 3], [0.0] * 3)]}),
]


@pytest.mark.parametrize(("kind", "doc"), FAST_AND_FULL)
def test_the_fast_path_agrees_with_the_full_checks(record_codec, vector_codec, kind, doc):
    codec = record_codec if kind == "record" else vector_codec

    def outcome(use_fast: bool) -> Any:
        if not use_fast:
            codec._fast = lambda raw, check: None  # type: ignore[method-assign]
        try:
            return decode(codec, doc).instances
        except ProtocolError as exc:
            return exc.status, exc.message
        finally:
            codec.__dict__.pop("_fast", None)

    assert outcome(True) == outcome(False)


def test_the_plain_form_takes_the_fast_path(record_codec, vector_codec):
    plain = _changed(2, datatype="FP64")["inputs"]
    assert record_codec._fast(plain, no_limit) == decode(record_codec, record_body()).instances
    vector = [tensor("features", "FP32", [2, 3], [0.0] * 6)]
    assert vector_codec._fast(vector, no_limit) == [{"features": [0.0] * 3}] * 2
    assert vector_codec._fast([tensor("features", "FP32", [2, 4], [0.0] * 8)], no_limit) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_TENSOR = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["home_team", "away_team", "temperature", "features"]) | _JSON,
        "datatype": st.sampled_from(["BYTES", "FP32", "FP64", "INT32", "INT64"]) | _JSON,
        "shape": st.lists(st.integers(-1, 4), max_size=3) | _JSON,
        "data": st.lists(_JSON, max_size=6) | _JSON,
    },
    optional={"parameters": _JSON},
)


@settings(max_examples=200, deadline=None)
@given(
    inputs=st.lists(_TENSOR, max_size=4) | _JSON,
    extra=st.dictionaries(st.sampled_from(["id", "outputs", "parameters", "x"]), _JSON),
)
def test_any_json_is_decoded_or_refused_with_an_api_error(inputs, extra):
    body = json.dumps({"inputs": inputs, **extra}).encode()
    for codec in (
        Codec(RECORD, ["home_win", "draw", "away_win"], "m", "v1"),
        Codec(VECTOR, ["no", "yes"], "clf", "v2"),
    ):
        try:
            request = codec.decode(body, no_limit)
        except ApiError as exc:
            assert 400 <= exc.status < 500
            assert protocol_error(exc).body()["error"]
        else:
            assert request.instances


def test_encode_row_is_encode_of_one_row_byte_for_byte(record_codec) -> None:
    """The single-row answer (Python floats, no numpy) is the batch encoder's bytes, with
    and without an id, for each output selection."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        proba = rng.dirichlet(np.ones(3))[None, :] ** rng.uniform(0.5, 3)
        winner = int(proba.argmax())
        scores = Scores(proba, np.array([winner]), np.eye(3, dtype=np.int64)[winner])
        for outputs in (OUTPUTS, ("label",), ("probabilities",)):
            for request_id in (None, "r-1"):
                request = InferRequest(request_id, [{}], outputs)
                want = record_codec.encode(request, scores)
                assert record_codec.encode_row(request, proba[0].tolist(), winner) == want
