"""The Open Inference Protocol (KServe V2) through a real client (tritonclient[http],
from PyPI) against real gunicorn: the football bundle and a vector bundle, one shared
one-worker server each (conftest.serve_bundles). The codec's own cases are unit tests
(tests/unit/app/test_app_v2.py); here each error class is seen as a client sees it.
"""

import http.client
import json
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as httpclient
from conftest import Gunicorn, request
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def servers(serve_bundles, football, releases) -> dict[str, Gunicorn]:
    football_server, vector_server = serve_bundles(football, releases[0])
    return {"football": football_server, "vector": vector_server}


@pytest.fixture(scope="module")
def clients(servers) -> Iterator[dict[str, httpclient.InferenceServerClient]]:
    out = {k: httpclient.InferenceServerClient(f"127.0.0.1:{s.port}") for k, s in servers.items()}
    yield out
    for client in out.values():
        client.close()


def card(server: Gunicorn) -> dict:
    status, _, body = request(server.port, "GET", "/model")
    assert status == 200
    return json.loads(body)


def text_input(name: str, values: list[str]) -> httpclient.InferInput:
    tensor = httpclient.InferInput(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(np.array(values, dtype=object), binary_data=False)
    return tensor


def vector_input(matrix: np.ndarray, datatype: str = "FP32") -> httpclient.InferInput:
    tensor = httpclient.InferInput("features", list(matrix.shape), datatype)
    dtype = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}[datatype]
    tensor.set_data_from_numpy(matrix.astype(dtype), binary_data=False)
    return tensor


def outputs(*names: str) -> list[httpclient.InferRequestedOutput]:
    return [httpclient.InferRequestedOutput(n, binary_data=False) for n in names]


def refused(call, status: int, *fragments: str) -> str:
    with pytest.raises(InferenceServerException) as err:
        call()
    assert err.value.status() == str(status), err.value
    for fragment in fragments:
        assert fragment in err.value.message(), err.value.message()
    return err.value.message()


def test_server_and_model_metadata_and_readiness(servers, clients):
    for kind, client in clients.items():
        meta = card(servers[kind])
        name, version = meta["name"], meta["version"]
        assert client.is_server_live() and client.is_server_ready()
        assert client.get_server_metadata()["name"] == "palpite"
        assert client.is_model_ready(name) and client.is_model_ready(name, version)
        assert not client.is_model_ready("no-such-model")
        assert not client.is_model_ready(name, "20200101T000000Z-00000000")
        model = client.get_model_metadata(name)
        assert model == client.get_model_metadata(name, version)
        assert model["name"] == name and model["versions"] == [version]
        proba = model["outputs"][0]
        assert (proba["name"], proba["datatype"]) == ("probabilities", "FP64")
        assert proba["shape"] == [-1, len(meta["classes"])]
        assert proba["parameters"]["classes"] == meta["classes"]
        schema = meta["input_schema"]
        if schema["kind"] == "record":
            assert [(t["name"], t["datatype"]) for t in model["inputs"]] == [
                (f["name"], "BYTES") for f in schema["fields"]
            ]
        else:
            assert model["inputs"][0]["shape"] == [-1, schema["length"]]
        refused(lambda c=client: c.get_model_metadata("no-such-model"), 404, "unknown model")
        refused(lambda c=client, n=name: c.get_model_metadata(n, "v0"), 404, "no version 'v0'")


def teams(meta: dict) -> list[str]:
    return meta["input_schema"]["fields"][0]["enum"]


def football_rows(meta: dict, n: int) -> tuple[list[str], list[str]]:
    names = teams(meta)
    return [names[i] for i in range(n)], [names[i + 1] for i in range(n)]


@pytest.mark.parametrize("rows", [1, 5])
def test_football_inference_matches_predict(servers, clients, rows):
    server, client = servers["football"], clients["football"]
    meta = card(server)
    home, away = football_rows(meta, rows)
    result = client.infer(
        meta["name"],
        [text_input("home_team", home), text_input("away_team", away)],
        request_id=f"batch-{rows}",
        outputs=outputs("probabilities", "label"),
    )
    response = result.get_response()
    assert response["id"] == f"batch-{rows}" and response["model_version"] == meta["version"]
    proba, labels = result.as_numpy("probabilities"), result.as_numpy("label")
    assert proba.shape == (rows, len(meta["classes"])) and labels.shape == (rows,)
    instances = [{"home_team": h, "away_team": a} for h, a in zip(home, away, strict=True)]
    status, _, body = request(server.port, "POST", "/predict", {"instances": instances})
    assert status == 200
    native = json.loads(body)["predictions"]
    assert proba.tolist() == [[p["probabilities"][c] for c in meta["classes"]] for p in native]
    assert [str(x) for x in labels] == [p["label"] for p in native]


