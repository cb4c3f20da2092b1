"""One error family: every error class of rag/ is a RagError, and each kind has a CLI exit code, an HTTP
status and a UI message, so no front end needs to know the classes."""

import importlib
import pkgutil

import pytest

import rag
from rag.errors import EXIT_CODES, HTTP_STATUSES, UI_PREFIXES, ErrorKind, RagError


def all_modules():
    for info in pkgutil.walk_packages(rag.__path__, "rag."):
        if info.name.endswith(".__main__"):
            continue
        yield importlib.import_module(info.name)


def test_every_error_class_in_rag_is_a_rag_error():
    errors = {}
    for module in all_modules():
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == module.__name__:
                errors[f"{module.__name__}.{name}"] = value
    assert len(errors) >= 10  # the family is found at all
    # BodyTooLarge is raised inside the ASGI middleware, which answers 413 itself.
    strays = [name for name, cls in errors.items() if not issubclass(cls, RagError) and not name.endswith("BodyTooLarge")]
    assert strays == []
    assert not any(name.endswith(".IndexError") for name in errors)  # nothing shadows the builtin


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_maps_on_every_surface(kind):
    error = RagError("x", kind)
    assert error.exit_code == EXIT_CODES[kind] and error.exit_code != 0
    assert 400 <= error.http_status < 600 and error.http_status == HTTP_STATUSES[kind]
    assert error.for_ui().startswith(UI_PREFIXES[kind]) and error.for_ui().endswith(": x")


def test_specific_errors_keep_their_kind_and_code():
    from rag.errors import NewsIndexError
    from rag.llm.base import LLMError
    from rag.service import BusyError

    assert LLMError("down").http_status == 502 and LLMError("down").api_type == "llm_unavailable"
    busy = BusyError(30)
    assert busy.http_status == 503 and busy.retry_after == 30 and busy.exit_code == 75
    assert NewsIndexError("locked").http_status == 409
    assert NewsIndexError("missing", ErrorKind.NOT_FOUND).http_status == 404
    assert RagError("bad").api_type == "invalid_request"
