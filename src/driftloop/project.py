"""A project: a folder holding ``driftloop.toml``, with the lake and the MLflow store beside it
by default. :class:`Project` is what every stage works on; :func:`init_project` makes one,
drafting its contract from a sample.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftloop.data.clock import UTC_ZONE, zone
from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.data.draft import draft_contract
from driftloop.engine import Engine, resolve_engine
from driftloop.errors import BundleError, ConfigError
from driftloop.features import DatetimeFeature, FeatureSet
from driftloop.images import Standardisation
from driftloop.lake import CAPTURED_AT, IMAGE_ID, IMAGE_LABEL
from driftloop.runtime.signing import private_key
from driftloop.settings import PROJECT_FILE, ProjectSection, Settings, parse_settings
from driftloop.settings.images import ImageSettings

if TYPE_CHECKING:
    from driftloop.lake import Lake

# Folder of a local tracking store's artifacts, in the project.
ARTIFACTS = "mlartifacts"
HEADER = """\
# driftloop project file. Sections:
#   [project]   where the lake (Delta tables), the MLflow store and its artifacts live, relative to
#               this folder, and the dataframe engine the stages run on (engine = "polars")
#   [contract]  what a valid row looks like; rows breaking a rule go to the quarantine table
#               (types: int float bool string date datetime; roles: id event_time feature target
#               segment ignore; rules: nullable, min, max, allowed, formats, max_null_rate; a datetime
#               may be epoch numbers (unit = "s" or "ms") or assembled from columns (parts = [...]));
#               timezone: the IANA zone naive times are written in and the loop's days follow;
#               a string or bool target is a label (classes = [...]), as is an int one listing classes
#   [[features]] derived columns ("expr") and calendar parts of a datetime column ("column", "parts")
# Ranges and categories below were drafted from a sample: widen them to what the domain allows.
"""
FEATURES_EXAMPLE = """
# Derived features, computed the same way in training and serving, e.g.:
# [[features]]
# name = "ratio"
# expr = "a / b"                 # + - * / **, abs sqrt log log1p exp sin cos clip min max
# [[features]]
# column = "event_time_column"
# parts = ["hour", "day_of_week", "month"]
"""


@dataclass(frozen=True)
class Project:
    """A project folder and its validated settings."""

    root: Path
    settings: Settings

    @classmethod
    def load(cls, root: str | Path = ".") -> Project:
        """Read and validate ``root/driftloop.toml``."""
        folder = Path(root).resolve()
        path = folder / PROJECT_FILE
        if not path.is_file():
            raise ConfigError(
                f"no {PROJECT_FILE} in {folder}; create a project with `driftloop init {root} --data SAMPLE.csv` "
                "or point --project at one"
            )
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        return cls(folder, parse_settings(raw, path))

    @property
    def contract(self) -> Contract:
        return self.settings.contract

    @property
    def lake(self) -> Lake:
        from driftloop.lake import Lake  # Delta is imported where the lake is opened (a device has none)

        return Lake(self.root / self.settings.project.lake, spark_delta=self.settings.spark.delta)

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI with a relative SQLite path resolved against the project folder."""
        return self._resolved(self.settings.project.tracking_uri)

    @property
    def registry_uri(self) -> str:
        """MLflow model registry URI: ``[project] registry_uri`` (``databricks-uc`` for Unity
        Catalog), else the tracking URI's own registry."""
        chosen = self.settings.project.registry_uri
        return self._resolved(chosen) if chosen else self.tracking_uri

    @property
    def model_name(self) -> str:
        """The registered model's name: ``[project] model``, else the project's name."""
        return self.settings.project.model or self.settings.project.name

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment's name: ``[project] experiment``, else the project's name."""
        return self.settings.project.experiment or self.settings.project.name

    def _resolved(self, uri: str) -> str:
        """``uri`` with a relative SQLite path resolved against the project folder."""
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
            return prefix + str(self.root / uri[len(prefix) :])
        return uri

    @property
    def artifact_location(self) -> str | None:
        """Where a new experiment of this project keeps its artifacts: ``[project] artifacts``, or
        ``mlartifacts/`` in the project for a local tracking store (MLflow's own default is a
        folder in the current directory, which scatters a project's models over wherever its
        commands ran), or None to let a tracking server decide."""
        chosen = self.settings.project.artifacts
        if chosen is not None:
            return chosen if "://" in chosen else (self.root / chosen).resolve().as_uri()
        local = self.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in self.tracking_uri
        return (self.root / ARTIFACTS).as_uri() if local else None

    @property
    def key_file(self) -> Path:
        """Where the project's bundle signing key lives (``[bundle] key_file``)."""
        return self.root / self.settings.bundle.key_file

    def signing_key(self) -> Ed25519PrivateKey:
        """The private key bundles are signed with: the PEM in ``[bundle] key_env`` when that is
        set, else ``[bundle] key_file``; a BundleError saying how to make one otherwise."""
        name = self.settings.bundle.key_env
        given = os.environ.get(name)
        if given:
            return private_key(given.encode(), f"the environment's {name}")
        if not self.key_file.is_file():
            raise BundleError(
                f"no signing key: {self.key_file} does not exist and {name} is not set; make one with "
                f"`driftloop keys --project {self.root}` and give its public half to the devices"
            )
        return private_key(self.key_file.read_bytes(), str(self.key_file))

    @property
    def engine(self) -> Engine:
        """The dataframe engine the project's stages run on (``[project] engine``)."""
        return resolve_engine(self.settings.project.engine, spark=self.settings.spark)

    @property
    def inbox(self) -> Path:
        return self.root / self.settings.project.inbox

    @property
    def decisive_metrics(self) -> dict[str, str]:
        """Each target's decisive metric: ``[promote] class_metric`` for a label, ``metric`` for a number."""
        promote, columns = self.settings.promote, self.contract.columns
        return {
            t: promote.class_metric if columns[t].is_classification else promote.metric for t in self.contract.targets
        }

    def feature_set(self) -> FeatureSet:
        return FeatureSet(self.settings.features, self.contract)

    def save(self) -> None:
        """Write the settings back to ``driftloop.toml``."""
        data = self.settings.model_dump(mode="json", exclude_none=True)
        if not data["features"]:  # an empty `features = []` would clash with [[features]] added later
            del data["features"]
        if self.settings.images is not None:  # an image network trains as [images.train] says: [train] would mislead
            del data["train"]
        example = "" if self.settings.features or self.settings.images else FEATURES_EXAMPLE
        text = HEADER + "\n" + tomli_w.dumps(data) + example
        (self.root / PROJECT_FILE).write_text(text, encoding="utf-8")


