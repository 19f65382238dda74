"""The prediction boundary: every entry point (JSON, form, V2 infer) predicts through one
Predictor, which counts the predictions; the direct routes pass every other request on."""

import asyncio
from typing import Any

from test_app_endpoints import samples

from app.asgi import DirectEndpoint, DirectRoutes

ROW = {"home_team": "Flamengo", "away_team": "Palmeiras", "temperature": 21.5}
FORM = {"home_team": "Flamengo", "away_team": "Palmeiras", "temperature": "21.5"}


def predicted(client: Any) -> dict[str, float]:
    return {
        dict(labels)["label"]: value
        for (name, labels), value in samples(client).items()
        if name == "palpite_predictions_total"
    }


def test_every_entry_point_counts_its_rows_once(record_client):
    predictor = record_client.app.state.ctx.predictor
    label = record_client.post("/predict", json=ROW).json()["predictions"][0]["label"]
    assert predicted(record_client) == {label: 1}
    assert record_client.post("/", data=FORM).status_code == 200
    assert predicted(record_client) == {label: 2}  # the same row, through the form
    name = record_client.app.state.ctx.model.card["name"]
    tensors = [
        {
            "name": k,
            "shape": [1],
            "datatype": "BYTES" if isinstance(v, str) else "FP64",
            "data": [v],
        }
        for k, v in ROW.items()
    ]
    r = record_client.post(f"/v2/models/{name}/infer", json={"inputs": tensors})
    assert r.status_code == 200
    assert predicted(record_client) == {label: 3}
    # Refused input counts nothing, whichever door it came through.
    record_client.post("/predict", json={**ROW, "temperature": "warm"})
    record_client.post("/", data={**FORM, "temperature": "warm"})
    assert predicted(record_client) == {label: 3}
    assert predictor.metrics is record_client.app.state.ctx.metrics


def test_a_predictor_without_metrics_counts_nothing(record_client):
    ctx = record_client.app.state.ctx
    quiet = type(ctx.predictor)(ctx.model.model, ctx.model.schema, batch_limit=1)
    assert quiet.form({k: [v] for k, v in FORM.items()}).shape == (3,)
    assert predicted(record_client) == {}


class Echo(DirectEndpoint[None]):
    path = "/echo"

    def prepare(self, scope: Any) -> None:
        return None

    def answer(self, prepared: None, body: bytes) -> bytes:
        return body


def test_direct_routes_answer_theirs_and_pass_the_rest_on():
    passed: list[str] = []
    sent: list[dict] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["type"] if scope["type"] != "http" else scope["path"])

    async def receive() -> dict:
        return {"type": "http.request", "body": b'{"a":1}', "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    routes = DirectRoutes(app, {("POST", "/echo"): Echo()})

    async def calls() -> None:
        for method, path in (("POST", "/echo"), ("GET", "/echo"), ("POST", "/other")):
            scope = {"type": "http", "method": method, "path": path, "headers": []}
            await routes(scope, receive, send)
            if path == "/echo" and method == "POST":
                assert scope["route"].path == "/echo"
        await routes({"type": "lifespan"}, receive, send)

    asyncio.run(calls())
    assert passed == ["/echo", "/other", "lifespan"]
    assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"a":1}'
