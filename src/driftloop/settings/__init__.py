"""Settings: the sections of ``driftloop.toml`` as pydantic models, one module per section
(``train``, ``promote``, ``monitor``, ``loop``, ``serve``, ``rollout``, ``bundle``, ``images``), and
``project_file`` for the whole file and its ``[project]`` table. Built once at the edge and passed down."""

from typing import TYPE_CHECKING

from driftloop.lazy import lazy_names

if TYPE_CHECKING:
    from driftloop.settings.bundle import BundleSettings
    from driftloop.settings.loop import LoopSettings
    from driftloop.settings.monitor import MonitorSettings
    from driftloop.settings.project_file import PROJECT_FILE, ProjectSection, Settings, parse_settings
    from driftloop.settings.promote import PromoteSettings
    from driftloop.settings.rollout import RolloutSettings
    from driftloop.settings.serve import ServeSettings
    from driftloop.settings.train import TargetSettings, TrainSettings

# Each section's model on first use: a device's server reads only [serve] (and the whole file's
# model knows the engines, which a device has none of).
__getattr__ = lazy_names(
    __name__,
    {
        **dict.fromkeys(("PROJECT_FILE", "ProjectSection", "Settings", "parse_settings"),
                        "driftloop.settings.project_file"),
        "BundleSettings": "driftloop.settings.bundle",
        "LoopSettings": "driftloop.settings.loop",
        "MonitorSettings": "driftloop.settings.monitor",
        "PromoteSettings": "driftloop.settings.promote",
        "RolloutSettings": "driftloop.settings.rollout",
        "ServeSettings": "driftloop.settings.serve",
        "TargetSettings": "driftloop.settings.train",
        "TrainSettings": "driftloop.settings.train",
    },
)  # fmt: skip

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
