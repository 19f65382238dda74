"""The Open Inference Protocol (KServe V2) REST endpoints under /v2: one more entry point
to the same Predictor as /predict, with its limits, metrics and error classes.

Inference on the served model's own paths is answered by InferEndpoint, a direct
endpoint past the router (app.asgi, as api.PredictEndpoint); the routes here answer
every other /v2 request and document all of them in the OpenAPI page.
"""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response
from starlette.types import Scope

from app.api import require_json
from app.asgi import DirectEndpoint, RouteKey, content_type, header
from app.context import AppContext
from app.errors import ApiError
from app.predict import Predictor
from app.v2_codec import OUTPUTS, Codec, ProtocolError, protocol_error
from app.v2_metadata import infer_request_body, model_metadata
from app.v2_models import (
    V2ErrorOut,
    V2InferOut,
    V2LiveOut,
    V2ModelOut,
    V2ModelReadyOut,
    V2ReadyOut,
    V2ServerOut,
)

INFER = "/v2/models/{name}/infer"
INFER_VERSION = "/v2/models/{name}/versions/{version}/infer"
BINARY_HEADER = b"inference-header-content-length"


class ProtocolService:
    """What the /v2 endpoints share: the served model's name, version and codec."""

    def __init__(self, ctx: AppContext, server_version: str) -> None:
        self.ctx = ctx
        card = ctx.model.card
        self.name: str | None = card["name"] if card else None
        self.version = ctx.model.version
        self.codec: Codec | None = None
        self.metadata = b""
        if ctx.predictor is not None and card is not None and self.version is not None:
            self.codec = Codec(
                ctx.predictor.schema, ctx.predictor.classes, card["name"], self.version
            )
            self.metadata = orjson.dumps(model_metadata(self.codec, card["name"], self.version))
        self.server = orjson.dumps({"name": "palpite", "version": server_version, "extensions": []})

    def model(self, name: str, version: str | None) -> tuple[Predictor, Codec]:
        """The predictor for `name` (and `version`): 404 for another, 503 with none."""
        if self.codec is None or self.ctx.predictor is None:
            raise ProtocolError(503, "no_model", f"no model loaded: {self.ctx.model.reason}")
        if name != self.name:
            raise ProtocolError(
                404, "unknown_model", f"unknown model {name!r}: this server serves {self.name!r}"
            )
        if version is not None and version != self.version:
            raise ProtocolError(
                404,
                "unknown_version",
                f"model {name!r} has no version {version!r} here:"
                f" this host serves {self.version!r}",
            )
        return self.ctx.predictor, self.codec

    def ready_to_infer(
        self, name: str, version: str | None, content_type: str, binary: bool
    ) -> tuple[Predictor, Codec]:
        """What infer checks before it reads the body."""
        predictor, codec = self.model(name, version)
        if binary:
            raise ProtocolError(
                415,
                "unsupported_media_type",
                "the binary data extension is not supported: send tensor data as JSON",
            )
        try:
            require_json(content_type, allow_missing=True)
        except ApiError as exc:
            raise protocol_error(exc) from None
        return predictor, codec

    def infer(self, predictor: Predictor, codec: Codec, body: bytes) -> bytes:
        try:
            return predictor.infer(codec, body)
        except ApiError as exc:
            raise protocol_error(exc) from None


class InferEndpoint(DirectEndpoint[tuple[Predictor, Codec]]):
    """POST infer on the served model's paths past the router (see api.PredictEndpoint)."""

    def __init__(self, service: ProtocolService, path: str, version: str | None) -> None:
        assert service.name is not None
        self.service = service
        self.name = service.name
        self.path = path
        self.version = version

    def prepare(self, scope: Scope) -> tuple[Predictor, Codec]:
        binary = header(scope, BINARY_HEADER) is not None
        return self.service.ready_to_infer(self.name, self.version, content_type(scope), binary)

    def answer(self, prepared: tuple[Predictor, Codec], body: bytes) -> bytes:
        return self.service.infer(*prepared, body)

    def error(self, exc: ApiError) -> ApiError:
        return protocol_error(exc)


