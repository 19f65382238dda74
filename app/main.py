"""The app factory: `gunicorn -c app/gunicorn.conf.py` calls `app.main:create_app()`."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from app import api, docs_pages, pages, v2
from app.access_log import flush_all
from app.asgi import DirectRoutes
from app.context import AppContext
from app.errors import ApiError, error_response
from app.fast_lane import FastLane, FastLaneApp
from app.metrics import Metrics
from app.middleware import Bookkeeping, ServiceMiddleware
from app.model_state import Loader, load_model_state
from app.predict import Predictor
from app.settings import Settings
from ml.bundle import load_bundle

log = logging.getLogger("palpite.app")
STATIC_DIR = Path(__file__).parent / "static"
OPENAPI_URL = "/openapi.json"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # The server has answered its last request: write the access lines and metric
    # updates still waiting for company (app/access_log.py, app/metrics.py). uvicorn
    # then re-raises the SIGTERM that stopped it, so no exit hook after this would run.
    flush_all()
    app.state.ctx.metrics.flush()


def create_app(settings: Settings | None = None, *, loader: Loader = load_bundle) -> FastAPI:
    """Build the app and load the model once; with no valid model it still starts."""
    settings = settings or Settings()
    logging.getLogger("palpite").setLevel(settings.log_level.upper())
    state = load_model_state(settings.model_dir, loader)
    metrics = Metrics(settings.record_flush_seconds)
    _record_model(metrics, state)
    predictor = (
        Predictor(state.model, state.schema, settings.batch_limit, metrics)
        if state.model is not None and state.schema is not None
        else None
    )

    name = state.card["name"] if state.card else "no model loaded"
    app = FastLaneApp(
        title=f"palpite: {name}",
        version=metadata.version("palpite"),
        description="Predictions from a scikit-learn model bundle. The request schema of "
        "/predict comes from the loaded bundle's input schema. The /v2 paths speak the Open "
        "Inference Protocol (KServe V2) over the same model (docs/inference-protocol.md).",
        openapi_url=OPENAPI_URL,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's native OpenTelemetry checks the global providers on every request;
        # this service reports through its own Prometheus metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    ctx = app.state.ctx = AppContext(settings, state, predictor, metrics)
    protocol = v2.ProtocolService(ctx, app.version)
    app.include_router(api.build_router(state.schema, settings.batch_limit))
    app.include_router(v2.build_router(protocol, settings.batch_limit))
    app.include_router(pages.build_router())
    app.include_router(docs_pages.build_router(app.title, OPENAPI_URL))
    app.mount("/static/vendor", docs_pages.vendor_assets(), name="vendor")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    # The hot POSTs, answered past the router (app/asgi.py says why); their routes above
    # answer the same without it, and document them.
    direct = {("POST", "/predict"): api.PredictEndpoint(ctx), **v2.direct_endpoints(protocol)}
    app.add_middleware(DirectRoutes, routes=direct)
    # Added last, so outermost: request ids, the body limit, metrics and the access log
    # cover the direct endpoints too.
    book = Bookkeeping(
        metrics, settings.max_body_bytes, state.version, flush_seconds=settings.record_flush_seconds
    )
    app.add_middleware(ServiceMiddleware, book=book)
    # And ahead of the whole stack, the same endpoints with the same bookkeeping and 500
    # handling (app/fast_lane.py); DirectRoutes above answers them if it is turned off.
    app.fast_lane = FastLane(book, direct, _unexpected_error)
    return app


def _record_model(metrics: Metrics, state) -> None:
    metrics.model_ready.set(1 if state.ready else 0)
    if state.model is not None:
        metrics.model_info.labels(state.model.card["name"], state.version).set(1)
        metrics.model_load_seconds.labels(state.version).set(state.load_seconds)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(
        ApiError(exc.status_code, code, str(exc.detail)), headers=getattr(exc, "headers", None)
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette re-raises after this answer and uvicorn then closes the connection. Saying
    # so keeps a proxy from reusing it: nginx would send the next request down a closing
    # connection and answer that request (a POST, never retried) with a 502.
    return error_response(
        ApiError(500, "internal_error", "internal error, logged on the server"),
        headers={"connection": "close"},
    )
