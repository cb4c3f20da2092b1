"""The request limits that come from configuration (`server.*`): one table that both the routes'
checks and the OpenAPI schema read, so the contract states exactly what the server enforces."""

from __future__ import annotations

from dataclasses import dataclass

from rag.config import ServerSettings
from rag.errors import RagError


@dataclass(frozen=True)
class Limit:
    """One configured bound: the setting it comes from, the JSON-schema keyword that states it, and
    where in the schema it applies ("Model.field" of a component, or "GET /path?param")."""

    setting: str
    keyword: str  # maximum | maxLength | maxItems
    unit: str  # how a value over it is counted in the error message
    applies_to: tuple[str, ...]


LIMITS = {
    "k": Limit("max_k", "maximum", "", ("SearchRequest.k", "AskRequest.k", "ChatCompletionRequest.k")),
    "question": Limit("max_question_chars", "maxLength", "characters", ("SearchRequest.query", "AskRequest.question")),
    "history": Limit("max_history_messages", "maxItems", "messages", ("AskRequest.history",)),
    "history_chars": Limit("max_history_chars", "", "characters", ()),  # all messages together: no keyword for it
    "page": Limit("max_page_size", "maximum", "", ("GET /v1/documents?limit",)),
}


class Limits:
    """The limits of one server, checked in its routes."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings

    def value(self, name: str) -> int:
        return int(getattr(self.settings, LIMITS[name].setting))

    def check(self, name: str, field: str, size: int) -> None:
        """A 422 naming `field`, its size and the setting when `size` is over limit `name`."""
        limit = self.value(name)
        if size > limit:
            unit = LIMITS[name].unit
            what = f"{field} has {size} {unit}; the limit is" if unit else f"{field}={size} is over the limit of"
            raise RagError(f"{what} {limit} (server.{LIMITS[name].setting})")

    def question(self, text: str, field: str) -> None:
        if not text.strip():
            raise RagError(f"{field} is empty")
        self.check("question", field, len(text))

    def history(self, texts: list[str]) -> None:
        self.check("history", "history", len(texts))
        self.check("history_chars", "history", sum(len(text) for text in texts))

    def write_into(self, schema: dict) -> None:
        """State every limit in an OpenAPI schema (on a property's non-null branch)."""
        components = schema["components"]["schemas"]
        for name, limit in LIMITS.items():
            for target in limit.applies_to:
                if target.startswith(("GET ", "POST ")):
                    method, rest = target.split(" ", 1)
                    path, parameter = rest.split("?")
                    nodes = [p["schema"] for p in schema["paths"][path][method.lower()]["parameters"] if p["name"] == parameter]
                else:
                    model, field = target.split(".")
                    nodes = [components[model]["properties"][field]]
                for node in nodes:
                    for branch in (b for b in node.get("anyOf", [node]) if b.get("type") != "null"):
                        branch[limit.keyword] = self.value(name)
