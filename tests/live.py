"""Running driftloop as a user does, for end-to-end tests: the CLI with ``--json``, the
prediction server on a real uvicorn on 127.0.0.1, and the services a team runs beside it (an
MLflow server, a Spark Connect server) as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.project import Project
from driftloop.serve.app import app_of

runner = CliRunner()


def cli(*args: str) -> dict | list:
    """``driftloop ARGS --json``, asserted to succeed, its answer parsed."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, f"driftloop {' '.join(args)} failed: {result.stdout}{result.stderr}"
    return json.loads(result.stdout)  # type: ignore[no-any-return]


# Debian's Chromium, which Playwright drives in the browser tests (it never downloads one).
CHROMIUM = Path("/usr/bin/chromium")


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, through Playwright's ``sync_playwright()`` handle."""
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    )  # fmt: skip


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def service(command: list[str], *, ready: Callable[[], bool], log: Path, seconds: float = 90) -> Iterator[None]:
    """``command`` running as a process (its output in ``log``) from when ``ready`` says so
    until the block ends; it failing to start, or to be ready in ``seconds``, fails the test."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=output, cwd=log.parent)
        try:
            deadline = time.monotonic() + seconds
            while not ready():
                assert process.poll() is None, (
                    f"{command[0]} stopped at start-up: {log.read_text(errors='replace')[-2000:]}"
                )
                assert time.monotonic() < deadline, f"{command[0]} was not ready in {seconds} s"
                time.sleep(0.2)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


@contextmanager
def server(project: Project, admin_token: str | None = None) -> Iterator[httpx.Client]:
    """The project's app on a real uvicorn server on 127.0.0.1, in a thread of this process."""
    with running(app_of(project, admin_token=admin_token)) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


@contextmanager
def running(app: Any, port: int | None = None) -> Iterator[str]:
    """``app`` (any ASGI app) on a real uvicorn server on 127.0.0.1 (``port``, or a free one), in a
    thread of this process; its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
