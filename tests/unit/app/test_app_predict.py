"""POST /predict: answers that match the bundle's own predictions, and every 4xx/503."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.asgi import DirectRoutes
from ml.bundle import load_bundle

ROW = {"home_team": "Flamengo", "away_team": "Palmeiras", "temperature": 21.5}


def expected(bundle: Path, columns: dict) -> np.ndarray:
    return load_bundle(bundle).predict_proba(columns)


def post_raw(client: TestClient, body: bytes, ctype: str | None = "application/json"):
    headers = {"content-type": ctype} if ctype else {}
    return client.post("/predict", content=body, headers=headers)


def only_error(response) -> dict:
    body = response.json()
    assert set(body) >= {"error", "message"}
    return body


# ------------------------------------------------------------------------- success


def test_vector_single_matches_the_estimator(vector_client, vector_bundle):
    r = vector_client.post("/predict", json={"features": [1.0, 2.0, 3.0, 4.0]})
    assert r.status_code == 200
    body = r.json()
    version = load_bundle(vector_bundle).version
    assert body["model_version"] == version == r.headers["x-model-version"]
    [pred] = body["predictions"]
    proba = expected(vector_bundle, {"features": [[1.0, 2.0, 3.0, 4.0]]})[0]
    assert pred["probabilities"] == pytest.approx(dict(zip(["no", "yes"], proba, strict=True)))
    assert pred["label"] == ["no", "yes"][int(proba.argmax())]


def test_vector_batch_keeps_order(vector_client, vector_bundle):
    rows = [[float(i), -float(i), 0.5, 2.0] for i in range(-3, 4)]
    r = vector_client.post("/predict", json={"instances": [{"features": x} for x in rows]})
    assert r.status_code == 200
    got = [[p["probabilities"]["no"], p["probabilities"]["yes"]] for p in r.json()["predictions"]]
    assert np.allclose(got, expected(vector_bundle, {"features": rows}))


def test_vector_accepts_integers(vector_client):
    r = vector_client.post("/predict", json={"features": [1, 2, 3, 4]})
    assert r.status_code == 200


def test_record_batch_matches_the_bundle(record_client, record_bundle):
    rows = [
        ROW,
        {"home_team": "Santos", "away_team": "Grêmio", "temperature": -3},
        {"home_team": "São Paulo", "away_team": "Flamengo", "temperature": 30.0},
    ]
    r = record_client.post("/predict", json={"instances": rows})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    classes = ["home_win", "draw", "away_win"]
    got = [[p["probabilities"][c] for c in classes] for p in preds]
    cols = {k: [row[k] for row in rows] for k in ROW}
    want = expected(record_bundle, cols)
    assert np.allclose(got, want)
    assert [p["label"] for p in preds] == [classes[i] for i in want.argmax(axis=1)]
    assert all(sum(p["probabilities"].values()) == pytest.approx(1.0) for p in preds)


def test_content_type_with_charset_is_json(record_client):
    import orjson

    r = post_raw(record_client, orjson.dumps(ROW), "application/json; charset=utf-8")
    assert r.status_code == 200


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"home_team": "Flamengo",}', b"", b"\xff\xfe", b'{"features": [NaN, 1, 2, 3]}'],
)
def test_malformed_json_is_400(vector_client, body):
    r = post_raw(vector_client, body)
    assert r.status_code == 400
    assert only_error(r)["error"] == "malformed_json"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_nan_and_infinity_are_refused_with_a_hint(vector_client, literal):
    r = post_raw(vector_client, b'{"features": [%s, 1, 2, 3]}' % literal)
    assert r.status_code == 400
    assert "NaN and Infinity" in only_error(r)["message"]


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"features": [1.0, "2", 3.0, 4.0]}, ["features", 1], "number"),
        ({"features": [1.0, True, 3.0, 4.0]}, ["features", 1], "number"),
        ({"features": [1.0, None, 3.0, 4.0]}, ["features", 1], "number"),
        ({"features": [1.0, 2.0, 3.0]}, ["features"], "length"),
        ({"features": "1,2,3,4"}, ["features"], "array"),
        ({"feature": [1.0, 2.0, 3.0, 4.0]}, ["features"], "missing"),
        ({"features": [1, 2, 3, 4], "extra": 1}, ["extra"], "extra_forbidden"),
    ],
)
def test_vector_field_errors(vector_client, body, loc, kind):
    r = vector_client.post("/predict", json=body)
    assert r.status_code == 422
    errors = only_error(r)["errors"]
    assert {"loc": loc, "type": kind} in [{"loc": e["loc"], "type": e["type"]} for e in errors]


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        ({"home_team": 7}, ["home_team"], "string"),
        ({"temperature": "warm"}, ["temperature"], "number"),
        ({"temperature": 99}, ["temperature"], "maximum"),
        ({"temperature": -31}, ["temperature"], "minimum"),
        ({"away_team": "Flamengo"}, ["away_team"], "distinct"),
        ({"temperature": None}, ["temperature"], "number"),
    ],
)
def test_record_field_errors(record_client, change, loc, kind):
    r = record_client.post("/predict", json={**ROW, **change})
    assert r.status_code == 422
    [error] = only_error(r)["errors"]
    assert (error["loc"], error["type"]) == (loc, kind)


def test_missing_and_extra_record_fields(record_client):
    r = record_client.post("/predict", json={"home_team": "Santos", "temp": 3})
    errors = {(tuple(e["loc"]), e["type"]) for e in only_error(r)["errors"]}
    assert r.status_code == 422
    assert errors == {
        (("temp",), "extra_forbidden"),
        (("away_team",), "missing"),
        (("temperature",), "missing"),
    }


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("Flamengp", "Flamengo"), ("sao paulo", "São Paulo"), ("Atletico", "Atlético Mineiro")],
)
def test_unknown_team_suggests_the_closest_names(record_client, typo, suggestion):
    r = record_client.post("/predict", json={**ROW, "home_team": typo})
    assert r.status_code == 422
    [error] = only_error(r)["errors"]
    assert error["type"] == "enum" and error["loc"] == ["home_team"]
    assert error["suggestions"][0] == suggestion
    assert typo in error["msg"]


def test_batch_errors_name_the_row(record_client):
    rows = [ROW, ROW, {**ROW, "away_team": "Palmeiraz"}]
    r = record_client.post("/predict", json={"instances": rows})
    assert r.status_code == 422
    [error] = only_error(r)["errors"]
    assert error["loc"] == ["instances", 2, "away_team"]
    assert error["suggestions"] == ["Palmeiras"]


def test_many_errors_are_counted_not_all_listed(record_client):
    rows = [{**ROW, "home_team": "Nobody"}] * 30
    body = only_error(record_client.post("/predict", json={"instances": rows}))
    assert len(body["errors"]) == 20
    assert body["errors_not_listed"] == 10


def test_empty_batch(record_client):
    r = record_client.post("/predict", json={"instances": []})
    assert r.status_code == 422
    assert only_error(r)["errors"][0]["type"] == "too_short"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"instances": ROW}, "array"),
        ({"instances": [ROW], "extra": 1}, "extra_forbidden"),
        ({"instances": [ROW, "x"]}, "object"),
    ],
)
def test_malformed_batches(record_client, body, kind):
    r = record_client.post("/predict", json=body)
    assert r.status_code == 422
    assert only_error(r)["errors"][0]["type"] == kind


@pytest.mark.parametrize("body", [b'[{"home_team": "Santos"}]', b'"Flamengo"', b"3", b"null"])
def test_body_must_be_an_object(record_client, body):
    r = post_raw(record_client, body)
    assert r.status_code == 422
    assert only_error(r)["errors"][0]["loc"] == []


def test_batch_over_the_limit(make_client, record_bundle):
    client = make_client(record_bundle, batch_limit=5)
    assert client.post("/predict", json={"instances": [ROW] * 5}).status_code == 200
    r = client.post("/predict", json={"instances": [ROW] * 6})
    assert r.status_code == 422
    error = only_error(r)["errors"][0]
    assert error["type"] == "too_long" and "limit of 5" in error["msg"]


def test_default_batch_limit_is_ten_thousand(vector_client):
    rows = [{"features": [1, 2, 3, 4]}]
    assert vector_client.post("/predict", json={"instances": rows * 10_000}).status_code == 200
    r = vector_client.post("/predict", json={"instances": rows * 10_001})
    assert r.status_code == 422


def test_body_over_the_size_limit_is_413(make_client, vector_bundle):
    client = make_client(vector_bundle, max_body_bytes=1024)
    body = {"instances": [{"features": [1.5, 2.5, 3.5, 4.5]}] * 60}
    r = client.post("/predict", json=body)
    assert r.status_code == 413
    assert only_error(r)["error"] == "body_too_large"


def test_streamed_body_over_the_limit_is_413(make_client, vector_bundle):
    # No Content-Length (chunked): the limit applies while reading.
    client = make_client(vector_bundle, max_body_bytes=1024)

    def chunks():
        yield b'{"instances": ['
        for _ in range(100):
            yield b'{"features": [1.5, 2.5, 3.5, 4.5]},'
        yield b'{"features": [1, 2, 3, 4]}]}'

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    # The rest of the body is unread: the connection cannot carry another request.
    assert r.headers["connection"] == "close"


def test_an_invalid_but_read_body_keeps_the_connection(vector_client):
    r = vector_client.post("/predict", json={"features": [1, 2]})
    assert r.status_code == 422
    assert "connection" not in r.headers


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(vector_client, ctype):
    r = post_raw(vector_client, b'{"features": [1, 2, 3, 4]}', ctype)
    assert r.status_code == 415
    assert only_error(r)["error"] == "unsupported_media_type"


def test_no_model_is_503_json(empty_client):
    r = empty_client.post("/predict", json={"features": [1, 2, 3, 4]})
    assert r.status_code == 503
    body = only_error(r)
    assert body["error"] == "no_model" and "no model at" in body["message"]
    assert "x-model-version" not in r.headers


def test_extreme_values_never_give_nan(vector_client):
    r = vector_client.post("/predict", json={"features": [1e308, -1e308, 1e308, 1e308]})
    assert r.status_code in (200, 422)
    if r.status_code == 200:
        probs = r.json()["predictions"][0]["probabilities"].values()
        assert all(p is not None and 0 <= p <= 1 for p in probs)
    else:
        assert r.json()["error"] == "unscorable_input"


# ------------------------------------------- the direct endpoint and the API route


def without_direct_endpoint(client: TestClient) -> TestClient:
    """The same app with its direct routes (app.asgi.DirectRoutes) switched off, so the
    request reaches the FastAPI route (which otherwise only documents it)."""
    (direct,) = [m for m in client.app.user_middleware if m.cls is DirectRoutes]
    direct.kwargs["routes"] = {}
    client.app.middleware_stack = None  # rebuilt on the next request
    return client


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b'{"home_team": "Flamengo", "away_team": "Palmeiras", "temperature": 21.5}', None),
        (
            b'{"instances": [{"home_team": "Flamengo", "away_team": "Palmeiras", '
            b'"temperature": 3}, {"home_team": "Santos", "away_team": "Flamengo", '
            b'"temperature": -2}]}',
            None,
        ),
        (b'{"home_team": "Flamengo", "away_team": "Flamengo", "temperature": 1}', None),
        (b'{"home_team": ', None),
        (b'{"instances": []}', None),
        (b'{"home_team": "Flamengo"}', "text/plain"),
    ],
)
def test_the_api_route_answers_as_the_direct_endpoint(make_client, record_bundle, body, ctype):
    direct = make_client(record_bundle)
    routed = without_direct_endpoint(make_client(record_bundle))
    a = post_raw(direct, body, ctype or "application/json")
    b = post_raw(routed, body, ctype or "application/json")
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert a.headers["content-type"] == b.headers["content-type"] == "application/json"
    assert a.headers["x-model-version"] == b.headers["x-model-version"]


def test_the_direct_endpoint_is_counted_under_its_route(record_client):
    record_client.post("/predict", json=ROW)
    metrics = record_client.get("/metrics").text
    assert 'palpite_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in (
        metrics
    )
