"""HTTP API v1 (filled in by the API work)."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
