"""/docs (Swagger UI) and /redoc from local files, under a CSP without inline scripts.

FastAPI's own doc pages load their assets from a CDN and start Swagger UI with an inline
<script>; both break behind `script-src 'self'`. Here the assets come from the
fastapi-offline package (Swagger UI: Apache-2.0, ReDoc: MIT; their licence headers are
in the files) and a local script reads the spec URL from a data attribute.
"""

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from app.pages import TEMPLATES

VENDOR_DIR = Path(str(resources.files("fastapi_offline") / "static"))


def vendor_assets() -> StaticFiles:
    return StaticFiles(directory=VENDOR_DIR)


def build_router(title: str, openapi_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    context = {"title": title, "openapi_url": openapi_url}

    @router.get("/docs")
    async def swagger(request: Request) -> Response:
        return TEMPLATES.TemplateResponse(request, "swagger.html", context)

    @router.get("/redoc")
    async def redoc(request: Request) -> Response:
        return TEMPLATES.TemplateResponse(request, "redoc.html", context)

    return router
