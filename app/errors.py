"""The JSON error shape every 4xx/5xx answer uses, and the exception that carries it."""

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

# Field errors beyond this are counted, not listed: a 10,000-row batch of garbage
# should not produce a 10,000-entry answer.
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True, slots=True)
class FieldError:
    loc: tuple[str | int, ...]
    msg: str
    type: str
    suggestions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": list(self.loc), "msg": self.msg, "type": self.type}
        if self.suggestions:
            out["suggestions"] = list(self.suggestions)
        return out


@dataclass(eq=False)
class ApiError(Exception):
    status: int
    code: str
    message: str
    errors: list[FieldError] = field(default_factory=list)
    # Total number of field errors found, when more than the listed ones.
    error_count: int | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.errors:
            out["errors"] = [e.as_dict() for e in self.errors[:MAX_LISTED_ERRORS]]
            total = self.error_count or len(self.errors)
            if total > MAX_LISTED_ERRORS:
                out["errors_not_listed"] = total - MAX_LISTED_ERRORS
        return out


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body is over the limit of {limit} bytes")


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status, headers, media_type="application/json")


def error_response(exc: ApiError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.body(), exc.status, headers)
