"""Settings: the sections of ``driftloop.toml`` as pydantic models, one module per section
(``train``, ``promote``, ``monitor``, ``loop``, ``serve``, ``rollout``, ``bundle``, ``images``), and
``project_file`` for the whole file and its ``[project]`` table. Built once at the edge and passed down."""

from typing import TYPE_CHECKING

from driftloop.lazy import lazy_names
from driftloop.settings.bundle import BundleSettings
from driftloop.settings.loop import LoopSettings
from driftloop.settings.monitor import MonitorSettings
from driftloop.settings.promote import PromoteSettings
from driftloop.settings.rollout import RolloutSettings
from driftloop.settings.serve import ServeSettings
from driftloop.settings.train import TargetSettings, TrainSettings

if TYPE_CHECKING:
    from driftloop.settings.project_file import PROJECT_FILE, ProjectSection, Settings, parse_settings

# The whole file's model on first use: it knows the engines, and a device reading only [serve]
# has none of them.
__getattr__ = lazy_names(
    __name__,
    dict.fromkeys(("PROJECT_FILE", "ProjectSection", "Settings", "parse_settings"), "driftloop.settings.project_file"),
)

__all__ = [
    "PROJECT_FILE",
    "BundleSettings",
    "LoopSettings",
    "MonitorSettings",
    "ProjectSection",
    "PromoteSettings",
    "RolloutSettings",
    "ServeSettings",
    "Settings",
    "TargetSettings",
    "TrainSettings",
    "parse_settings",
]
