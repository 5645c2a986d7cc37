"""Builds the ASGI app: the HTTP API under /v1 and the web app at /."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from milepost import __version__
from milepost.runtime import Runtime


def create_app(runtime: Runtime | None = None, *, start_worker: bool = False) -> FastAPI:
    from milepost.api.router import router as api_router
    from milepost.web.views import router as web_router

    runtime = runtime or Runtime.from_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = None
        if start_worker:
            from milepost.timers.worker import start_in_thread

            # exclusive: with `serve --workers N` only one process per database runs the loop
            _, stop = start_in_thread(runtime, interval=runtime.settings.worker_interval_seconds,
                                      exclusive=True)
        try:
            yield
        finally:
            if stop is not None:
                stop.set()

    app = FastAPI(title="Milepost", version=__version__, docs_url="/docs", redoc_url=None,
                  lifespan=lifespan)
    app.state.runtime = runtime
    app.state.start_worker = start_worker

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from milepost.api import errors as api_errors
    from milepost.web import setup as web_setup

    api_errors.install(app)
    web_setup.install(app)
    app.include_router(api_router)
    app.include_router(web_router)
    return app
