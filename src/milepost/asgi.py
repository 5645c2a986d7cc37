"""The ASGI entry point for `milepost serve` and any ASGI server: `uvicorn milepost.asgi:app`."""

import os

from milepost.app import create_app

app = create_app(start_worker=os.environ.get("MILEPOST_SERVE_WORKER", "1") == "1", freeze_gc=True)
