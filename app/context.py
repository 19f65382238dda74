"""What the routes of one app share: settings, the loaded model and the metrics."""

from dataclasses import dataclass

from starlette.requests import Request

from app.metrics import Metrics
from app.model_state import ModelState
from app.predict import Predictor
from app.settings import Settings


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    model: ModelState
    predictor: Predictor | None
    metrics: Metrics


def get_context(request: Request) -> AppContext:
    return request.app.state.ctx