def direct_endpoints(service: ProtocolService) -> dict[RouteKey, DirectEndpoint[Any]]:
    """The direct routes (app.asgi.DirectRoutes) of the served model's infer paths."""
    if service.codec is None or service.name is None:
        return {}
    plain = f"/v2/models/{service.name}/infer"
    versioned = f"/v2/models/{service.name}/versions/{service.version}/infer"
    return {
        ("POST", plain): InferEndpoint(service, INFER, None),
        ("POST", versioned): InferEndpoint(service, INFER_VERSION, service.version),
    }


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type="application/json")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "Malformed JSON (NaN and Infinity included)",
        404: "Unknown model or version",
        413: "Body over the size limit",
        415: "Not JSON, or the binary data extension",
        422: "Invalid tensors or values, naming the input",
        503: "No model loaded",
    }
    return {c: {"model": V2ErrorOut, "description": described[c]} for c in codes}


def build_router(service: ProtocolService, batch_limit: int) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (KServe V2)"])
    served = {"enum": [service.name]} if service.name else None
    version_enum = {"enum": [service.version]} if service.version else None
    NameParam = Annotated[  # noqa: N806
        str, Path(description="The model card's name", json_schema_extra=served)
    ]
    VersionParam = Annotated[  # noqa: N806
        str, Path(description="The bundle version this host serves", json_schema_extra=version_enum)
    ]

    @router.get("", summary="Server metadata", response_model=V2ServerOut)
    async def server_metadata() -> Response:
        return _json(service.server)

    @router.get("/health/live", summary="The server is live", response_model=V2LiveOut)
    async def live() -> Response:
        return _json(b'{"live":true}')

    @router.get(
        "/health/ready",
        summary="The server is ready (a valid model is loaded)",
        response_model=None,
        responses={200: {"model": V2ReadyOut}, 503: {"model": V2ReadyOut}},
    )
    async def ready() -> Response:
        if service.codec is None:
            return _json(b'{"ready":false}', 503)
        return _json(b'{"ready":true}')

    def metadata(name: str, version: str | None = None) -> Response:
        service.model(name, version)
        return _json(service.metadata)

    def model_ready(name: str, version: str | None = None) -> Response:
        service.model(name, version)
        return _json(orjson.dumps({"name": name, "ready": True}))

    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        predictor, codec = service.ready_to_infer(
            name,
            version,
            request.headers.get("content-type", ""),
            BINARY_HEADER.decode() in request.headers,
        )
        return _json(service.infer(predictor, codec, await request.body()))

    meta = {"response_model": None, "responses": {200: {"model": V2ModelOut}, **_errors(404, 503)}}
    ready_doc = {
        "response_model": None,
        "responses": {200: {"model": V2ModelReadyOut}, **_errors(404, 503)},
    }
    infer_doc = {
        "response_model": None,
        "openapi_extra": {"requestBody": infer_request_body(service.codec, batch_limit)},
        "responses": {
            200: {"model": V2InferOut, "description": f"Outputs: {', '.join(OUTPUTS)}"},
            **_errors(400, 404, 413, 415, 422, 503),
        },
    }

    @router.get("/models/{name}", summary="Model metadata", **meta)
    async def get_model_metadata(name: NameParam) -> Response:
        return metadata(name)

    @router.get("/models/{name}/versions/{version}", summary="Model version metadata", **meta)
    async def version_metadata(name: NameParam, version: VersionParam) -> Response:
        return metadata(name, version)

    @router.get("/models/{name}/ready", summary="The model is ready", **ready_doc)
    async def ready_model(name: NameParam) -> Response:
        return model_ready(name)

    @router.get(
        "/models/{name}/versions/{version}/ready", summary="The model version is ready", **ready_doc
    )
    async def ready_version(name: NameParam, version: VersionParam) -> Response:
        return model_ready(name, version)

    @router.post("/models/{name}/infer", summary="Inference", **infer_doc)
    async def infer_model(request: Request, name: NameParam) -> Response:
        return await infer(request, name)

    @router.post(
        "/models/{name}/versions/{version}/infer", summary="Inference on a version", **infer_doc
    )
    async def infer_version(request: Request, name: NameParam, version: VersionParam) -> Response:
        return await infer(request, name, version)

    return router
