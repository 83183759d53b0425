"""``driftloop edge``: a model on a device, from a signed bundle, with no registry, lake or PyTorch."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from driftloop.cli.common import err, handled
from driftloop.edge import ADMIN_TOKEN_ENV
from driftloop.errors import MissingDependency

app = typer.Typer(help="Serve a signed bundle on a device, offline.", no_args_is_help=True)
StoreOption = Annotated[
    Path, typer.Option("--store", help="The device's folder: its verified versions, which serves, its log.")
]
KeyOption = Annotated[
    Path,
    typer.Option(
        "--key",
        exists=True,
        dir_okay=False,
        help="The public key bundles must be signed with (signing.pub.pem from `driftloop keys`).",
    ),
]
# The central server's admin token, which its /v1/devices/reports asks of a device.
CENTRAL_TOKEN_ENV = "DRIFTLOOP_CENTRAL_TOKEN"


@app.command("serve")
@handled
def serve(
    bundle: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The bundle to serve (`driftloop bundle`).")
    ],
    key: KeyOption,
    store_dir: StoreOption = Path("driftloop-device"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=0, max=65535)] = 8000,
) -> None:
    """Verify BUNDLE against the key, open it into the device's store and serve it: /v1/predict, /invocations, Open
    Inference v2, /metrics, as `driftloop serve` answers; every prediction logged on the device (SQLite)."""
    from driftloop.edge.store import DeviceStore
    from driftloop.runtime.signing import public_key

    if importlib.util.find_spec("uvicorn") is None:
        raise MissingDependency("uvicorn", extra="edge", purpose="driftloop edge serve")
    store = DeviceStore(store_dir)
    version = store.install(bundle, public_key(key.read_bytes(), str(key)))
    store.serve(version)
    err.print(f"driftloop edge: version {version} from {bundle} on http://{host}:{port}; predictions logged to "
              f"{store.log_path}", highlight=False)  # fmt: skip
    # The server replaces this process (same pid, signals and exit code): it only reads the store
    # verified above, so it runs without the CLI and the signature library in its memory.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "driftloop.edge.server", str(store_dir), host, str(port)])


@app.command("agent")
@handled
def agent(
    source: Annotated[str, typer.Option(help="Where the newest bundle is: a file, or an http(s) URL.")],
    key: KeyOption,
    store_dir: StoreOption = Path("driftloop-device"),
    server: Annotated[
        str, typer.Option(help="The device's server (`driftloop edge serve`).")
    ] = "http://127.0.0.1:8000",
    every: Annotated[float, typer.Option(help="Seconds between rounds.", min=0.1)] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit (0 unless a bundle was refused).")] = False,
    report_to: Annotated[
        str | None,
        typer.Option(
            help="Where to report profiles and outcomes (never rows): the central server's /v1/devices/reports. "
            "Default: that route on the --source's server when it is a URL; with a file source, no reports."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="This device's name in the fleet view.")] = socket.gethostname(),
) -> None:
    """Follow the champion: fetch the newest bundle, verify it, check it is for the same model and contract, run
    its golden pairs, swap it in and watch the server take it, rolling back by itself if it does not. With the
    source out of reach, the device keeps serving what it has. After each round, report home what it served, as
    profiles and outcomes (the central server's admin token in DRIFTLOOP_CENTRAL_TOKEN)."""
    from driftloop.edge.agent import Agent, Round
    from driftloop.edge.store import DeviceStore
    from driftloop.runtime.signing import public_key

    follower = Agent(DeviceStore(store_dir), source, public_key(key.read_bytes(), str(key)), server=server,
                     admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None, report_to=report_to or reports_of(source),
                     device=device, report_token=os.environ.get(CENTRAL_TOKEN_ENV) or None)  # fmt: skip

    def said(outcome: Round) -> None:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        err.print(f"{outcome.outcome}: serving {outcome.version}{detail}; {outcome.reported}", highlight=False)

    if once:
        outcome = follower.round()
        said(replace(outcome, reported=follower.report()))
        if outcome.outcome in ("refused", "rolled back"):
            raise typer.Exit(1)
        return
    follower.run(every, on_round=said)


def reports_of(source: str) -> str | None:
    """Where a device reports when it follows ``source``: the same server's reports route for a URL."""
    if not source.startswith(("http://", "https://")):
        return None
    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}/v1/devices/reports"
