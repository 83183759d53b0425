"""Images as data: the contract, decoding, statistics and standardisation on real images (the
handwritten digits that ship inside scikit-learn), and their ingest into real Delta tables, bad
files quarantined with their bytes."""

from __future__ import annotations

import io
import os
import struct
import zlib
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageFilter

from driftloop.errors import ConfigError, SourceError
from driftloop.images import (
    Decoded,
    ImageRules,
    Standardisation,
    content_hash,
    decode,
    draft_standardisation,
    image_stats,
)
from driftloop.ingest_images import ingest_images
from driftloop.project import Project, init_project


def digits(count: int, *, start: int = 0) -> list[tuple[int, Image.Image]]:
    """Handwritten digits (UCI, via scikit-learn), grey 8x8 at 16 levels, scaled to 32x32."""
    from sklearn.datasets import load_digits

    data = load_digits()
    chosen = range(start, start + count)
    return [
        (int(data.target[i]), Image.fromarray((data.images[i] * 255 / 16).astype(np.uint8)).resize((32, 32)))
        for i in chosen
    ]


def encoded(image: Image.Image, kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A 300-byte PNG whose header claims ``width`` x ``height`` pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


RULES = ImageRules()
BAD_FILES = [
    "empty",
    "pdf",
    "truncated-png",
    "truncated-jpeg",
    "cut-jpeg-header",
    "1x1",
    "too-big",
    "bomb",
    "too-many-pixels",
    "bmp",
    "cmyk",
]
GOOD = encoded(digits(1)[0][1])
JPEG = encoded(digits(1)[0][1].resize((256, 256)).convert("RGB"), "JPEG")


@pytest.mark.parametrize(
    ("content", "rules", "broken"),
    [
        (b"", RULES, ["file:empty"]),
        (b"%PDF-1.4 not a picture" * 20, RULES, ["file:not_an_image"]),
        (GOOD[: len(GOOD) // 2], RULES, ["file:truncated"]),
        (JPEG[: len(JPEG) * 4 // 5], RULES, ["file:truncated"]),
        (JPEG[:120], RULES, ["file:corrupt"]),  # cut inside its header
        (encoded(Image.new("L", (1, 1))), RULES, ["width:min", "height:min"]),
        (GOOD, ImageRules(max_bytes=100), ["file:max_bytes"]),
        (png_claiming(30_000, 30_000), RULES, ["file:max_pixels"]),
        (png_claiming(6_000, 5_000), ImageRules(max_pixels=1_000_000), ["file:max_pixels"]),
        (encoded(Image.new("RGB", (20, 20)), "BMP"), ImageRules(formats=["png"]), ["file:format"]),
        (encoded(Image.new("CMYK", (20, 20)), "JPEG"), RULES, ["mode:allowed"]),
    ],
    ids=BAD_FILES,
)
def test_a_bad_image_file_is_refused_with_the_rules_it_broke(
    content: bytes, rules: ImageRules, broken: list[str]
) -> None:
    outcome = decode(content, rules)
    assert not isinstance(outcome, Decoded)
    assert [b.rule for b in outcome] == broken
    assert all(b.detail for b in outcome)


def test_a_good_file_is_decoded_with_its_header_facts_and_content_hash() -> None:
    outcome = decode(GOOD, RULES)
    assert isinstance(outcome, Decoded)
    assert (outcome.format, outcome.width, outcome.height, outcome.mode) == ("PNG", 32, 32, "L")
    assert outcome.image_id == content_hash(GOOD) and len(outcome.image_id) == 64 and outcome.size_bytes == len(GOOD)


def test_image_rules_that_contradict_themselves_are_refused() -> None:
    with pytest.raises(ValueError, match="min_width 50 is above max_width 40"):
        ImageRules(min_width=50, max_width=40)
    with pytest.raises(ValueError, match="not read by driftloop"):
        ImageRules(formats=["PNG", "HEIC"])


def test_statistics_see_darker_blurred_and_flat_images() -> None:
    photo = digits(1, start=5)[0][1].convert("RGB")
    base = image_stats(photo)
    darker = image_stats(Image.eval(photo, lambda v: v // 3))
    blurred = image_stats(photo.filter(ImageFilter.GaussianBlur(2)))
    flat = image_stats(Image.new("RGB", (40, 30), (255, 0, 0)))
    assert darker["brightness"] < base["brightness"] / 2 and darker["contrast"] < base["contrast"]
    assert blurred["sharpness"] < base["sharpness"] / 2
    assert flat == pytest.approx(
        {"brightness": 0.299, "contrast": 0.0, "sharpness": 0.0, "red": 1.0, "green": 0.0, "blue": 0.0}, abs=1e-3
    )
    huge = image_stats(photo.resize((3000, 3000)))  # measured on a bounded copy: the same picture
    assert huge["brightness"] == pytest.approx(base["brightness"], abs=0.01)


def test_standardisation_makes_one_shape_and_with_normalise_hides_lighting() -> None:
    photo = digits(1, start=7)[0][1].resize((48, 24))  # wide, grey
    for fit in ("pad", "crop", "stretch"):
        batch = Standardisation(width=16, height=16, fit=fit).apply([photo, photo.convert("RGB")])
        assert batch.shape == (2, 3, 16, 16) and batch.dtype == np.float32
        assert batch.min() >= 0.0 and batch.max() <= 1.0
        assert np.array_equal(batch[0], batch[1])  # grey or RGB, the same input
    padded = Standardisation(width=16, height=16, mode="L").apply([Image.new("L", (48, 24), 255)])[0, 0]
    assert padded[0].max() == 0 and padded[8].min() == 1.0  # black bands above and below the picture
    darker = Image.eval(photo, lambda v: v // 2)
    plain, normalised = Standardisation(mode="L"), Standardisation(mode="L", normalise=True)
    assert not np.allclose(plain.apply([photo]), plain.apply([darker]), atol=0.05)
    assert np.allclose(normalised.apply([photo]), normalised.apply([darker]), atol=0.05)


def test_a_standardisation_is_drafted_from_the_images_a_project_starts_with(tmp_path: Path) -> None:
    def saved(name: str, image: Image.Image) -> Path:
        path = tmp_path / name
        image.save(path)
        return path

    small_grey = [saved(f"digit{i}.png", image.resize((28, 20))) for i, (_, image) in enumerate(digits(5))]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"%PDF-1.4 not an image")
    drafted = draft_standardisation([*small_grey, broken])
    assert (drafted.width, drafted.height, drafted.mode) == (28, 20, "L")  # their own size: nothing to gain above
    photos = [saved(f"photo{i}.jpg", Image.new("RGB", (640, 480), (90, 140, 60))) for i in range(3)]
    assert (draft_standardisation(photos).width, draft_standardisation(photos).mode) == (64, "RGB")
    mixed = draft_standardisation([*small_grey[:2], saved("red.png", Image.new("RGB", (28, 20), "red"))])
    assert mixed.mode == "RGB"  # one colour image among grey ones: colour is kept
    assert draft_standardisation([broken]) == Standardisation()  # nothing readable: the defaults


def image_folder(
    root: Path, count: int, *, start: int = 0, day: date = date(2026, 3, 1), labelled: bool = True
) -> Path:
    """Digits as PNG files in one subfolder per class (or all in ``root`` unlabelled), each file's
    time the minute of its index, from 08:00 of ``day``."""
    for i, (label, image) in enumerate(digits(count, start=start), start=start):
        path = (root / str(label) if labelled else root) / f"digit{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded(image))
        taken = datetime(day.year, day.month, day.day, 8, i % 60).timestamp()
        os.utime(path, (taken, taken))
    return root


@pytest.fixture
def image_project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "inspect", image_classes=[str(d) for d in range(10)])


def test_an_image_project_keeps_its_image_settings_in_its_file(image_project: Project) -> None:
    loaded = Project.load(image_project.root)
    assert loaded.settings.images is not None and loaded.settings.images.standardise.width == 64
    assert loaded.contract.key == ["image_id", "captured_at"] and loaded.contract.targets == ["label"]
    assert loaded.contract.columns["label"].classes == [str(d) for d in range(10)]
    text = (image_project.root / "driftloop.toml").read_text(encoding="utf-8")
    assert "[images.train]" in text and "\n[train]" not in text  # the table network's settings would mislead
    broken = text.replace("min_width = 8", "min_width = 20000")
    (image_project.root / "driftloop.toml").write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError, match="min_width 20000 is above max_width"):
        Project.load(image_project.root)
    with pytest.raises(ConfigError, match="at least two classes"):
        init_project(image_project.root / "one", image_classes=["ok", "ok"])


def test_images_land_once_each_and_bad_files_in_quarantine_with_their_bytes(
    tmp_path: Path, image_project: Project
) -> None:
    folder = image_folder(tmp_path / "line", 30)
    (folder / "3" / "broken.png").write_bytes(GOOD[:200])
    (folder / "3" / "notes.jpg").write_bytes(b"shift notes, not a photo")
    (folder / "cat").mkdir()
    (folder / "cat" / "cat.png").write_bytes(encoded(Image.new("L", (20, 20), 128)))  # no such class
    (folder / "7" / "copy.png").write_bytes((folder / "0" / "digit0000.png").read_bytes())  # same content again
    progress: list[tuple[int, int]] = []

    summary = ingest_images(image_project, folder, on_file=lambda done, total: progress.append((done, total)))
    assert (summary.rows_in, summary.rows_raw, summary.rows_quarantined, summary.rows_duplicate) == (34, 30, 3, 1)
    assert progress[-1] == (34, 34)
    assert {(r.column, r.rule, r.rows) for r in summary.rule_counts} == {
        ("file", "truncated", 1), ("file", "not_an_image", 1), ("label", "allowed", 1)
    }  # fmt: skip
    lake = image_project.lake
    images = lake.read("images")
    assert images.height == 30 and images.get_column("image_id").n_unique() == 30
    first = images.filter(pl.col("_source").str.ends_with("digit0000.png")).row(0, named=True)
    assert first["label"] == "0" and first["content"] == (folder / "0" / "digit0000.png").read_bytes()
    assert first["captured_at"] == datetime(2026, 3, 1, 8, 0) and first["width"] == 32 and first["brightness"] > 0
    quarantine = lake.read("image_quarantine")
    broken = quarantine.filter(pl.col("_source").str.ends_with("broken.png")).row(0, named=True)
    assert broken["_rules"] == ["file:truncated"] and broken["content"] == GOOD[:200]  # never lost
    assert "cat" in quarantine.filter(pl.col("_rules").list.contains("label:allowed")).row(0, named=True)["detail"]

    again = ingest_images(image_project, folder)
    assert again.status == "already ingested" and again.rows_duplicate == 1
    assert lake.read("images").height == 30 and lake.read("image_quarantine").height == 3

    image_folder(folder, 2, start=30)  # two new photos beside the old ones, one relabelled by a file
    newest_file = next(folder.rglob("digit0031.png")).relative_to(folder).as_posix()
    relabelled = "9" if not newest_file.startswith("9/") else "8"
    (tmp_path / "labels.csv").write_text(
        f"file,label,captured_at\n{newest_file},{relabelled},2026-03-02T09:15:00+01:00\n", encoding="utf-8"
    )
    more = ingest_images(image_project, folder, labels=tmp_path / "labels.csv")
    assert (more.rows_raw, more.rows_duplicate, more.rows_quarantined) == (2, 34, 0)  # bad files kept once
    newest = lake.read("images").filter(pl.col("_source").str.ends_with("digit0031.png")).row(0, named=True)
    assert newest["label"] == relabelled  # the labels file wins over the folder
    assert newest["captured_at"] == datetime(2026, 3, 2, 8, 15)  # its own time, in UTC
    assert lake.read("images").height == 32 and lake.read("image_quarantine").height == 3

    # Told of a new class, the lake takes the image it refused for its label, and only that one.
    widened = image_project.contract.model_copy(deep=True)
    widened.columns["label"].classes = [*widened.columns["label"].classes, "cat"]  # type: ignore[misc]
    relaxed = Project(image_project.root, image_project.settings.model_copy(update={"contract": widened}))
    (folder / "cat" / "tabby.png").write_bytes(encoded(Image.new("L", (24, 24), 90)))
    last = ingest_images(relaxed, folder, labels=tmp_path / "labels.csv")
    assert (last.rows_raw, last.rows_quarantined) == (2, 0)  # the refused cat and the new tabby
    assert set(lake.read("images").filter(pl.col("label") == "cat").get_column("_source").map_elements(
        lambda source: Path(source).name, return_dtype=pl.String)) == {"cat.png", "tabby.png"}  # fmt: skip


def test_image_ingest_refuses_what_it_cannot_take_and_writes_nothing(tmp_path: Path, image_project: Project) -> None:
    folder = image_folder(tmp_path / "line", 3)
    (tmp_path / "labels.csv").write_text("file,label\nelsewhere.png,1\n", encoding="utf-8")
    with pytest.raises(SourceError, match="names 1 file"):
        ingest_images(image_project, folder, labels=tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("name,class\nx.png,1\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"needs the columns \['file', 'label'\]"):
        ingest_images(image_project, folder, labels=tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("file,label,captured_at\n0/digit0000.png,0,yesterday\n", encoding="utf-8")
    with pytest.raises(SourceError, match="line 2: captured_at 'yesterday' is not an ISO time"):
        ingest_images(image_project, folder, labels=tmp_path / "labels.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no image file"):
        ingest_images(image_project, tmp_path / "empty")
    with pytest.raises(SourceError, match="no such file"):
        ingest_images(image_project, tmp_path / "missing")
    tables = init_project(tmp_path / "tables")
    with pytest.raises(ConfigError, match="not an image project"):
        ingest_images(tables, folder)
    assert not image_project.lake.exists("images") and not image_project.lake.exists("batches")


def test_an_image_project_from_the_command_line(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from driftloop.cli import app

    folder = image_folder(tmp_path / "line", 20)
    (folder / "5" / "half.png").write_bytes(GOOD[:100])
    runner = CliRunner()
    made = runner.invoke(app, ["init", str(tmp_path / "p"), "--images", str(folder)])
    assert made.exit_code == 0, made.stderr
    assert "telling apart 10 classes" in made.stdout and "32x32 grey" in made.stdout
    drafted = Project.load(tmp_path / "p").settings.images
    assert drafted is not None and (drafted.standardise.width, drafted.standardise.mode) == (32, "L")
    ingested = runner.invoke(app, ["ingest", str(folder), "--project", str(tmp_path / "p"), "--json"])
    assert ingested.exit_code == 0, ingested.stderr
    [summary] = json.loads(ingested.stdout)
    assert (summary["rows_raw"], summary["rows_quarantined"], summary["status"]) == (20, 1, "ingested")
    again = runner.invoke(app, ["ingest", str(folder), "--project", str(tmp_path / "p")])
    assert again.exit_code == 0 and "already ingested" in again.stdout

    for command in (["features"], ["evaluate", "1"]):
        table_only = runner.invoke(app, [*command, "--project", str(tmp_path / "p")])
        assert table_only.exit_code != 0 and "works on table projects" in " ".join(table_only.stderr.split())

    wrong = runner.invoke(app, ["init", str(tmp_path / "q"), "--labels", str(tmp_path / "labels.csv")])
    assert wrong.exit_code != 0 and "give the folder too" in " ".join(wrong.stderr.split())
    one_class = image_folder(tmp_path / "zeros", 1)
    refused = runner.invoke(app, ["init", str(tmp_path / "r"), "--images", str(one_class)])
    assert refused.exit_code != 0 and "at least two classes" in " ".join(refused.stderr.split())
    init_project(tmp_path / "tables")
    mixed = runner.invoke(
        app, ["ingest", str(folder), "--image-labels", "x.csv", "--project", str(tmp_path / "tables")]
    )
    assert mixed.exit_code != 0 and "not an image project" in " ".join(mixed.stderr.split())
