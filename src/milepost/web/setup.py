"""Web app wiring: sessions, CSRF, static files, friendly error pages (filled in by the web work)."""

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Register the web app's middleware, static files and error handlers on the app."""
