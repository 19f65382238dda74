"""The HTML page: a form built from the input schema, the result, the model card.

It works without JavaScript: the form POSTs to `/` and the server renders the result.
No inline script or style anywhere (the proxy's CSP forbids both): probability bars are
<meter> elements styled from app/static/css/app.css.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from app.context import AppContext, get_context
from app.errors import ApiError
from app.schema import InvalidInputError

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    probability: float
    winner: bool

    @property
    def percent(self) -> str:
        return f"{self.probability * 100:.1f}%"


def _metric_table(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Backtest metrics as rows (model, baselines) by columns (log_loss, rps, ...)."""
    if not metrics:
        return None
    rows = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    columns: list[str] = []
    for values in rows.values():
        columns += [c for c, v in values.items() if isinstance(v, int | float) and c not in columns]
    # The model first, then the baselines it has to beat.
    order = sorted(rows, key=lambda name: (name != "model", name))
    extra = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    return {"columns": columns, "rows": [(n, rows[n]) for n in order], "extra": extra}


def _page(
    request: Request,
    ctx: AppContext,
    *,
    values: dict[str, Any] | None = None,
    bars: list[Bar] | None = None,
    errors: list[str] | None = None,
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    schema = ctx.model.schema
    card = ctx.model.card
    if values is None and schema is not None:
        values = dict(schema.example)
    context = {
        "card": card,
        "reason": ctx.model.reason,
        "fields": schema.form_fields() if schema else [],
        "values": values or {},
        "bars": bars,
        "winner": next((b for b in bars or [] if b.winner), None),
        "errors": errors or [],
        "field_errors": field_errors or {},
        "metrics": _metric_table(card.get("metrics") if card else None),
    }
    return TEMPLATES.TemplateResponse(request, "index.html", context, status_code=status)


def _field_messages(exc: InvalidInputError | ApiError) -> tuple[list[str], dict[str, str]]:
    items = exc.errors
    by_field: dict[str, str] = {}
    general: list[str] = []
    for err in items:
        name = next((p for p in err.loc if isinstance(p, str) and p != "instances"), None)
        text = err.msg
        if err.suggestions:
            text += ". Did you mean " + " or ".join(err.suggestions) + "?"
        if name is not None:
            by_field.setdefault(name, text)
        else:
            general.append(text)
    if not items:
        general.append(getattr(exc, "message", str(exc)))
    return general, by_field


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index(request: Request) -> Response:
        ctx = get_context(request)
        return _page(request, ctx, status=200 if ctx.model.ready else 503)

    @router.post("/")
    async def submit(request: Request) -> Response:
        ctx = get_context(request)
        if ctx.predictor is None:
            return _page(request, ctx, status=503)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in _FORM_TYPES:
            return _page(request, ctx, errors=["Send the form as a form post."], status=415)
        form = await request.form()
        raw = {key: [str(v) for v in form.getlist(key)] for key in form}
        shown = {key: (vals[0] if len(vals) == 1 else vals) for key, vals in raw.items()}
        predictor = ctx.predictor
        try:
            proba = predictor.form(raw)
        except (InvalidInputError, ApiError) as exc:
            general, by_field = _field_messages(exc)
            return _page(
                request, ctx, values=shown, errors=general, field_errors=by_field, status=422
            )
        best = int(proba.argmax())
        labels = ctx.model.card["class_labels"] if ctx.model.card else {}
        bars = [
            Bar(key, labels.get(key, key), float(p), i == best)
            for i, (key, p) in enumerate(zip(predictor.classes, proba.tolist(), strict=True))
        ]
        return _page(request, ctx, values=shown, bars=bars)

    return router