def init_project(
    root: str | Path,
    *,
    sample: pl.DataFrame | None = None,
    name: str | None = None,
    ids: tuple[str, ...] = (),
    time_column: str | None = None,
    targets: tuple[str, ...] = (),
    labels: tuple[str, ...] = (),
    timezone: str = UTC_ZONE,
    image_classes: list[str] | None = None,
    image_standard: Standardisation | None = None,
    force: bool = False,
) -> Project:
    """Create ``root/driftloop.toml``, drafting the contract from ``sample`` when given; naive
    times are read in ``timezone``. With ``image_classes`` it is an image project whose images
    are labelled with those classes (its contract: :func:`image_contract`), standardised as
    ``image_standard`` says (by default: 64x64 RGB)."""
    folder = Path(root).resolve()
    zone(timezone)  # an unknown zone is named before anything is drafted
    if (folder / PROJECT_FILE).exists() and not force:
        raise ConfigError(f"{folder / PROJECT_FILE} already exists; pass --force to replace it")
    if image_classes is not None:
        if sample is not None or ids or time_column or targets or labels:
            raise ConfigError("an image project's contract is its images': --data, --id, --time, --target and "
                              "--label do not go with --images")  # fmt: skip
        settings = Settings(
            project=ProjectSection(name=name or folder.name),
            contract=image_contract(image_classes, timezone),
            images=ImageSettings(standardise=image_standard or Standardisation()),
        )
        return _created(folder, settings)
    if sample is None:
        if ids or time_column or targets or labels:
            raise ConfigError("--id, --time, --target and --label need --data: the sample the contract is drafted from")
        contract = Contract(columns={}, timezone=timezone)
    else:
        contract = draft_contract(
            sample, ids=ids, time_column=time_column, targets=targets, labels=labels, timezone=timezone
        )
    settings = Settings(
        project=ProjectSection(name=name or folder.name),
        contract=contract,
        features=_draft_features(contract),
    )
    return _created(folder, settings)


def _created(folder: Path, settings: Settings) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    project = Project(folder, settings)
    project.save()
    return project


def image_contract(classes: list[str], timezone: str = UTC_ZONE) -> Contract:
    """An image project's rows: an image named by its content hash, when it was taken, and its
    label among ``classes`` (missing until it is known)."""
    if len(set(classes)) < 2:
        raise ConfigError(
            f"an image project needs at least two classes to tell apart, got {sorted(set(classes))}: give the "
            "images folder one subfolder per class"
        )
    return Contract(
        columns={
            IMAGE_ID: Column(type=ColumnType.STRING, role=Role.ID, nullable=False),
            CAPTURED_AT: Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME, nullable=False),
            IMAGE_LABEL: Column(type=ColumnType.STRING, role=Role.TARGET, classes=sorted(set(classes))),
        },
        timezone=timezone,
    )


def _draft_features(contract: Contract) -> list[DatetimeFeature]:
    """Calendar seasonality of the event time: the features almost every event dataset wants."""
    clock = contract.event_time_column
    if clock is None:
        return []
    if contract.columns[clock].type is ColumnType.DATETIME:
        return [DatetimeFeature(column=clock, parts=["hour", "day_of_week", "month"])]
    return [DatetimeFeature(column=clock, parts=["day_of_week", "month"])]


__all__ = ["PROJECT_FILE", "Project", "image_contract", "init_project"]
