"""What routes depend on (FastAPI `Depends`): the service, the configured limits, the API key check."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.api.limits import Limits
from rag.errors import ErrorKind, RagError
from rag.service import IndexService

bearer = HTTPBearer(auto_error=False, description="the server's API key, when one is configured")


def get_service(request: Request) -> IndexService:
    """The service the app was created over."""
    return request.app.state.service


def get_limits(request: Request) -> Limits:
    return request.app.state.limits


def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
               service: IndexService = Depends(get_service)) -> None:
    """Every route but /healthz: the bearer key must match server.api_key, when one is set."""
    key = service.settings.server.api_key
    if not key:
        return
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, key.encode()):  # constant time: no timing oracle
        raise RagError("missing or wrong API key (Authorization: Bearer KEY)", ErrorKind.UNAUTHORIZED)
