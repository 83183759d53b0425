"""``driftloop edge``: a model on a device, from a signed bundle, with no registry, lake or PyTorch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.common import err, handled
from driftloop.errors import MissingDependency

app = typer.Typer(help="Serve a signed bundle on a device, offline.", no_args_is_help=True)
StoreOption = Annotated[
    Path, typer.Option("--store", help="The device's folder: its verified versions, which serves, its log.")
]
KeyOption = Annotated[
    Path,
    typer.Option("--key", help="The public key bundles must be signed with (signing.pub.pem from `driftloop keys`)."),
]
ADMIN_TOKEN_ENV = "DRIFTLOOP_ADMIN_TOKEN"


@app.command("serve")
@handled
def serve(
    bundle: Annotated[Path, typer.Argument(help="The bundle to serve (`driftloop bundle`).")],
    key: KeyOption,
    store_dir: StoreOption = Path("driftloop-device"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=0, max=65535)] = 8000,
) -> None:
    """Verify BUNDLE against the key, open it into the device's store and serve it: /v1/predict, /invocations, Open
    Inference v2, /metrics, as `driftloop serve` answers; every prediction logged on the device (SQLite)."""
    from driftloop.edge.server import create_edge_app
    from driftloop.edge.store import DeviceStore
    from driftloop.runtime.signing import public_key

    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        raise MissingDependency.of(missing, extra="serve", purpose="driftloop edge serve") from missing

    store = DeviceStore(store_dir)
    version = store.install(bundle, public_key(key.read_bytes(), str(key)))
    store.serve(version)
    token = os.environ.get(ADMIN_TOKEN_ENV) or None
    err.print(f"driftloop edge: version {version} from {bundle} on http://{host}:{port}; predictions logged to "
              f"{store.log_path}", highlight=False)  # fmt: skip
    uvicorn.run(create_edge_app(store, admin_token=token), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=30)  # fmt: skip
