"""Browser tests: a real Milepost server (uvicorn in a thread, fresh SQLite, dev clock on) driven by
Debian's Chromium through pytest-playwright.

Chromium comes from the system (`apt-get install chromium`), never from `playwright install`.
Without it the tests skip with a message — except under CI=true, where they must run.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from milepost import migrate
from milepost.app import create_app
from milepost.config import Settings
from milepost.db import make_engine
from milepost.runtime import Runtime

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.path.exists(CHROMIUM):
        return
    if IN_CI:
        raise pytest.UsageError(f"{CHROMIUM} is required under CI=true (apt-get install chromium)")
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM}: apt-get install chromium "
                                   "(required under CI=true)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    runtime: Runtime


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("web-data")
    settings = Settings(data_dir=data_dir, dev_clock=True, _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings.sqlalchemy_url)
    migrate.upgrade(engine)
    engine.dispose()
    runtime = Runtime.from_settings(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True, name="milepost-test-server")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", runtime)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.db.dispose()


# Chromium logs a form answered with 4xx (a 422 re-rendering a form with its errors, a 403/404
# page) as a console error; those are deliberate answers, not script errors. 5xx still counts.
EXPECTED_STATUS = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d\b")


@dataclass
class PageErrors:
    """JavaScript errors and console errors (CSP violations included) seen by every page."""

    seen: list[str] = field(default_factory=list)

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and not EXPECTED_STATUS.match(msg.text):
            self.seen.append(f"console.error: {msg.text}")

    def watch(self, page: Any) -> Any:
        page.on("pageerror", lambda exc: self.seen.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        return page


@pytest.fixture
def js_errors() -> Iterator[PageErrors]:
    errors = PageErrors()
    yield errors
    assert not errors.seen, "JavaScript errors on the pages: " + "\n".join(errors.seen)


@pytest.fixture
def new_page(browser: Any, live_server: LiveServer, js_errors: PageErrors) -> Iterator[Any]:
    """Open a page in its own browser context (its own cookies: one person each)."""
    contexts = []

    def make(width: int = 1200, height: int = 900) -> Any:
        context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return js_errors.watch(context.new_page())

    yield make
    for context in contexts:
        context.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
