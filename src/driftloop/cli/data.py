"""Commands for data: init, ingest, features, tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from driftloop.cli.common import JsonOption, ProjectOption, emit_json, err, handled, out, progress_bar, table_project
from driftloop.data.clock import UTC_ZONE
from driftloop.data.contract import Column
from driftloop.data.draft import DraftReview, review_draft, spread_sample
from driftloop.data.sources import expand_paths, read_file
from driftloop.errors import ConfigError
from driftloop.feature_table import materialize
from driftloop.images import draft_standardisation
from driftloop.ingest import BatchStatus, IngestSummary, ingest
from driftloop.ingest_images import image_files, ingest_images, labels_of
from driftloop.lake import IMAGE_LABEL, TABLES
from driftloop.project import Project, init_project
from driftloop.settings import PROJECT_FILE


@handled
def init(
    folder: Annotated[Path, typer.Argument(help="Folder of the new project (created if needed).")],
    data: Annotated[Path | None, typer.Option("--data", help="Sample file the contract is drafted from.")] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", help="Column that identifies an entity, or comma-separated columns that do together."),
    ] = None,
    time_column: Annotated[
        str | None,
        typer.Option(
            "--time",
            help="Column holding the event time (text, a date, or epoch numbers), or the year,month,day[,hour...] "
            "columns to assemble it from, comma-separated.",
        ),
    ] = None,
    target: Annotated[list[str] | None, typer.Option("--target", help="A column to predict (repeatable).")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="A target to classify: its values are the classes, even when they are numbers (repeatable).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Project name (default: the folder's name).")] = None,
    sample_rows: Annotated[
        int, typer.Option(help="Rows the contract is drafted from, taken evenly over the whole file.", min=1)
    ] = 100_000,
    timezone: Annotated[
        str, typer.Option(help="IANA zone naive times are written in; the loop's day starts at its midnight.")
    ] = UTC_ZONE,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images", help="An image project: a folder of images, one subfolder per class (or see --labels)."
        ),
    ] = None,
    image_labels: Annotated[
        Path | None,
        typer.Option("--labels", help="With --images: a CSV of file,label[,captured_at] naming each image's class."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing driftloop.toml.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a project: driftloop.toml with a data contract drafted from a sample, or for images."""
    if image_labels is not None and images is None:
        raise ConfigError("--labels names the classes of the images of --images FOLDER; give the folder too")
    sample = spread_sample(read_file(expand_paths([data])[0]).frame, sample_rows) if data else None
    files = image_files(images, labels=image_labels) if images is not None else None
    project = init_project(
        folder,
        sample=sample,
        name=name,
        ids=tuple(i.strip() for i in (id_column or "").split(",") if i.strip()),
        time_column=time_column,
        targets=tuple(target or ()),
        labels=tuple(label or ()),
        timezone=timezone,
        image_classes=labels_of(files) if files is not None else None,
        image_standard=draft_standardisation([f.path for f in files]) if files is not None else None,
        force=force,
    )
    contract = project.contract
    review = review_draft(sample, contract) if sample is not None else DraftReview({}, [])
    summary = {
        "project": str(project.root / PROJECT_FILE),
        "columns": len(contract.columns),
        "id": contract.id_columns,
        "event_time": contract.event_time_column,
        "targets": contract.targets,
        "features": project.feature_set().inputs,
        "sample_rows": 0 if sample is None else sample.height,
        "null_rates": review.null_rates,
        "warnings": review.warnings,
        "standardise": None if project.settings.images is None else project.settings.images.standardise.model_dump(),
    }
    if as_json:
        emit_json(summary)
        return
    out.print(f"[green]created[/] {summary['project']}")
    if project.settings.images is not None:
        classes = contract.columns[IMAGE_LABEL].classes or []
        standard = project.settings.images.standardise
        colour = "grey" if standard.mode == "L" else "colour"
        out.print(
            f"An image project telling apart {len(classes)} classes: {', '.join(classes)}. The network sees each "
            f"image as {standard.width}x{standard.height} {colour} (drafted from the images: review "
            f"\\[images.standardise] and the rest of \\[images]); next, "
            f"`driftloop ingest {images} --project {folder}`.",
            highlight=False,
        )
    elif contract.columns:
        title = f"Drafted contract ({summary['sample_rows']:,} rows read evenly over {data})"
        table = Table("column", "type", "role", "nullable", "missing", "rule", title=title)
        for column_name, column in contract.columns.items():
            rate = review.null_rates.get(column_name)
            table.add_row(
                column_name,
                column.type.value + (f" ({column.unit} since 1970)" if column.unit else ""),
                column.role.value,
                str(column.nullable),
                "" if rate is None else f"{rate:.1%}",
                column_rule(column),
            )
        out.print(table)
        for warning in review.warnings:
            out.print(f"[yellow]check[/] {warning}", highlight=False)
        out.print(
            f"Naive times are read in {contract.timezone}. Ranges are the sample's widened by its own span; "
            "review them, then `driftloop ingest`."
        )
    else:
        out.print("The contract is empty: rerun with --data SAMPLE to draft it, or add [contract.columns.NAME].")


