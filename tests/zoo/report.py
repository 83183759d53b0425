"""What each zoo dataset did: its size, seconds per step, and test metrics against the baseline."""

from __future__ import annotations

from dataclasses import dataclass

STEPS = ("init", "ingest", "features", "train", "promote", "predict", "monitor", "serve")


@dataclass
class ZooRow:
    name: str
    rows: int
    columns: int
    seconds: dict[str, float]
    metric: str
    network: float
    baseline: float


ROWS: list[ZooRow] = []


def table() -> str:
    """A Markdown table of :data:`ROWS`."""
    head = ["dataset", "rows", "columns", *(f"{s} s" for s in STEPS), "test metric", "network", "baseline"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ROWS:
        cells = [row.name, f"{row.rows:,}", str(row.columns), *(f"{row.seconds.get(s, 0):.1f}" for s in STEPS)]
        cells += [row.metric, f"{row.network:.4g}", f"{row.baseline:.4g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
