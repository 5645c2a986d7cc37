"""Server-rendered web app (filled in by the web work)."""

from fastapi import APIRouter

router = APIRouter()
