"""Builds the ASGI app: the HTTP API under /v1 and the web app at /."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from milepost import __version__
from milepost.runtime import Runtime


def freeze_startup_objects() -> None:
    """Move everything alive after startup (modules, classes, SQLAlchemy mappers, FastAPI routes:
    ~140k objects) out of the garbage collector's reach for the life of the process.

    They are never garbage, yet every full (generation 2) collection walked them all: ≈ 120 ms of
    CPU per collection on a 2-core box, which ran every few seconds under load and stalled the
    worker's event loop and threads — the 150–400 ms outliers of the HTTP benchmark. Only objects
    made after this point are scanned now (a full collection then takes well under a millisecond).
    Not for processes that build many apps (tests): what is frozen is never collected.
    """
    gc.collect()  # what startup left as garbage is freed, not frozen
    gc.freeze()


def create_app(
    runtime: Runtime | None = None, *, start_worker: bool = False, freeze_gc: bool = False
) -> FastAPI:
    """The app; `freeze_gc` (long-lived server processes only, see `freeze_startup_objects`)."""
    from milepost.api.router import router as api_router
    from milepost.web.views import router as web_router

    runtime = runtime or Runtime.from_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if freeze_gc:
            freeze_startup_objects()
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
