"""The demo: a project made from the UCI Appliances Energy data, replayed through the loop.

:func:`create_demo_project` makes a fresh project whose contract is drafted from the first
week, with the derived features and settings below, and writes the whole data set to
``data/energy.csv`` in it; ``driftloop demo`` then replays it (:mod:`driftloop.replay`):
the winter's history trains the first champion, and every later day is one tick of the loop.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

from driftloop.demo.data import TARGETS, TIME, energy_csv, first_day, load_energy, messy_energy
from driftloop.errors import ConfigError
from driftloop.features import ExpressionFeature
from driftloop.project import Project, init_project
from driftloop.settings import PROJECT_FILE
from driftloop.settings.loop import LoopSettings
from driftloop.settings.promote import PromoteSettings
from driftloop.settings.train import TargetSettings, TrainSettings

# Derived features a person who knows the house would add: mean indoor temperature and
# the indoor/outdoor gaps that drive heating.
DEMO_FEATURES = (
    ExpressionFeature(name="T_indoor_mean", expr="(T1 + T2 + T3 + T4 + T5 + T7 + T8 + T9) / 8"),
    ExpressionFeature(name="T_gap", expr="T_indoor_mean - T_out"),
    ExpressionFeature(name="RH_gap", expr="RH_1 - RH_out"),
)
# Days of history before the replay starts: 11 January to 29 February, winter. The replay
# then runs into March, when spring moves every indoor reading and the winter model falls behind.
HISTORY_DAYS = 50
# A smaller network than the default suits 3,000 to 4,000 rows a window. Both targets are
# heavy-tailed (rare bursts of use) and judged by MAE, so each head is trained on MAE: it aims
# at the median, which is what MAE rewards. Training looks back four weeks (the
# winter-to-spring change makes older weeks misleading), which also keeps every retrain, and
# the demo, the same size however far the replay has gone.
DEMO_TRAIN = TrainSettings(
    hidden=[64, 32],
    epochs=80,
    patience=8,
    learning_rate=2e-3,
    targets={target: TargetSettings(loss="mae") for target in TARGETS},
)
# A retrain every three days at most, each challenger judged on the two days after its data
# (which neither model was fitted on) before it may serve. Replayed on March, April and May
# (`driftloop replay --policies`), its MAE was 1.9%, 0.5% and 5.4% behind retraining every day
# with 4 to 5 models in 28 days, where a cool-down of 7 days with challengers judged on their
# held-out test days stayed within 3% of never retraining: the held-out fit that is judged
# leaves out the newest days, the very ones that changed.
DEMO_LOOP = LoopSettings(training_window="sliding", window_days=28, cooldown_days=3)
DEMO_PROMOTE = PromoteSettings(judge_days=2)


def create_demo_project(folder: Path, *, force: bool = False) -> tuple[Project, Path]:
    """A fresh project for the demo data and the path of the data file to replay into it."""
    folder = emptied(folder, force=force)
    frame = load_energy()
    project = init_project(folder, sample=frame.head(7 * 144), name="energy-demo", time_column=TIME, targets=TARGETS)
    settings = project.settings.model_copy(
        update={
            "features": [*project.settings.features, *DEMO_FEATURES],
            "train": DEMO_TRAIN,
            "loop": DEMO_LOOP,
            "promote": DEMO_PROMOTE,
        }
    )
    project = Project(project.root, settings)
    project.save()
    data = folder / "data" / "energy.csv"
    data.parent.mkdir()
    data.write_bytes(energy_csv())
    return project, data


def emptied(folder: Path, *, force: bool) -> Path:
    """``folder`` (absolute), ready for a demo project: empty, or a project replaced with ``force``;
    a ConfigError for a folder that holds anything else, or a project without ``force``."""
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        if not (folder / PROJECT_FILE).exists():
            raise ConfigError(f"{folder} exists and is not a driftloop project; choose an empty folder")
        if not force:
            raise ConfigError(f"{folder} already holds a project; pass --force to start it afresh")
        shutil.rmtree(folder)
    return folder


def replay_start() -> date:
    """The first replayed day: after :data:`HISTORY_DAYS` days of history."""
    return first_day(load_energy()) + timedelta(days=HISTORY_DAYS)


__all__ = [
    "DEMO_FEATURES",
    "HISTORY_DAYS",
    "create_demo_project",
    "energy_csv",
    "load_energy",
    "messy_energy",
    "replay_start",
]
