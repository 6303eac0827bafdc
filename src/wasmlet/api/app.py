"""The app factory: builds the FastAPI app and, in its lifespan, the services."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import wasmlet
from wasmlet.api.errors import LastResortMiddleware, install_error_handlers
from wasmlet.api.invoke_door import WasmletApp, check_door_leaves
from wasmlet.api.openapi import install_openapi
from wasmlet.api.request_id import RequestIdMiddleware
from wasmlet.api.routes import (
    alerts,
    breakers,
    deploy,
    functions,
    invoke,
    jobs,
    nodes,
    observability,
    schedules,
    secrets,
    system,
    versions,
)
from wasmlet.api.services import Services
from wasmlet.settings import Settings
from wasmlet.telemetry.logs import configure_logging

FAULTS_ENV = "WASMLET_TEST_FAULTS"  # "1" mounts the test-only fault routes


def create_app(settings: Settings) -> FastAPI:
    redactor = configure_logging(settings.log_level, log_format=settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(settings, redactor)
        app.state.services = services
        try:
            yield
        finally:
            await services.close()

    app = WasmletApp(
        title="wasmlet",
        version=wasmlet.__version__,
        description="Serverless WebAssembly functions with a failure model you can rely on.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(LastResortMiddleware)
    app.add_middleware(RequestIdMiddleware)
    if os.environ.get(FAULTS_ENV) == "1":
        from wasmlet.api.routes import faults

        app.include_router(faults.router)
    management = (
        system, deploy, functions, versions, alerts, jobs, observability, schedules, nodes,
        secrets, breakers
    )  # fmt: skip
    for module in management:
        app.include_router(module.router)
    app.state.management_routes = tuple(r for m in management for r in m.router.routes)
    check_door_leaves(app.state.management_routes)
    # The spec's invoke route first: it shadows nothing and is the hot path.
    app.router.routes.insert(0, invoke.FAST_INVOKE_ROUTE)
    app.router.routes.extend(invoke.FAST_SUPABASE_ROUTES)
    app.include_router(invoke.router)
    return app
