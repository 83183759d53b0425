"""Running driftloop as a user does, for end-to-end tests: the CLI with ``--json``, and the
prediction server on a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.project import Project
from driftloop.serve.app import create_app

runner = CliRunner()


def cli(*args: str) -> dict | list:
    """``driftloop ARGS --json``, asserted to succeed, its answer parsed."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, f"driftloop {' '.join(args)} failed: {result.stdout}{result.stderr}"
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@contextmanager
def server(project: Project) -> Iterator[httpx.Client]:
    """The app on a real uvicorn server on 127.0.0.1, in a thread of this process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    running = uvicorn.Server(uvicorn.Config(create_app(project), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        running.should_exit = True
        thread.join(30)
