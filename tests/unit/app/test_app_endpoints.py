"""Health, model card, metrics, docs pages, static assets, request ids and JSON errors."""

import multiprocessing
import os
import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app import middleware
from ml.bundle import read_card


def samples(client: TestClient) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_live_is_always_200(vector_client, empty_client):
    for client in (vector_client, empty_client):
        r = client.get("/health/live")
        assert (r.status_code, r.json()) == (200, {"status": "alive"})


def test_ready_names_the_loaded_version(vector_client, vector_bundle):
    r = vector_client.get("/health/ready")
    version = read_card(vector_bundle)["version"]
    assert (r.status_code, r.json()) == (200, {"status": "ready", "model_version": version})
    assert r.headers["x-model-version"] == version


def test_ready_is_503_with_the_reason(empty_client):
    r = empty_client.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready"
    assert "no model at" in r.json()["reason"]


def test_a_damaged_bundle_is_a_reason_not_a_crash(make_client, vector_bundle, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(vector_bundle, broken)
    (broken / "model.joblib").write_bytes(b"not a pickle")
    client = make_client(broken)
    r = client.get("/health/ready")
    assert r.status_code == 503 and "checksum mismatch" in r.json()["reason"]
    assert client.post("/predict", json={"features": [1, 2, 3, 4]}).status_code == 503
    assert client.get("/").status_code == 503


def test_the_current_symlink_is_followed(make_client, vector_bundle, tmp_path):
    current = tmp_path / "current"
    current.symlink_to(vector_bundle)
    r = make_client(current).get("/health/ready")
    assert r.json()["model_version"] == vector_bundle.name


def test_model_card(record_client, record_bundle):
    r = record_client.get("/model")
    assert r.status_code == 200
    assert r.json() == read_card(record_bundle)


def test_model_card_without_model_is_503(empty_client):
    r = empty_client.get("/model")
    assert r.status_code == 503 and r.json()["error"] == "no_model"


def test_metrics_count_requests_predictions_and_the_model(record_client, record_bundle):
    row = {"home_team": "Santos", "away_team": "Grêmio", "temperature": 10}
    for _ in range(3):
        assert record_client.post("/predict", json={"instances": [row, row]}).status_code == 200
    assert record_client.post("/predict", json={"home_team": 1}).status_code == 422
    s = samples(record_client)
    ok = frozenset({("route", "/predict"), ("method", "POST"), ("status", "200")})
    bad = frozenset({("route", "/predict"), ("method", "POST"), ("status", "422")})
    assert s[("palpite_http_requests_total", ok)] == 3
    assert s[("palpite_http_requests_total", bad)] == 1
    predicted = sum(v for (name, _), v in s.items() if name == "palpite_predictions_total")
    assert predicted == 6
    hist = frozenset({("route", "/predict")})
    assert s[("palpite_http_request_duration_seconds_count", hist)] == 4
    card = read_card(record_bundle)
    info = frozenset({("name", card["name"]), ("version", card["version"])})
    assert s[("palpite_model_info", info)] == 1
    assert s[("palpite_model_ready", frozenset())] == 1
    assert s[("palpite_model_load_seconds", frozenset({("version", card["version"])}))] > 0


def test_metrics_without_model(empty_client):
    s = samples(empty_client)
    assert s[("palpite_model_ready", frozenset())] == 0
    assert not any(name == "palpite_model_info" for name, _ in s)


def test_unknown_paths_are_grouped_in_metrics(vector_client):
    r = vector_client.get("/no/such/page")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    unmatched = frozenset({("route", "<unmatched>"), ("method", "GET"), ("status", "404")})
    assert samples(vector_client)[("palpite_http_requests_total", unmatched)] == 1


def test_unusual_methods_are_one_label_in_metrics(vector_client):
    """A client choosing the method must not choose how many series /metrics holds."""
    for method in ("BREW", "PROPFIND", "X-ANYTHING"):
        assert vector_client.request(method, "/health/live").status_code == 405
    labels = {
        dict(key)["method"]
        for name, key in samples(vector_client)
        if name == "palpite_http_requests_total"
    }
    assert "OTHER" in labels and not labels & {"BREW", "PROPFIND", "X-ANYTHING"}


def test_wrong_method_is_json_405(vector_client):
    r = vector_client.get("/predict")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_request_id_is_generated_or_echoed(vector_client):
    generated = vector_client.get("/health/live").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    r = vector_client.get("/health/live", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    # An id that is unsafe to log is replaced, not echoed.
    r = vector_client.get("/health/live", headers={"x-request-id": 'a b"c'})
    assert r.headers["x-request-id"] != 'a b"c'


def _id_and_pid(out) -> None:
    out.put((middleware._request_id({"headers": []}), middleware._pid, os.getpid()))


def test_forked_workers_make_their_own_ids_and_log_their_own_pid():
    # As gunicorn forks its workers from one master: the ids come from the random module
    # and the pid is cached, so both must be renewed in every child.
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    children = [fork.Process(target=_id_and_pid, args=(out,)) for _ in range(2)]
    for child in children:
        child.start()
    got = [out.get(timeout=30) for _ in children]
    for child in children:
        child.join(timeout=30)
    (id_a, logged_a, pid_a), (id_b, logged_b, pid_b) = got
    assert id_a != id_b
    assert re.fullmatch(rb"[0-9a-f]{32}", id_a) and re.fullmatch(rb"[0-9a-f]{32}", id_b)
    assert (logged_a, logged_b) == (pid_a, pid_b) and pid_a != os.getpid()


def test_access_log_is_json_with_the_request_id(vector_client, caplog):
    import json

    caplog.set_level("INFO", logger="palpite.access")
    vector_client.post("/predict", json={"features": [1, 2, 3, 4]}, headers={"x-request-id": "r1"})
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "palpite.access"]
    assert line["request_id"] == "r1"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/predict", 200)
    assert line["duration_ms"] > 0 and line["model_version"]
    stamp = datetime.fromisoformat(line["time"])
    assert stamp.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def test_openapi_request_schema_comes_from_the_bundle(record_client, vector_client):
    def predict_schema(client):
        spec = client.get("/openapi.json").json()
        return spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]

    single, batch = predict_schema(record_client)["schema"]["oneOf"]
    assert single["properties"]["home_team"]["enum"][0] == "Flamengo"
    assert single["required"] == ["home_team", "away_team", "temperature"]
    assert batch["properties"]["instances"]["maxItems"] == 10_000
    vec = predict_schema(vector_client)
    assert vec["schema"]["oneOf"][0]["properties"]["features"]["minItems"] == 4
    assert vec["examples"]["single"]["value"] == {"features": [1.0, 2.0, 3.0, 4.0]}
    # The documented examples are themselves valid requests.
    for example in vec["examples"].values():
        assert vector_client.post("/predict", json=example["value"]).status_code == 200


def test_docs_pages_use_local_assets_only(vector_client):
    for path, assets in {
        "/docs": ["swagger-ui-bundle.js", "swagger-init.js", "swagger-ui.css"],
        "/redoc": ["redoc.standalone.js", "redoc-init.js"],
    }.items():
        page = vector_client.get(path)
        assert page.status_code == 200
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert all(u.startswith("/static/") for u in urls), urls
        assert "<script>" not in page.text
        for asset in assets:
            [url] = [u for u in urls if u.endswith(asset)]
            r = vector_client.get(url)
            assert r.status_code == 200 and len(r.content) > 100, url