@handled
def ingest_command(
    paths: Annotated[
        list[Path], typer.Argument(help="CSV, Parquet or NDJSON files, or folders of them; images and their folders.")
    ],
    labels: Annotated[bool, typer.Option("--labels", help="The files hold ground truth (key + targets).")] = False,
    image_labels: Annotated[
        Path | None,
        typer.Option("--image-labels", help="Images: a CSV of file,label[,captured_at]; it wins over class folders."),
    ] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Validate files into the raw table (or, with --labels, ground truth into labels); rows breaking a rule go
    to quarantine with their reasons. In an image project, images go to the images table, each once, and bad
    files to image_quarantine; with --labels, CSVs of image_id,label or file,label label images already in."""
    project = Project.load(project_dir)
    if project.settings.images is not None:
        if labels:
            _label_images(project, paths, as_json)
        else:
            _ingest_images(project, paths, image_labels, as_json)
        return
    if image_labels is not None:
        raise ConfigError(f"--image-labels names the classes of images; {project.root} is not an image project")
    files = expand_paths(paths)
    with progress_bar(as_json) as progress:
        task = progress.add_task("ingest", total=len(files))

        def on_step(source: str, step: str) -> None:
            progress.update(task, description=f"{Path(source).name}: {step}")

        summaries = []
        for path in files:
            summaries += ingest(project, path, on_refused="continue", labels=labels, on_step=on_step)
            progress.advance(task)
    if as_json:
        emit_json([s.to_dict() for s in summaries])
    else:
        show_ingest(summaries)
    if any(s.status is BatchStatus.REFUSED for s in summaries):
        raise typer.Exit(1)


def _ingest_images(project: Project, paths: list[Path], image_labels: Path | None, as_json: bool) -> None:
    with progress_bar(as_json) as progress:
        task = progress.add_task("reading images", total=None)
        summary = ingest_images(
            project, paths, labels=image_labels, on_file=lambda done, total: progress.update(task, completed=done,
                                                                                                  total=total)
        )  # fmt: skip
    if as_json:
        emit_json([summary.to_dict()])
        return
    show_ingest([summary], unit="files")
    if summary.rows_duplicate:
        out.print(f"{summary.rows_duplicate:,} file(s) held content the lake keeps already: not stored again")


def _label_images(project: Project, paths: list[Path], as_json: bool) -> None:
    from driftloop.image_labels import label_images

    summaries = [label_images(project, path) for path in paths]
    if as_json:
        emit_json([s.to_dict() for s in summaries])
        return
    for s in summaries:
        out.print(
            f"[green]labels[/] {s.source}: {s.labelled:,} image(s) labelled, {s.relabelled:,} relabelled, "
            f"{s.unchanged:,} unchanged" + (f" (images table version {s.version})" if s.version is not None else "")
        )


@handled
def features(project_dir: ProjectOption = Path(), as_json: JsonOption = False) -> None:
    """Materialise the features table from raw, computing only batches not yet included."""
    project = table_project(project_dir, "features")
    with progress_bar(as_json) as progress:
        progress.add_task("computing features", total=None)
        run = materialize(project.lake, project.feature_set(), engine=project.engine)
    if as_json:
        emit_json(run.__dict__)
    elif not run.batches:
        out.print(f"features are up to date (table version {run.version}, from raw version {run.raw_version})")
    else:
        out.print(
            f"[green]features[/] version {run.version}: {run.rows:,} rows from {len(run.batches)} new "
            f"batch(es) (raw version {run.raw_version})"
        )


@handled
def tables(
    name: Annotated[str | None, typer.Argument(help="A table, to show its version history.")] = None,
    limit: Annotated[int, typer.Option(help="Versions shown in a history.", min=1)] = 20,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """List the lake's tables with versions and row counts, or one table's history."""
    lake = Project.load(project_dir).lake
    if name is None:
        listing = [(t, lake.version(t), lake.row_count(t), spec.row) for t, spec in TABLES.items()]
        if as_json:
            emit_json([{"table": t, "version": v, "rows": n, "row": row} for t, v, n, row in listing])
            return
        table = Table("table", "version", "rows", "one row is", title=f"Lake at {lake.root}")
        for table_name, version, rows, row in listing:
            table.add_row(table_name, "-" if version is None else str(version), f"{rows:,}", row)
        out.print(table)
        return
    history = lake.history(name, limit=limit)
    if as_json:
        emit_json([v.__dict__ for v in history])
        return
    table = Table("version", "time (UTC)", "operation", "rows added", "rows", title=f"History of {name}")
    for v in history:
        added = "" if v.rows_added is None else f"{v.rows_added:,}"
        table.add_row(str(v.version), f"{v.timestamp:%Y-%m-%d %H:%M:%S}", v.operation, added, f"{v.rows:,}")
    out.print(table)


@handled
def compact(
    name: Annotated[str | None, typer.Argument(help="A table (default: every table).")] = None,
    min_files: Annotated[
        int, typer.Option(help="Compact a table once a partition of it holds this many files.", min=2)
    ] = 2,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Rewrite the lake's small files as larger ones; the rows and every earlier version stay."""
    lake = Project.load(project_dir).lake
    names = [name] if name else list(TABLES)
    with progress_bar(as_json) as progress:
        task = progress.add_task("compacting", total=len(names))
        done = []
        for table in names:
            progress.update(task, description=f"compacting {table}")
            done.append(lake.compact(table, min_files=min_files))
            progress.advance(task)
    if as_json:
        emit_json([c.__dict__ for c in done if c is not None])
        return
    for table, c in zip(names, done, strict=True):
        if c is None:
            out.print(f"{table}: nothing to compact")
        else:
            out.print(f"[green]{table}[/]: {c.files_removed} files into {c.files_added} (version {c.version})")


def show_ingest(summaries: list[IngestSummary], *, unit: str = "rows") -> None:
    """The batches' outcomes, then what was quarantined by rule (``unit``: rows, or image files)."""
    stored = "raw" if unit == "rows" else "stored"
    table = Table("source", "status", f"{unit} in", stored, "quarantined", "seconds", title="Ingest")
    for s in summaries:
        colour = {BatchStatus.INGESTED: "green", BatchStatus.REFUSED: "red"}.get(s.status, "yellow")
        table.add_row(
            Path(s.source).name,
            f"[{colour}]{s.status}[/]",
            f"{s.rows_in:,}",
            f"{s.rows_raw:,}",
            f"{s.rows_quarantined:,}",
            f"{s.seconds:.2f}",
        )
    out.print(table)
    rules = Table("source", "column", "rule", unit, "examples", title=f"Quarantined {unit} by rule")
    for s in summaries:
        for r in s.rule_counts:
            rules.add_row(Path(s.source).name, r.column, r.rule, f"{r.rows:,}", ", ".join(map(repr, r.examples)))
    if rules.row_count:
        out.print(rules)
    for s in summaries:
        if s.ignored_columns:
            out.print(
                f"[yellow]{Path(s.source).name}: columns not in the contract were ignored:[/] {s.ignored_columns}"
            )
        for problem in s.problems:
            err.print(f"[bold red]refused[/] {s.source}: {problem}", highlight=False)


def column_rule(column: Column) -> str:
    """A contract column's rule as a person reads it."""
    if column.parts:
        return "from " + " ".join(column.parts)
    return rule_text(column.min, column.max, column.allowed)


def rule_text(low: float | None, high: float | None, allowed: list[str] | None) -> str:
    if allowed is not None:
        shown = ", ".join(allowed[:5]) + (", ..." if len(allowed) > 5 else "")
        return f"one of {shown}"
    if low is not None or high is not None:
        return f"{low if low is not None else '-inf'} .. {high if high is not None else 'inf'}"
    return ""
