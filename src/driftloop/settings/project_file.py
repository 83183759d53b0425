"""Everything ``driftloop.toml`` says, validated: one section model per table of the file.

Read once at the edge (the CLI, or :meth:`driftloop.project.Project.load`), validated here with
errors that name the key, the value and the expected form, and passed down; nothing below reads
the file or the environment again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftloop.data.contract import Contract
from driftloop.engine import DEFAULT_ENGINE, ENGINES, SparkOptions
from driftloop.errors import ConfigError, DriftloopError
from driftloop.features import FeatureDef
from driftloop.settings.bundle import BundleSettings
from driftloop.settings.images import ImageSettings
from driftloop.settings.loop import LoopSettings
from driftloop.settings.monitor import MonitorSettings
from driftloop.settings.promote import PromoteSettings
from driftloop.settings.rollout import RolloutSettings
from driftloop.settings.serve import ServeSettings
from driftloop.settings.train import TrainSettings

PROJECT_FILE = "driftloop.toml"
# A Unity Catalog model: three names, each without dots or spaces (catalog.schema.model).
UNITY_CATALOG_NAME = re.compile(r"[^.\s]+\.[^.\s]+\.[^.\s]+")


class ProjectSection(BaseModel):
    """Where things live."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    lake: str = Field("lake", description="Folder of the Delta tables, relative to the project.")
    tracking_uri: str = Field(
        "sqlite:///mlflow.db", description="MLflow tracking URI; a relative SQLite path is project-relative."
    )
    inbox: str = Field("inbox", description="Folder `driftloop run` ingests new files from.")
    engine: str = Field(DEFAULT_ENGINE, description=f"The dataframe engine the stages run on: {', '.join(ENGINES)}.")
    artifacts: str | None = Field(
        None,
        description="Where the experiment keeps model artifacts, a folder relative to the project or a URI; "
        "default: mlartifacts/ in the project with a local tracking store, the server's choice with a server.",
    )
    registry_uri: str | None = Field(
        None, description="MLflow model registry URI (default: the tracking URI); databricks-uc for Unity Catalog."
    )
    model: str | None = Field(
        None, description="The registered model's name (default: the project's); catalog.schema.model in Unity Catalog."
    )
    experiment: str | None = Field(
        None,
        description="The MLflow experiment's name (default: the project's); a workspace path on Databricks, "
        "e.g. /Shared/driftloop/energy.",
    )

    @model_validator(mode="after")
    def _names_the_registry_accepts(self) -> ProjectSection:
        registry = self.registry_uri or self.tracking_uri
        model = self.model or self.name
        if registry.startswith("databricks-uc") and not UNITY_CATALOG_NAME.fullmatch(model):
            raise ValueError(
                f"Unity Catalog names a model catalog.schema.model; {model!r} is not such a name: "
                'set [project] model = "CATALOG.SCHEMA.MODEL"'
            )
        experiment = self.experiment or self.name
        if self.tracking_uri.startswith("databricks") and not experiment.startswith("/"):
            raise ValueError(
                f"a Databricks experiment is named by a workspace path; {experiment!r} is not one: "
                f'set [project] experiment = "/Shared/driftloop/{self.name}" (or /Users/YOU/...)'
            )
        return self

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, name: str) -> str:
        if name not in ENGINES:
            raise ValueError(f"no engine named {name!r} in this driftloop; the engines are {sorted(ENGINES)}")
        return name


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
    spark: SparkOptions = Field(default_factory=SparkOptions)
    bundle: BundleSettings = Field(default_factory=BundleSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    images: ImageSettings | None = Field(
        None, description="An image project's image contract and standardisation; None for a table project."
    )


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
