"""Image ingest: files in, each image stored once in ``images``, every refused file (bytes kept) in
``image_quarantine`` with the rules it broke.

One call is one batch, named by a digest of its files' names and contents, so ingesting the same
folder again is recognised, and a call cut short and run again replaces its own rows instead of
adding them twice. Content that is kept already is counted as a duplicate and not written again:
an image another batch stored, or a file still refused that another batch quarantined (one that
a relaxed contract now accepts is stored). A label comes from the file's class subfolder or from
a labels file.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from driftloop.data.validate import RuleCount
from driftloop.errors import ConfigError, SourceError
from driftloop.images import Broken, Decoded, ImageRules, content_hash, decode, image_stats
from driftloop.ingest import BatchStatus, IngestSummary, completed_batch, log_batch, store
from driftloop.lake import (
    BATCH_ID,
    CAPTURED_AT,
    EVENT_DATE,
    EVENT_MONTH,
    IMAGE_ID,
    IMAGE_LABEL,
    INGEST_DATE,
    INGESTED_AT,
    ROW,
    RULES,
    SOURCE,
    TABLES,
    Lake,
    Table,
    Where,
)

if TYPE_CHECKING:
    from driftloop.project import Project

# Suffixes walked in a folder: what cameras and phones write (a file of another kind named on
# its own is still read, and quarantined if it is not an image).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# A labels file's columns: the file (its name, or its path relative to the folder), its label,
# and optionally when it was taken.
LABELS_FILE_COLUMNS = ("file", "label")


@dataclass(frozen=True)
class ImageFile:
    """One file to ingest, with what is known of it besides its bytes."""

    path: Path
    name: str  # relative to the folder it was found in: what a labels file names it by
    label: str | None
    captured_at: datetime  # naive UTC: given by the labels file, else the file's modification time


def ingest_images(
    project: Project,
    sources: str | Path | Sequence[str | Path],
    *,
    labels: str | Path | None = None,
    folder_labels: bool = True,
    on_file: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Ingest image files and folders (walked for image files) into ``project``'s lake as one batch.

    A file's label is its class subfolder's name (a folder's direct subfolders, with
    ``folder_labels``), or what ``labels`` (a CSV of ``file,label[,captured_at]``) says, which wins.
    A label the project does not know is a quarantine reason, as is every image rule broken.
    ``on_file(done, total)`` follows the work.
    """
    settings = project.settings.images
    if settings is None:
        raise ConfigError(
            f"{project.root} is not an image project (no [images] section); make one with "
            "`driftloop init DIR --images FOLDER`"
        )
    files = image_files(sources, labels=labels, folder_labels=folder_labels)
    started = time.perf_counter()
    contents = [_read(f.path) for f in files]
    ids = [content_hash(c) for c in contents]
    batch_id = _batch_id(files, ids)
    lake = project.lake
    previous = completed_batch(lake, batch_id)
    if previous is not None:
        return previous
    stored = _kept_elsewhere(lake, Table.IMAGES, ids, batch_id)
    quarantined = _kept_elsewhere(lake, Table.IMAGE_QUARANTINE, ids, batch_id)
    classes = project.contract.columns[IMAGE_LABEL].classes if IMAGE_LABEL in project.contract.columns else None
    accepted: list[dict[str, object]] = []
    refused: list[dict[str, object]] = []
    duplicates = 0
    for row, (file, content, image_id) in enumerate(zip(files, contents, ids, strict=True), start=1):
        outcome = None if image_id in stored else _checked(file, content, settings, classes)
        if isinstance(outcome, Decoded):
            accepted.append(_row(row, file, content, image_id, outcome))
            stored.add(image_id)
        elif outcome is not None and image_id not in quarantined:
            refused.append(_row(row, file, content, image_id, outcome))
            quarantined.add(image_id)
        else:  # its content is kept already: stored, or in quarantine and still refused
            duplicates += 1
        if on_file is not None:
            on_file(row, len(files))
    return _write(lake, batch_id, _source(sources), accepted, refused, len(files), duplicates, started)


