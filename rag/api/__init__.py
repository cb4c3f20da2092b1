"""The HTTP API: `create_app(service)` in rag.api.app, request/response models in rag.api.models."""
