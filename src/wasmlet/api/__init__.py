"""The HTTP API (FastAPI): routes, auth, error mapping, OpenAPI schema."""
