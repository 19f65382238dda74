"""The JSON routes: /predict, /model, /health/*, /metrics."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api_models import ErrorOut, LiveOut, ModelCardOut, NotReadyOut, PredictOut, ReadyOut
from app.context import get_context
from app.errors import ApiError, json_response
from app.metrics import CONTENT_TYPE
from app.schema import InputSchema


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
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


def build_router(schema: InputSchema | None, batch_limit: int) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/predict",
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
    async def predict(request: Request) -> Response:
        ctx = get_context(request)
        require_json(request)
        if ctx.predictor is None:
            raise no_model(ctx.model.reason)
        result = ctx.predictor.run(await request.body())
        counter = ctx.metrics.predictions
        for label, count in zip(ctx.predictor.classes, result.label_counts.tolist(), strict=True):
            if count:
                counter.labels(label).inc(count)
        return Response(result.body, media_type="application/json")

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
