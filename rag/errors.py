"""One error family for the whole product: every error a user can act on is a `RagError` with a kind.

The kind says what the caller can do about it, and each front end maps kinds, not classes: the CLI
to an exit code, the HTTP API to a status, the chat UI to a message. A new error class therefore
needs no change in any front end; anything that is not a RagError is a bug (a traceback, a 500).
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    BAD_INPUT = "bad_input"  # the request, a file or a setting is wrong: fix it and retry
    NOT_FOUND = "not_found"  # it names something that does not exist (an index, a document, a model)
    CONFLICT = "conflict"  # the index is not in a state that allows it (locked, built differently)
    BUSY = "busy"  # try again shortly (the language model is answering others)
    UNAVAILABLE = "unavailable"  # a backend it needs is down or cannot load (an LLM endpoint, Milvus)
    UNAUTHORIZED = "unauthorized"  # a missing or wrong key


# CLI exit codes (sysexits.h where one fits; 2 is argparse's "usage" code for all the caller's mistakes).
EXIT_CODES = {ErrorKind.BAD_INPUT: 2, ErrorKind.NOT_FOUND: 2, ErrorKind.CONFLICT: 2,
              ErrorKind.BUSY: 75, ErrorKind.UNAVAILABLE: 69, ErrorKind.UNAUTHORIZED: 77}
# HTTP statuses: a backend that failed is a bad gateway, a busy model a 503 with Retry-After.
HTTP_STATUSES = {ErrorKind.BAD_INPUT: 422, ErrorKind.NOT_FOUND: 404, ErrorKind.CONFLICT: 409,
                 ErrorKind.BUSY: 503, ErrorKind.UNAVAILABLE: 502, ErrorKind.UNAUTHORIZED: 401}
# The `error.type` of API responses, where it differs from the kind's value.
API_TYPES = {ErrorKind.BAD_INPUT: "invalid_request"}
# What the chat UI says before the message.
UI_PREFIXES = {ErrorKind.BAD_INPUT: "Cannot answer that", ErrorKind.NOT_FOUND: "Not found",
               ErrorKind.CONFLICT: "The index cannot do that now", ErrorKind.BUSY: "The model is busy",
               ErrorKind.UNAVAILABLE: "A backend is unavailable", ErrorKind.UNAUTHORIZED: "Not allowed"}


class RagError(Exception):
    """An error a user can act on. Subclasses set `kind`; one raise may override it (and the API's
    `code`, a more specific `error.type` such as "model_not_found")."""

    kind: ErrorKind = ErrorKind.BAD_INPUT
    code: str | None = None
    retry_after: int | None = None  # seconds, for BUSY

    def __init__(self, message: str, kind: ErrorKind | None = None, code: str | None = None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]

    @property
    def http_status(self) -> int:
        return HTTP_STATUSES[self.kind]

    @property
    def api_type(self) -> str:
        return self.code or API_TYPES.get(self.kind, self.kind.value)

    def for_ui(self) -> str:
        return f"{UI_PREFIXES[self.kind]}: {self}"


class NewsIndexError(RagError):
    """The index directory is missing, locked, or incompatible with the configuration."""

    kind = ErrorKind.CONFLICT
