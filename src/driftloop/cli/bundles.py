"""Commands for devices: ``keys`` makes the signing key pair, ``bundle`` writes a model version as
one signed file a device can verify and score offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.common import JsonOption, ProjectOption, emit_json, handled, out
from driftloop.project import Project


@handled
def keys(
    project_dir: ProjectOption = Path(),
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing key (devices then refuse new bundles).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Make the Ed25519 key pair bundles are signed with: the private key at [bundle] key_file, the public one beside
    it, for the devices."""
    from driftloop.runtime.signing import fingerprint, generate_keys, public_key

    project = Project.load(project_dir)
    private, public = generate_keys(project.key_file, force=force)
    ignore = private.parent / ".gitignore"
    if not ignore.exists():  # a project folder is often a repository: the private key stays out of it
        ignore.write_text(f"{private.name}\n", encoding="utf-8")
    name = fingerprint(public_key(public.read_bytes(), str(public)))
    if as_json:
        emit_json({"private_key": str(private), "public_key": str(public), "fingerprint": name})
        return
    out.print(
        f"[green]made[/] key {name}: private {private} (readable by you only; {ignore} keeps it out of git), "
        f"public {public}"
    )
    out.print(f"Give {public} to the devices; next, `driftloop bundle --project {project_dir} --out model.bundle`.")


@handled
def bundle(
    version: Annotated[str | None, typer.Argument(help="The model version (default: the champion).")] = None,
    out_file: Annotated[Path, typer.Option("--out", help="The bundle file to write.")] = Path("model.bundle"),
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Write a model version as one signed file for a device: its ONNX graph, contract, features, preprocessing,
    reference profile and golden pairs, with a SHA-256 per file in a manifest signed with Ed25519."""
    from driftloop.errors import RegistryError
    from driftloop.registry import Registry
    from driftloop.runtime.bundle import write_bundle

    project = Project.load(project_dir)
    key = project.signing_key()  # before the registry's download: a missing key is said at once
    registry = Registry(project)
    chosen = version or registry.champion()
    if chosen is None:
        raise RegistryError(f"{project.model_name!r} has no champion yet: name a version, or promote one first")
    manifest = write_bundle(registry.package(chosen), out_file, key, model=project.model_name, model_version=chosen)
    size = out_file.stat().st_size
    if as_json:
        emit_json({"bundle": str(out_file), "bytes": size, **manifest})
        return
    files = ", ".join(manifest["files"])
    out.print(
        f"[green]bundled[/] version {chosen} of {project.model_name!r} ({manifest['kind']}) to {out_file}: "
        f"{size / 1024:,.0f} KiB, signed with key {manifest['key']}; files {files}",
        highlight=False,
    )