def test_output_selection_and_versioned_path(servers, clients):
    meta = card(servers["football"])
    home, away = football_rows(meta, 2)
    inputs = [text_input("home_team", home), text_input("away_team", away)]
    client = clients["football"]
    # No outputs named: the client asks for binary outputs, the server answers JSON ones.
    everything = client.infer(meta["name"], inputs)
    assert everything.as_numpy("probabilities").shape == (2, len(meta["classes"]))
    assert everything.as_numpy("label").shape == (2,)
    only_label = client.infer(meta["name"], inputs, outputs=outputs("label"))
    assert only_label.as_numpy("probabilities") is None
    assert only_label.as_numpy("label").shape == (2,)
    versioned = client.infer(
        meta["name"], inputs, model_version=meta["version"], outputs=outputs("probabilities")
    )
    assert versioned.as_numpy("label") is None
    assert versioned.as_numpy("probabilities").shape == (2, len(meta["classes"]))
    refused(lambda: client.infer(meta["name"], inputs, model_version="v0"), 404, "no version")
    refused(lambda: client.infer("no-such-model", inputs), 404, "unknown model 'no-such-model'")


def test_football_errors(servers, clients):
    client, meta = clients["football"], card(servers["football"])
    name, (first, second, third) = meta["name"], teams(meta)[:3]
    home = text_input("home_team", [first])
    away = text_input("away_team", [second])

    def infer(*inputs, **kwargs):
        return lambda: client.infer(name, list(inputs), outputs=outputs("label"), **kwargs)

    refused(infer(home, text_input("visitor", [second])), 422, "unknown input 'visitor'")
    refused(infer(home), 422, "missing input 'away_team'")
    refused(infer(home, text_input("away_team", [second, third])), 422, "differs")
    numbers = httpclient.InferInput("away_team", [1], "FP64")
    numbers.set_data_from_numpy(np.array([1.0]), binary_data=False)
    refused(infer(home, numbers), 422, "datatype must be BYTES")
    refused(
        infer(home, text_input("away_team", [second + "x"])),
        422,
        f"input 'away_team' at [0]: unknown value '{second}x'",
        f"did you mean '{second}'",
    )
    refused(infer(home, text_input("away_team", [first])), 422, "must differ")
    binary = httpclient.InferInput("away_team", [1], "BYTES")
    binary.set_data_from_numpy(np.array([b"\xff\xfe"], dtype=object), binary_data=True)
    refused(infer(home, binary), 415, "binary data extension")
    # The client will not put non-UTF-8 bytes in JSON; a raw request does.
    raw = (
        b'{"inputs": [{"name": "home_team", "datatype": "BYTES", "shape": [1], "data": ["\xff"]},'
        b' {"name": "away_team", "datatype": "BYTES", "shape": [1], "data": ["%s"]}]}'
    ) % second.encode()
    conn = http.client.HTTPConnection("127.0.0.1", servers["football"].port, timeout=30)
    conn.request("POST", f"/v2/models/{name}/infer", raw, {"content-type": "application/json"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 400 and "not valid JSON" in body["error"], body
    valid = client.infer(name, [home, away], outputs=outputs("label"))  # and the right pair
    assert valid.as_numpy("label").shape == (1,)


def test_vector_inference_and_errors(servers, clients):
    client, meta = clients["vector"], card(servers["vector"])
    name, classes = meta["name"], meta["classes"]
    batch = np.array([[0.5, -1.0, 2.0, 0.1], [-2.0, 0.3, 0.0, 1.5]], dtype=np.float32)
    result = client.infer(name, [vector_input(batch)], outputs=outputs("probabilities", "label"))
    proba = result.as_numpy("probabilities")
    assert proba.shape == (2, len(classes)) and np.allclose(proba.sum(axis=1), 1.0)
    assert [str(x) for x in result.as_numpy("label")] == [classes[i] for i in proba.argmax(1)]
    single = client.infer(name, [vector_input(batch[0], "FP64")], outputs=outputs("label"))
    assert single.as_numpy("label").shape == (1,)

    def infer(tensor):
        return lambda: client.infer(name, [tensor], outputs=outputs("label"))

    refused(infer(vector_input(np.zeros((2, 3), np.float32))), 422, "shape must be [N, 4]")
    refused(infer(vector_input(np.zeros((1, 4), np.int64), "INT64")), 422, "FP64 or FP32")
    nan = np.array([[np.nan, 0, 0, 0]], dtype=np.float64)
    refused(infer(vector_input(nan, "FP64")), 400, "NaN and Infinity are not JSON numbers")
    inf = np.array([[np.inf, 0, 0, 0]], dtype=np.float64)
    refused(infer(vector_input(inf, "FP64")), 400, "not valid JSON")
    short = httpclient.InferInput("features", [1, 4], "FP32")
    short.set_data_from_numpy(np.zeros((1, 4), np.float32), binary_data=False)
    short._data = short._data[:3]  # data shorter than the declared shape
    refused(infer(short), 422, "needs 4 value(s), 'data' has 3")
