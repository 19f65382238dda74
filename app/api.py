"""The JSON routes: /predict, /model, /health/*, /metrics."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

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


async def predict(request: Request) -> Response:
    ctx = get_context(request)
    require_json(request)
    if ctx.predictor is None:
        raise no_model(ctx.model.reason)
    result = ctx.predictor.run(await request.body())
    for label, count in zip(ctx.predictor.classes, result.label_counts.tolist(), strict=True):
        if count:
            ctx.metrics.record_predictions(label, count)
    return Response(result.body, media_type="application/json")


class _NamedRoute(Route):
    """A Starlette route that puts itself in the scope as FastAPI's routes do, so the
    metrics and the access log group its requests under its path template."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


def predict_route() -> Route:
    """POST /predict as a plain Starlette route, for the app's own route list ahead of
    `build_router`'s: FastAPI's dependency solving and response handling cost about as
    much as a single prediction, and the handler reads the raw body anyway. The API route
    of the same path in `build_router`, never reached for POST, documents it in OpenAPI."""
    return _NamedRoute("/predict", predict, methods=["POST"], include_in_schema=False)


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
