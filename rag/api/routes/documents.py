"""The corpus: list, read, add (JSON records or uploaded files) and delete documents."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from rag.api import models as m
from rag.api.deps import get_limits, get_service
from rag.api.limits import Limits
from rag.api.models import validation_message
from rag.api.middleware import BodyTooLarge
from rag.api.routes.answers import iso
from rag.errors import ErrorKind, RagError
from rag.ingest import FieldMap
from rag.ingest.base import document_from_record
from rag.ingest.pipeline import IngestReport
from rag.service import IndexService

router = APIRouter(tags=["documents"])
MAX_OFFSET = 2**31  # SQLite takes 64-bit offsets; anything past this is past any index anyway
MAX_UPLOAD_FILES = 100


def inline_refs(schema: dict) -> dict:
    """A pydantic JSON schema with its `$defs` substituted in place (OpenAPI resolves `$ref` from its root)."""
    definitions = schema.pop("$defs", {})

    def resolve(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


# The body is read by hand (JSON records or multipart files), so the schema says what it may be.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_refs(m.DocumentsIn.model_json_schema())},
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["files"],
                           "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}},
            },
        },
    }
}


@router.get("/v1/documents", response_model=m.DocumentPage)
def list_documents(
    offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(50, ge=1),
    source: str | None = None, since: date | None = None, until: date | None = None,
    q: str | None = Query(None, description="title substring or exact document id"),
    service: IndexService = Depends(get_service), limits: Limits = Depends(get_limits),
):
    """Documents, newest first, one page at a time."""
    limits.check("page", "limit", limit)
    documents, total = service.documents.page(offset=offset, limit=limit, query=q or "", source=source or "",
                                              since=iso(since) or "", until=iso(until) or "")
    return {"total": total, "offset": offset, "limit": limit, "documents": [public(d) for d in documents]}


@router.get("/v1/documents/{doc_id:path}", response_model=m.DocumentModel)
def get_document(doc_id: str, service: IndexService = Depends(get_service)):
    """One document with its full text."""
    document = service.documents.get(doc_id)
    if document is None:
        raise RagError(f"no document {doc_id!r}", ErrorKind.NOT_FOUND)
    return public(document)


@router.post("/v1/documents", response_model=m.IngestResponse, openapi_extra=UPLOAD_BODY)
async def add_documents(request: Request, service: IndexService = Depends(get_service)):
    """Add JSON records (`{"documents": [...]}`) or upload files (multipart, field `files`)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await ingest_uploads(request, service)
    if not content_type.startswith("application/json"):
        raise RagError("send application/json records or multipart/form-data files")
    try:
        body = m.DocumentsIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RagError(validation_message(exc.errors(), "body")) from None
    documents = []
    for number, record in enumerate(body.documents):
        try:
            documents.append(document_from_record(record.model_dump(exclude_none=True), FieldMap(), origin="api"))
        except ValueError as exc:
            raise RagError(f"body.documents.{number}: {exc}") from None
    report = await run_in_threadpool(service.add_documents, documents)
    return {"report": report.to_json(), "files": []}


async def ingest_uploads(request: Request, service: IndexService) -> dict:
    """Each uploaded file ingested in turn, reported under the name the client gave it."""
    upload_bytes = int(service.settings.server.max_upload_mb * 1e6)
    try:
        form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=20, max_part_size=upload_bytes)
    except BodyTooLarge:
        raise
    except Exception as exc:  # noqa: BLE001 - any multipart parse failure is the client's malformed body
        raise RagError(f"malformed multipart body: {exc}") from None
    uploads = [item for item in form.getlist("files") if hasattr(item, "filename")]
    if not uploads:
        raise RagError("multipart body has no `files` part")
    total, files = IngestReport(), []
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
        for number, upload in enumerate(uploads):
            name = safe_filename(upload.filename, f"upload-{number}")
            path = Path(folder) / f"{number}" / name
            path.parent.mkdir()
            path.write_bytes(await upload.read())
            report = await run_in_threadpool(service.ingest, [path])
            for issue in report.issues:  # name the file as the client knows it, not our temp path
                issue.path = name
            files.append({"file": name, "report": report.to_json()})
            total.merge(report)
    stored = total.added + total.replaced + total.unchanged + total.duplicates
    if total.issues and not stored:
        raise RagError("; ".join(str(issue) for issue in total.issues)[:2000], code="invalid_document")
    return {"report": total.to_json(), "files": files}


@router.delete("/v1/documents/{doc_id:path}", response_model=m.DeleteResponse)
def delete_document(doc_id: str, service: IndexService = Depends(get_service)):
    """Remove a document from the index."""
    deleted = service.documents.delete([doc_id])
    if not deleted:
        raise RagError(f"no document {doc_id!r}", ErrorKind.NOT_FOUND)
    return {"deleted": deleted}


def public(document: dict) -> dict:
    """A document as clients see it: its origin without the server's folders ("forum.jsonl:3")."""
    origin = document.get("origin") or ""
    path, _, line = origin.rpartition(":")
    if not line.isdigit():
        path, line = origin, ""
    return {**document, "origin": Path(path).name + (f":{line}" if line else "")}


def safe_filename(name: str | None, fallback: str) -> str:
    """An uploaded file's name as a plain file name: no folders, no "..", no control characters."""
    name = Path((name or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name if name and name not in (".", "..") and not name.startswith(".") else fallback

