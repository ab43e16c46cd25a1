"""RFC 9457 problem details: every error the API returns, built from the ThaloError tree."""

from __future__ import annotations

__all__ = ["PROBLEM_JSON", "problem_response"]

import orjson
from starlette.responses import Response

from thalo.errors import ThaloError

PROBLEM_JSON = "application/problem+json"
# Seconds a client should wait before retrying an overloaded or store-less server.
RETRY_AFTER = {429: "1", 503: "2"}


def problem_response(error: ThaloError, headers: dict[str, str] | None = None) -> Response:
    """The error as ``application/problem+json`` with its HTTP status (and ``Retry-After``)."""
    status = error.http_status
    extra = dict(headers or {})
    if status in RETRY_AFTER:
        extra.setdefault("Retry-After", RETRY_AFTER[status])
    if status == 401:
        extra.setdefault("WWW-Authenticate", 'Bearer realm="thalo"')
    return Response(
        orjson.dumps(error.to_problem()), status_code=status, headers=extra, media_type=PROBLEM_JSON
    )
