from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.errors import ConfigError
from driftloop.project import Project, init_project
from driftloop.settings import PROJECT_FILE
from tests.conftest import small_frame


def test_init_drafts_then_load_reads_the_same_settings(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", sample=small_frame(), ids=("id",), targets=("y",))
    loaded = Project.load(tmp_path / "p")
    assert loaded.settings == project.settings
    assert loaded.contract.event_time_column == "ts"  # the only datetime column
    assert loaded.settings.features[0].outputs == ["ts_hour_sin", "ts_hour_cos", "ts_day_of_week_sin",
                                                   "ts_day_of_week_cos", "ts_month_sin", "ts_month_cos"]  # fmt: skip
    assert loaded.lake.root == (tmp_path / "p" / "lake").resolve()
    assert loaded.tracking_uri == f"sqlite:///{(tmp_path / 'p' / 'mlflow.db').resolve()}"


def test_features_can_be_appended_to_a_project_without_any(tmp_path: Path) -> None:
    init_project(tmp_path, sample=small_frame().drop("ts"))
    with (tmp_path / PROJECT_FILE).open("a") as handle:
        handle.write('\n[[features]]\nname = "double"\nexpr = "x * 2"\n')
    assert Project.load(tmp_path).feature_set().derived == ["double"]


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    init_project(tmp_path)
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        init_project(tmp_path)
    init_project(tmp_path, force=True)


def test_roles_without_a_sample_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="need --data"):
        init_project(tmp_path, targets=("y",))


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / PROJECT_FILE).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[project\nname=1", "is not valid TOML"),
        ('[project]\nname = "x"\nlakes = "l"\n[contract]\ncolumns = {}', "project.lakes: unknown key"),
        ('[project]\nname = "x"\n[contract.columns.a]\ntype = "decimal"',
         "contract.columns.a.type: Input should be 'int', 'float', 'bool', 'string', 'date' or 'datetime' "
         "(got 'decimal')"),
        ('[project]\nname = "x"\n[contract]\nmax_unparseable_rate = 2\ncolumns = {}',
         "contract.max_unparseable_rate: Input should be less than or equal to 1 (got 2)"),
        ('[project]\nname = "x"\n[contract.columns.a]\ntype = "int"\nmin = 3\nmax = 1', "min (3.0) is above max (1.0)"),
        ('[project]\nname = "x"\n[contract]\ncolumns = {}\n[[features]]\nexpr = "a"',
         "features.0.name: Field required"),
        ('[contract]\ncolumns = {}', "project: Field required"),
        ('[project]\nname = "energy"\nregistry_uri = "databricks-uc"\n[contract]\ncolumns = {}',
         "Unity Catalog names a model catalog.schema.model; 'energy' is not such a name"),
        ('[project]\nname = "e"\nregistry_uri = "databricks-uc"\nmodel = "main.ml"\n[contract]\ncolumns = {}',
         "'main.ml' is not such a name"),
        ('[project]\nname = "energy"\ntracking_uri = "databricks"\n[contract]\ncolumns = {}',
         "a Databricks experiment is named by a workspace path; 'energy' is not one"),
    ],
)  # fmt: skip
def test_invalid_project_files_name_key_value_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Project.load(write(tmp_path, text))
    assert message in str(caught.value)


def test_a_missing_project_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="driftloop init"):
        Project.load(tmp_path)
