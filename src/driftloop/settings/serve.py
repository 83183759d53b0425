"""The ``[serve]`` section of driftloop.toml: how the prediction server listens, batches and logs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServeSettings(BaseModel):
    """How ``driftloop serve`` runs."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 to accept other machines).")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="Server processes, each with its own model and log buffer.")
    max_batch_rows: int = Field(256, ge=1, description="Rows gathered from concurrent requests into one forward pass.")
    max_wait_ms: float = Field(
        5.0, ge=0, description="How long a batch waits for more requests at most, when the first one had company."
    )
    max_gap_ms: float = Field(
        0.5, ge=0, description="A batch waiting for more requests closes once none arrived for this long."
    )
    max_body_bytes: int = Field(4_000_000, ge=1024, description="A larger request body is refused with 413.")
    max_rows: int = Field(10_000, ge=1, description="Rows one request may hold; more is refused with 413.")
    poll_seconds: float = Field(30.0, gt=0, description="How often the server looks whether the champion changed.")
    admin_token_env: str = Field(
        "DRIFTLOOP_ADMIN_TOKEN", description="Environment variable holding the bearer token of POST /admin/reload."
    )
    log_buffer_rows: int = Field(100_000, ge=1, description="Logged predictions held in memory before spilling.")
    flush_seconds: float = Field(2.0, gt=0, description="How often logged predictions are written to the lake.")
    shadow: bool = Field(False, description="The challenger also scores live traffic; logged, never returned.")
    keep_images: bool = Field(
        False,
        description="An image server also stores each image it answers in the images table (once per content, "
        "unlabelled, captured when it was scored), so it can be labelled later by its image_id and trained on. "
        "Off: the prediction log keeps each image's hash and statistics, never the image.",
    )
