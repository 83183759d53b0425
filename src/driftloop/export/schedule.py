"""When and where the exported tick runs: the project's daily time and zone, and its command."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from driftloop.project import Project

# A tick that has not finished after this long is stopped (and retried once).
TIMEOUT_HOURS = 6
RETRY_MINUTES = 10


@dataclass(frozen=True)
class Schedule:
    """The daily tick of one project, as any scheduler needs it."""

    name: str  # the project's name
    hour: int
    minute: int
    zone: str  # the IANA zone of the contract: the loop's days and schedule_at are its
    project_path: str  # where the project folder is, seen from where the scheduler runs the command
    requirement: str  # what to install: driftloop at this version

    @classmethod
    def of(cls, project: Project, project_path: str | None = None) -> Schedule:
        """``project``'s tick; ``project_path`` where the scheduler finds its folder (default: here)."""
        hour, minute = (int(part) for part in project.settings.loop.schedule_at.split(":"))
        return cls(
            project.settings.project.name,
            hour,
            minute,
            project.contract.timezone,
            project_path or str(project.root),
            requirement(),
        )

    @property
    def slug(self) -> str:
        """The project's name as an identifier (letters, digits, underscores)."""
        return "".join(c if c.isalnum() else "_" for c in self.name).strip("_") or "project"


# What the daily tick runs on: the pipeline, and the monitoring report it writes.
TICK_EXTRAS = "driftloop[pipeline,reports]"


def requirement() -> str:
    """driftloop with what the tick needs, at this version, so the scheduler installs the same
    (any version, from a source tree that was never installed)."""
    try:
        return f"{TICK_EXTRAS}=={version('driftloop')}"
    except PackageNotFoundError:
        return TICK_EXTRAS
