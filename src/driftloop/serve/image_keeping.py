"""``[serve] keep_images``: the images an image server answered, as rows of the lake's ``images``
table (once per content, unlabelled), to be labelled later and trained on."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from driftloop.ingest_images import image_record, images_frame
from driftloop.lake import BATCH_ID, IMAGE_ID, IMAGE_LABEL, INGESTED_AT, ROW, SOURCE, Table
from driftloop.project import Project
from driftloop.serve.image_app import Kept


def kept_images(project: Project, entries: list[Kept]) -> pl.DataFrame:
    """The images table's rows of answered images the lake does not hold yet: unlabelled, captured
    when they were scored, their source the request that sent them."""
    rows: dict[str, dict[str, object]] = {}
    now = datetime.now(UTC)
    for entry in entries:
        captured = entry.scored.scored_at.replace(tzinfo=None)
        pairs = zip(entry.decoded, entry.files, entry.scored.predictions.stats, strict=True)
        for row, (decoded, content, stats) in enumerate(pairs, start=1):
            rows.setdefault(decoded.image_id, {
                ROW: row, IMAGE_ID: decoded.image_id, IMAGE_LABEL: None, "content": content,
                "size_bytes": len(content), SOURCE: f"serve {entry.scored.request_id}", BATCH_ID: entry.server_id,
                INGESTED_AT: now, **image_record(decoded, captured, stats),
            })  # fmt: skip
    lake = project.lake
    if lake.exists(Table.IMAGES):
        held = lake.scan(Table.IMAGES).filter(pl.col(IMAGE_ID).is_in(list(rows))).select(IMAGE_ID).collect()
        for image_id in held.get_column(IMAGE_ID):
            rows.pop(image_id, None)
    return images_frame(list(rows.values()))


__all__ = ["kept_images"]
