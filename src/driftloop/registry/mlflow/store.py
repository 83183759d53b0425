"""The registered model in MLflow: every registry read and write driftloop makes, in one class.

:class:`ModelStore` talks to MLflow through an ``MlflowClient`` made for the project's tracking
URI (never the process-wide one), so two projects can live in one process. MLflow's errors are
translated here, once: "does not exist" is an answer (no such version, no aliases yet) and every
other failure is a :class:`~driftloop.errors.RegistryError` that stops the step, since a store
that could not be read must never look like a registry with no champion in it.

A version's package is downloaded and read once per process (:class:`PackageCache`): a tick that
scores, monitors and judges with the champion reads it from MLflow once, not three times.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow.artifacts
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from driftloop.errors import ModelPackageError, RegistryError
from driftloop.registry.decisions import STAGE_TAG, Stage
from driftloop.runtime.kinds import AnyPackage, load_package

# MLflow's codes for "there is no such thing": the only failures that are an answer.
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
# MLflow's SQL store says an alias is absent with this code (and "not found"); the same code
# also means a bad value (an input example that breaks its signature), which is no absence.
BAD_VALUE = "INVALID_PARAMETER_VALUE"
# MLflow keeps tag values up to this length.
TAG_LIMIT = 5000
# Packages kept loaded per process; a server holds two (champion and challenger), a tick one.
CACHED_PACKAGES = 8


@dataclass(frozen=True)
class VersionInfo:
    """A registered version as driftloop reads it: number, run, tags and where its model is."""

    version: str
    run_id: str
    tags: Mapping[str, str]
    created: datetime
    source: str

    @property
    def stage(self) -> Stage:
        return Stage(self.tags.get(STAGE_TAG, Stage.DEV))


@dataclass
class PackageCache:
    """Packages loaded in this process, by everything that identifies a version's content.

    The key holds the tracking URI, the model name, the version and its run and creation time, so
    two projects (or a store recreated under the same path) never share an entry. ``loads``
    counts the packages read from MLflow.
    """

    capacity: int = CACHED_PACKAGES
    loads: int = 0
    _packages: OrderedDict[tuple[str, ...], AnyPackage] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[str, ...]) -> AnyPackage | None:
        with self._lock:
            package = self._packages.get(key)
            if package is not None:
                self._packages.move_to_end(key)
            return package

    def put(self, key: tuple[str, ...], package: AnyPackage) -> None:
        with self._lock:
            self.loads += 1
            self._packages[key] = package
            while len(self._packages) > self.capacity:
                self._packages.popitem(last=False)


# The process's cache: what a model version holds never changes once registered.
LOADED = PackageCache()


class ModelStore:
    """One registered model (``name``) in the MLflow registry at ``registry_uri`` (default: the
    tracking URI's own), its runs at ``tracking_uri``."""

    def __init__(
        self, tracking_uri: str, name: str, *, registry_uri: str | None = None, cache: PackageCache = LOADED
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.name = name
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)
        self.cache = cache

    def model_uri(self, version: str) -> str:
        return f"models:/{self.name}/{version}"

    # -- reading -----------------------------------------------------------------------------

    def versions(self) -> list[VersionInfo]:
        """Every version, newest first (none before the first registration)."""
        with self._translated("read the versions"):
            found = self.client.search_model_versions(f"name = '{self.name}'")
        return sorted((_info(v) for v in found), key=lambda v: int(v.version), reverse=True)

    def version(self, version: str) -> VersionInfo:
        """One version; a RegistryError naming it when there is no such version."""
        try:
            with self._translated(f"read version {version}"):
                return _info(self.client.get_model_version(self.name, version))
        except Missing as exc:
            raise RegistryError(f"model {self.name!r} has no version {version!r}") from exc

    def aliases(self) -> dict[str, str]:
        """Alias -> version, e.g. ``{"champion": "3"}``; empty before the model is registered."""
        try:
            with self._translated("read the aliases"):
                aliases = self.client.get_registered_model(self.name).aliases
        except Missing:
            return {}
        return {alias: str(version) for alias, version in aliases.items()}  # MLflow may give ints

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The final metrics of a training run."""
        with self._translated(f"read run {run_id}"):
            return dict(self.client.get_run(run_id).data.metrics)

    def load(self, version: str) -> AnyPackage:
        """The package of ``version``, read from MLflow the first time this process asks for it."""
        info = self.version(version)
        key = (self.tracking_uri, self.name, info.version, info.run_id, str(info.created), info.source)
        package = self.cache.get(key)
        if package is None:
            package = self._download(info)
            self.cache.put(key, package)
        return package

    # -- writing -----------------------------------------------------------------------------

    def set_alias(self, alias: str, version: str) -> None:
        with self._translated(f"set alias {alias} to version {version}"):
            self.client.set_registered_model_alias(self.name, alias, version)

    def delete_alias(self, alias: str) -> None:
        with self._translated(f"delete alias {alias}"):
            self.client.delete_registered_model_alias(self.name, alias)

    def set_tags(self, version: str, tags: Mapping[str, str]) -> None:
        """Set tags on ``version`` (values cut to what MLflow keeps)."""
        with self._translated(f"tag version {version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(self.name, version, key, value[:TAG_LIMIT])

    # -- the boundary ------------------------------------------------------------------------

    def _download(self, info: VersionInfo) -> AnyPackage:
        """Download a version's model and read its package folder (no pickle, no pyfunc wrapper)."""
        try:
            with self._translated(f"download version {info.version}"), tempfile.TemporaryDirectory() as folder:
                return self._read(info, Path(folder))
        except OSError as exc:  # the store names artifacts that are gone or cannot be read
            raise RegistryError(
                f"cannot read the artifacts of version {info.version} of {self.name!r} ({info.source}): {exc}"
            ) from exc

    def _read(self, info: VersionInfo, folder: Path) -> AnyPackage:
        location = self._artifact_location(info)
        path = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=str(folder), tracking_uri=self.tracking_uri
            )
        )
        data = Model.load(str(path)).flavors.get("python_function", {}).get("data")
        if data is None:
            raise ModelPackageError(f"version {info.version} of {self.name!r} at {location} holds no driftloop package")
        return load_package(path / data)

    def _artifact_location(self, info: VersionInfo) -> str:
        """Where the version's model artifacts are; resolved with this store's client, since
        MLflow's own resolution of a ``models:/`` URI would use the process-wide tracking URI."""
        if info.source.startswith("models:/"):
            return str(self.client.get_logged_model(info.source.removeprefix("models:/")).artifact_location)
        if info.source.startswith("runs:/"):
            run_id, _, path = info.source.removeprefix("runs:/").partition("/")
            return f"{self.client.get_run(run_id).info.artifact_uri}/{path}"
        return info.source

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        with translated(f"{action} of model {self.name!r}", self.tracking_uri):
            yield


@contextmanager
def translated(action: str, tracking_uri: str) -> Iterator[None]:
    """MLflow's failure as driftloop's, at the one place they meet: "does not exist" becomes
    :class:`Missing` (an answer the caller may expect), every other failure a RegistryError
    that stops the step."""
    try:
        yield
    except MlflowException as exc:
        if exc.error_code == NOT_FOUND or (exc.error_code == BAD_VALUE and "not found" in str(exc)):
            raise Missing(f"cannot {action}: it does not exist ({exc})") from exc
        raise RegistryError(
            f"cannot {action} at {tracking_uri}: {exc}; nothing was decided, run the step again once the "
            "registry answers"
        ) from exc


class Missing(RegistryError):
    """MLflow said the thing asked for does not exist (callers that expect it turn it into an answer)."""


def _info(version: ModelVersion) -> VersionInfo:
    return VersionInfo(
        version=str(version.version),
        run_id=str(version.run_id or ""),
        tags=dict(version.tags or {}),
        created=datetime.fromtimestamp(int(version.creation_timestamp or 0) / 1000, tz=UTC),
        source=str(version.source or ""),
    )
