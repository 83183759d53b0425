"""The project file, ``driftloop.toml``: read once, validated, passed down.

A project is a folder holding ``driftloop.toml``; the lake and the MLflow store live beside it
by default. :class:`Project` is what every command works on. Nothing below this module reads
the environment or the file again.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from driftloop.contract import ColumnType, Contract
from driftloop.draft import draft_contract
from driftloop.errors import ConfigError, DriftloopError
from driftloop.features import DatetimeFeature, FeatureDef, FeatureSet
from driftloop.lake import Lake
from driftloop.model.settings import PromoteSettings, TrainSettings
from driftloop.monitor.settings import MonitorSettings
from driftloop.policy import LoopSettings
from driftloop.serve.settings import ServeSettings

PROJECT_FILE = "driftloop.toml"
HEADER = """\
# driftloop project file. Sections:
#   [project]   where the lake (Delta tables) and the MLflow store live, relative to this folder
#   [contract]  what a valid row looks like; rows breaking a rule go to the quarantine table
#               (types: int float bool string date datetime; roles: id event_time feature target
#               segment ignore; rules: nullable, min, max, allowed, formats, max_null_rate)
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


class ProjectSection(BaseModel):
    """Where things live."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    lake: str = Field("lake", description="Folder of the Delta tables, relative to the project.")
    tracking_uri: str = Field(
        "sqlite:///mlflow.db", description="MLflow tracking URI; a relative SQLite path is project-relative."
    )
    inbox: str = Field("inbox", description="Folder `driftloop run` ingests new files from.")


class Settings(BaseModel):
    """Everything ``driftloop.toml`` says."""

    model_config = ConfigDict(extra="forbid")

    project: ProjectSection
    contract: Contract
    features: list[FeatureDef] = Field(default_factory=list)
    train: TrainSettings = Field(default_factory=TrainSettings)
    promote: PromoteSettings = Field(default_factory=PromoteSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    loop: LoopSettings = Field(default_factory=LoopSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)


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
        return Lake(self.root / self.settings.project.lake)

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI with a relative SQLite path resolved against the project folder."""
        uri = self.settings.project.tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
            return prefix + str(self.root / uri[len(prefix) :])
        return uri

    @property
    def inbox(self) -> Path:
        return self.root / self.settings.project.inbox

    def feature_set(self) -> FeatureSet:
        return FeatureSet(self.settings.features, self.contract)

    def save(self) -> None:
        """Write the settings back to ``driftloop.toml``."""
        data = self.settings.model_dump(mode="json", exclude_none=True)
        if not data["features"]:  # an empty `features = []` would clash with [[features]] added later
            del data["features"]
        text = HEADER + "\n" + tomli_w.dumps(data) + ("" if self.settings.features else FEATURES_EXAMPLE)
        (self.root / PROJECT_FILE).write_text(text, encoding="utf-8")


def parse_settings(raw: dict[str, Any], where: Path | str = PROJECT_FILE) -> Settings:
    """Validate the project file's contents; errors name the key, the value and the expected form."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigError(f"{where} is invalid:\n" + "\n".join(f"  - {line}" for line in lines)) from exc
    except DriftloopError as exc:
        raise ConfigError(f"{where} is invalid: {exc}") from exc


def _describe(error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    if loc[:1] == ["features"] and len(loc) > 2 and loc[2] in ("expression", "datetime"):
        del loc[2]  # the kind of feature pydantic picked, not a key the user wrote
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (check its spelling; see the section's keys in the docs)"
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    return f"{key}: {error['msg']}{shown}"


def init_project(
    root: str | Path,
    *,
    sample: pl.DataFrame | None = None,
    name: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    targets: tuple[str, ...] = (),
    force: bool = False,
) -> Project:
    """Create ``root/driftloop.toml``, drafting the contract from ``sample`` when given."""
    folder = Path(root).resolve()
    if (folder / PROJECT_FILE).exists() and not force:
        raise ConfigError(f"{folder / PROJECT_FILE} already exists; pass --force to replace it")
    if sample is None:
        if id_column or time_column or targets:
            raise ConfigError("--id, --time and --target need --data: the sample the contract is drafted from")
        contract = Contract(columns={})
    else:
        contract = draft_contract(sample, id_column=id_column, time_column=time_column, targets=targets)
    settings = Settings(
        project=ProjectSection(name=name or folder.name),
        contract=contract,
        features=_draft_features(contract),
    )
    folder.mkdir(parents=True, exist_ok=True)
    project = Project(folder, settings)
    project.save()
    return project


def _draft_features(contract: Contract) -> list[DatetimeFeature]:
    """Calendar seasonality of the event time: the features almost every event dataset wants."""
    clock = contract.event_time_column
    if clock is None:
        return []
    if contract.columns[clock].type is ColumnType.DATETIME:
        return [DatetimeFeature(column=clock, parts=["hour", "day_of_week", "month"])]
    return [DatetimeFeature(column=clock, parts=["day_of_week", "month"])]


__all__ = ["PROJECT_FILE", "Project", "ProjectSection", "Settings", "init_project", "parse_settings"]