def image_files(
    sources: str | Path | Sequence[str | Path], *, labels: str | Path | None = None, folder_labels: bool = True
) -> list[ImageFile]:
    """The files named by ``sources`` (folders walked for image files, sorted), with their
    labels and capture times."""
    given = [sources] if isinstance(sources, str | Path) else list(sources)
    found: list[tuple[Path, str, str | None]] = []
    for raw in given:
        path = Path(raw)
        if path.is_dir():
            walked = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not walked:
                raise SourceError(f"folder {path} holds no image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
            for file in walked:
                relative = file.relative_to(path)
                label = relative.parts[0] if folder_labels and len(relative.parts) == 2 else None
                found.append((file, relative.as_posix(), label))
        elif path.is_file():
            found.append((path, path.name, None))
        else:
            raise SourceError(f"{path}: no such file or folder")
    table = _labels_file(Path(labels)) if labels is not None else {}
    unknown = set(table) - {name for _, name, _ in found} - {Path(name).name for _, name, _ in found}
    if unknown:
        raise SourceError(
            f"the labels file {labels} names {len(unknown)} file(s) not among those ingested, "
            f"e.g. {sorted(unknown)[:3]}; name each file as it is in the folder"
        )
    files = []
    for path, name, label in found:
        entry = table.get(name) or table.get(Path(name).name)
        files.append(
            ImageFile(
                path,
                name,
                entry[0] if entry else label,
                entry[1] if entry and entry[1] else _modified(path),
            )
        )
    return files


def labels_of(files: Sequence[ImageFile]) -> list[str]:
    """The labels ``files`` carry (their class subfolders, or a labels file): what an image
    project made from them tells apart."""
    return sorted({f.label for f in files if f.label is not None})


def _labels_file(path: Path) -> dict[str, tuple[str | None, datetime | None]]:
    """A labels CSV: file name -> (label, capture time), each optional but the file."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"the labels file {path} cannot be read: {exc}") from exc
    columns = set(rows[0]) if rows else set()
    if not set(LABELS_FILE_COLUMNS) <= columns:
        raise SourceError(
            f"the labels file {path} needs the columns {list(LABELS_FILE_COLUMNS)} (and optionally {CAPTURED_AT}); "
            f"it has {sorted(columns)}"
        )
    table: dict[str, tuple[str | None, datetime | None]] = {}
    for line, row in enumerate(rows, start=2):
        table[row["file"]] = (row["label"] or None, _parse_time(row.get(CAPTURED_AT), path, line))
    return table


def _parse_time(text: str | None, path: Path, line: int) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SourceError(
            f"the labels file {path}, line {line}: {CAPTURED_AT} {text!r} is not an ISO time, e.g. 2026-03-01T08:30:00"
        ) from exc
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _modified(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read: {exc}") from exc


def _batch_id(files: list[ImageFile], ids: list[str]) -> str:
    """A digest of the files' names and contents: the same folder is the same batch."""
    digest = hashlib.sha256()
    for file, image_id in sorted(zip((f.name for f in files), ids, strict=True)):
        digest.update(f"{file}\0{image_id}\n".encode())
    return "images-" + digest.hexdigest()[:20]


def _kept_elsewhere(lake: Lake, table: Table, ids: list[str], batch_id: str) -> set[str]:
    """Which of ``ids`` other batches already keep in ``table`` (this batch's own rows are rewritten)."""
    if not lake.exists(table):
        return set()
    found = (
        lake.scan(table).filter(pl.col(IMAGE_ID).is_in(ids) & (pl.col(BATCH_ID) != batch_id)).select(IMAGE_ID).collect()
    )
    return set(found.get_column(IMAGE_ID).to_list())


def _checked(file: ImageFile, content: bytes, rules: ImageRules, classes: list[str] | None) -> Decoded | list[Broken]:
    outcome = decode(content, rules)
    if classes is not None and file.label is not None and file.label not in classes:
        unknown = Broken("label:allowed", f"label {file.label!r} is not one of the project's classes {classes}")
        return [*outcome, unknown] if isinstance(outcome, list) else [unknown]
    return outcome


def _row(
    row: int, file: ImageFile, content: bytes, image_id: str, outcome: Decoded | list[Broken]
) -> dict[str, object]:
    common = {ROW: row, IMAGE_ID: image_id, IMAGE_LABEL: file.label, "content": content, "size_bytes": len(content),
              SOURCE: str(file.path)}  # fmt: skip
    if isinstance(outcome, list):
        return {
            **common,
            RULES: [b.rule for b in outcome],
            "detail": "; ".join(f"{b.rule}: {b.detail}" for b in outcome),
        }
    return {**common, **image_record(outcome, file.captured_at, image_stats(outcome.image))}


def image_record(decoded: Decoded, captured_at: datetime, stats: dict[str, float]) -> dict[str, object]:
    """What the images table keeps of an accepted image beside its id, bytes, label and batch:
    when it was taken, its header facts and its statistics."""
    return {
        CAPTURED_AT: captured_at,
        EVENT_DATE: captured_at.date(),
        "format": decoded.format,
        "width": decoded.width,
        "height": decoded.height,
        "mode": decoded.mode,
        **stats,
    }


def images_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Rows of the images table as its frame (the lake derives the event month)."""
    return _frame(Table.IMAGES, rows)


def _write(
    lake: Lake, batch_id: str, source: str, accepted: list[dict[str, object]], refused: list[dict[str, object]],
    files: int, duplicates: int, started: float,
) -> IngestSummary:  # fmt: skip
    """Quarantine, then images, then the batch's record (its presence means the batch is whole)."""
    now = datetime.now(UTC)
    where = Where(equal={BATCH_ID: batch_id})
    metadata = {"driftloop.batch_id": batch_id, "driftloop.source": source}
    stamp = {BATCH_ID: batch_id, INGESTED_AT: now}
    quarantine = _frame(Table.IMAGE_QUARANTINE, [{**r, **stamp, INGEST_DATE: now.date()} for r in refused])
    quarantine_version = store(lake, Table.IMAGE_QUARANTINE, quarantine, len(refused), where, metadata)
    images = _frame(Table.IMAGES, [{**r, **stamp} for r in accepted])
    images_version = store(lake, Table.IMAGES, images, len(accepted), where, metadata)
    summary = IngestSummary(
        batch_id,
        source,
        BatchStatus.INGESTED,
        files,
        len(accepted),
        len(refused),
        rule_counts=_rule_counts(refused),
        raw_version=images_version,
        quarantine_version=quarantine_version,
        seconds=time.perf_counter() - started,
        rows_duplicate=duplicates,
    )
    log_batch(lake, summary, now)
    return summary


def _frame(table: Table, rows: list[dict[str, object]]) -> pl.DataFrame:
    schema = {
        name: dtype for name, dtype in TABLES[table].columns.items() if name != EVENT_MONTH
    }  # the lake derives it
    return pl.DataFrame(rows, schema=schema)


def _rule_counts(refused: list[dict[str, object]]) -> list[RuleCount]:
    counts: dict[str, list[str]] = {}
    for row in refused:
        rules = row[RULES]
        assert isinstance(rules, list)
        for rule in rules:
            counts.setdefault(rule, []).append(Path(str(row[SOURCE])).name)
    return [
        RuleCount(rule.split(":")[0], rule.split(":")[1], len(files), tuple(files[:3]))
        for rule, files in sorted(counts.items())
    ]


def _source(sources: str | Path | Sequence[str | Path]) -> str:
    given = [sources] if isinstance(sources, str | Path) else list(sources)
    return ", ".join(str(s) for s in given[:3]) + (f" and {len(given) - 3} more" if len(given) > 3 else "")


__all__ = ["IMAGE_SUFFIXES", "ImageFile", "image_files", "image_record", "images_frame", "ingest_images", "labels_of"]
