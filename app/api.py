"""The JSON routes: /predict, /model, /health/*, /metrics."""

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.api_models import ErrorOut, LiveOut, ModelCardOut, NotReadyOut, PredictOut, ReadyOut
from app.context import AppContext, get_context
from app.errors import ApiError, json_response, send_error
from app.metrics import CONTENT_TYPE
from app.middleware import header
from app.predict import Predictor
from app.schema import InputSchema


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


def require_json(content_type: str, *, allow_missing: bool = False) -> None:
    """415 unless the body is declared JSON (or, with `allow_missing`, not declared: the
    Open Inference Protocol's clients send JSON without a content type)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and (media or not allow_missing):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {media or 'no content type'}",
        )


def no_model(reason: str | None) -> ApiError:
    return ApiError(503, "no_model", f"no model loaded: {reason}")


def predict_request_body(schema: InputSchema | None, batch_limit: int) -> dict[str, Any]:
    """The OpenAPI requestBody of /predict, from the bundle's input schema."""
    instance = schema.instance_json_schema() if schema else {"type": "object"}
    batch = {
        "type": "object",
        "properties": {
            "instances": {
                "type": "array",
                "items": instance,
                "minItems": 1,
                "maxItems": batch_limit,
            }
        },
        "required": ["instances"],
        "additionalProperties": False,
    }
    examples: dict[str, Any] = {}
    if schema:
        examples = {
            "single": {"summary": "One instance", "value": schema.example},
            "batch": {"summary": "A batch", "value": {"instances": [schema.example] * 2}},
        }
    content: dict[str, Any] = {"schema": {"oneOf": [instance, batch]}}
    if examples:
        content["examples"] = examples
    return {"required": True, "content": {"application/json": content}}


def ready_predictor(ctx: AppContext, content_type: str) -> Predictor:
    """What /predict checks before it reads the body."""
    require_json(content_type)
    if ctx.predictor is None:
        raise no_model(ctx.model.reason)
    return ctx.predictor


def record_labels(ctx: AppContext, predictor: Predictor, label_counts: np.ndarray) -> None:
    for label, count in zip(predictor.classes, label_counts.tolist(), strict=True):
        if count:
            ctx.metrics.record_predictions(label, count)


def answer_predictions(ctx: AppContext, predictor: Predictor, body: bytes) -> bytes:
    result = predictor.run(body)
    record_labels(ctx, predictor, result.label_counts)
    return result.body


async def predict(request: Request) -> Response:
    """The API route's handler, for OpenAPI and for an app without ServiceMiddleware;
    with it, PredictEndpoint answers every POST /predict."""
    ctx = get_context(request)
    predictor = ready_predictor(ctx, request.headers.get("content-type", ""))
    body = answer_predictions(ctx, predictor, await request.body())
    return Response(body, media_type="application/json")


class PredictEndpoint:
    """POST /predict as a raw ASGI app that ServiceMiddleware calls directly, past
    Starlette's exception middleware, router and Request/Response objects: together
    they cost about as much as a single prediction. Same checks and answers as
    `predict`; an unexpected error still reaches the app's outermost 500 handler."""

    path = "/predict"  # the route template the metrics and the access log use

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = None
        try:
            content_type = (header(scope, b"content-type") or b"").decode("latin-1")
            predictor = ready_predictor(self.ctx, content_type)
            body = await read_body(receive)
            if body is None:
                return  # the client went away; nobody to answer
            answer = answer_predictions(self.ctx, predictor, body)
        except ApiError as exc:
            await send_error(send, exc, close=body is None)
            return
        await send_json(send, answer)


async def send_json(send: Send, body: bytes, status: int = 200) -> None:
    """A JSON answer in raw ASGI."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def build_router(schema: InputSchema | None, batch_limit: int) -> APIRouter:
    router = APIRouter()
    router.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        summary="Predict one instance or a batch",
        description=(
            f'One instance, or `{{"instances": [...]}}` with 1 to {batch_limit} of them.'
            " The answer lists one prediction per instance, in order."
        ),
        response_model=None,
        openapi_extra={"requestBody": predict_request_body(schema, batch_limit)},
        responses={
            200: {"model": PredictOut, "description": "Predictions"},
            400: _error("Malformed JSON"),
            413: _error("Body over the size limit"),
            415: _error("Not application/json"),
            422: _error("Invalid values, with field-level errors"),
            503: _error("No model loaded"),
        },
    )

    @router.get(
        "/model",
        summary="The model card",
        response_model=None,
        responses={200: {"model": ModelCardOut}, 503: _error("No model loaded")},
    )
    async def model_card(request: Request) -> Response:
        ctx = get_context(request)
        if ctx.model.card is None:
            raise no_model(ctx.model.reason)
        return json_response(ctx.model.card)

    @router.get("/health/live", summary="The process answers", response_model=LiveOut)
    async def live() -> Response:
        return json_response({"status": "alive"})

    @router.get(
        "/health/ready",
        summary="A valid model is loaded (the rollout polls this)",
        response_model=None,
        responses={200: {"model": ReadyOut}, 503: {"model": NotReadyOut}},
    )
    async def ready(request: Request) -> Response:
        ctx = get_context(request)
        if ctx.model.version is None:
            return json_response({"status": "not_ready", "reason": ctx.model.reason}, 503)
        return json_response({"status": "ready", "model_version": ctx.model.version})

    @router.get(
        "/metrics",
        summary="Prometheus metrics, merged over all workers",
        response_model=None,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def metrics(request: Request) -> Response:
        return Response(get_context(request).metrics.render(), media_type=CONTENT_TYPE)

    return router
