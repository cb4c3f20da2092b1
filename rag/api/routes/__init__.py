"""The API's routes, one router per area; `rag.api.app.create_app` includes them all."""
