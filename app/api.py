"""The JSON routes: /predict, /model, /health/*, /metrics."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Scope

from app.api_models import ErrorOut, LiveOut, ModelCardOut, NotReadyOut, PredictOut, ReadyOut
from app.asgi import DirectEndpoint, content_type
from app.context import AppContext, get_context
from app.errors import ApiError, json_response
from app.metrics import CONTENT_TYPE
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


async def predict(request: Request) -> Response:
    """The API route's handler, for OpenAPI and for an app without app.asgi.DirectRoutes;
    with it, PredictEndpoint answers every POST /predict."""
    predictor = ready_predictor(get_context(request), request.headers.get("content-type", ""))
    body = predictor.run(await request.body()).body
    return Response(body, media_type="application/json")


class PredictEndpoint(DirectEndpoint[Predictor]):
    """POST /predict past the router (app.asgi): the same checks and answers as `predict`."""

    path = "/predict"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def prepare(self, scope: Scope) -> Predictor:
        return ready_predictor(self.ctx, content_type(scope))

    def answer(self, prepared: Predictor, body: bytes) -> bytes:
        return prepared.run(body).body


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
