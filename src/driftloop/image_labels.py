"""Labels that arrive after their images: an inspector's verdicts, a grader's marks.

A labels file names each image by its ``image_id`` (the content hash ingest and the server give
back) or by its ``file`` (the path it was ingested from, or that path's end), and gives its
``label``. The images are relabelled in place in the ``images`` table (a new table version, so a
model trained before still names the images as it saw them). A file naming an image the lake
does not hold, or a class the project does not know, is refused whole, with the lines at fault:
nothing is written.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from driftloop.errors import ConfigError, SourceError
from driftloop.lake import IMAGE_ID, IMAGE_LABEL, SOURCE, Table

if TYPE_CHECKING:
    from driftloop.project import Project

# Lines at fault named in a refusal.
SHOWN = 3


@dataclass(frozen=True)
class LabelSummary:
    """What a labels file changed in the images table."""

    source: str
    lines: int
    labelled: int  # images that had no label
    relabelled: int  # images whose label changed
    unchanged: int
    version: int | None  # the images table's version after the write (None: nothing to write)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_images(project: Project, path: str | Path) -> LabelSummary:
    """Set the labels a CSV of ``image_id,label`` or ``file,label`` gives to the images it names."""
    started = time.perf_counter()
    if project.settings.images is None:
        raise ConfigError(f"{project.root} is not an image project: its labels go in with `driftloop ingest --labels`")
    classes = project.contract.columns[IMAGE_LABEL].classes or []
    lines = _read(Path(path))
    lake = project.lake
    if lake.version(Table.IMAGES) is None:
        raise SourceError(f"the labels file {path} names images, but the images table is empty: ingest them first")
    known = lake.scan(Table.IMAGES).select(IMAGE_ID, SOURCE, IMAGE_LABEL).collect()
    wanted = _resolved(lines, known, classes, Path(path))
    current = dict(zip(known.get_column(IMAGE_ID), known.get_column(IMAGE_LABEL), strict=True))
    changed = {i: label for i, label in wanted.items() if current[i] != label}
    version = None
    if changed:
        rows = lake.scan(Table.IMAGES).filter(pl.col(IMAGE_ID).is_in(list(changed))).collect()
        relabelled = rows.with_columns(
            pl.col(IMAGE_ID).replace_strict(changed, return_dtype=pl.String).alias(IMAGE_LABEL)
        )
        version = lake.merge(Table.IMAGES, relabelled, key=[IMAGE_ID], metadata={"driftloop.labels": str(path)})
    return LabelSummary(
        str(path),
        len(lines),
        sum(1 for i in changed if current[i] is None),
        sum(1 for i in changed if current[i] is not None),
        len(wanted) - len(changed),
        version,
        time.perf_counter() - started,
    )


def _read(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The file's lines (numbered as an editor shows them) as column -> text."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            lines = [(number, row) for number, row in enumerate(reader, start=2)]
            columns = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"the labels file {path} cannot be read: {exc}") from exc
    if IMAGE_LABEL not in columns or not columns & {IMAGE_ID, "file"}:
        raise SourceError(
            f"the labels file {path} needs a column {IMAGE_LABEL!r} and one of {IMAGE_ID!r} or 'file'; "
            f"it has {sorted(columns)}"
        )
    if not lines:
        raise SourceError(f"the labels file {path} holds no label")
    return lines


def _resolved(
    lines: list[tuple[int, dict[str, str]]], known: pl.DataFrame, classes: list[str], path: Path
) -> dict[str, str]:
    """image id -> label for every line; a SourceError naming the lines that name no image (or
    several), or a class the project does not know."""
    ids = set(known.get_column(IMAGE_ID))
    by_source: dict[str, list[str]] = {}
    for image_id, source in zip(known.get_column(IMAGE_ID), known.get_column(SOURCE), strict=True):
        parts = Path(source).parts
        for start in range(len(parts)):  # the path, and every end of it: "line3/0412.png", "0412.png"
            by_source.setdefault(Path(*parts[start:]).as_posix(), []).append(image_id)
    wanted: dict[str, str] = {}
    faults: list[str] = []
    for number, row in lines:
        label = (row.get(IMAGE_LABEL) or "").strip()
        name = (row.get(IMAGE_ID) or "").strip()
        matches = (
            ([name] if name in ids else []) if name else sorted(set(by_source.get((row.get("file") or "").strip(), [])))
        )
        if len(matches) != 1:
            named = name or row.get("file") or "nothing"
            why = "names no image of the lake" if not matches else f"matches {len(matches)} images; give their image_id"
            faults.append(f"line {number}: {named!r} {why}")
        elif label not in classes:
            faults.append(f"line {number}: label {label!r} is not one of the project's classes {classes}")
        else:
            wanted[matches[0]] = label
    if faults:
        more = f" and {len(faults) - SHOWN} more" if len(faults) > SHOWN else ""
        raise SourceError(
            f"the labels file {path} was not applied, {len(faults)} line(s) at fault: "
            + "; ".join(faults[:SHOWN]) + more
        )  # fmt: skip
    return wanted
