"""The ceiling for bench_api.py: a bare FastAPI endpoint that returns a constant.

Served by the same gunicorn config as the real app (`gunicorn -c app/gunicorn.conf.py
'bench.ceiling_app:create_app()'`), so the difference is what the model API does.
"""

from fastapi import FastAPI
from starlette.responses import Response

BODY = b'{"model_version":"constant","predictions":[{"label":"home_win","probabilities":{}}]}'


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict() -> Response:
        return Response(BODY, media_type="application/json")

    return app
