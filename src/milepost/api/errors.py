"""Rendering errors as application/problem+json (filled in by the API work)."""

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Register the API's exception handlers on the app."""
