"""Which arm a request goes to: each candidate's share of traffic, sticky by entity.

A request's key (its first row's entity id, or its request id when the contract names no
entity) is hashed to one of 10,000 slots; the first candidate takes the slots below its share,
the second the next as many, and so on, the champion the rest. The hash is CRC-32, the same in
every process (Python's own ``hash`` of a string is not), so every server and worker sends an
entity the same way; and a canary's growing share keeps the entities it had.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

SLOTS = 10_000


def arm_of(key: str, percent: float, candidates: int = 1) -> int | None:
    """The candidate (by position) the request keyed ``key`` goes to when each of ``candidates``
    takes ``percent`` of traffic; None: the champion's."""
    width = round(percent * SLOTS / 100)
    slot = zlib.crc32(key.encode()) % SLOTS
    return slot // width if width and slot < width * candidates else None


def sticky_key(rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]], ids: list[str], request_id: str) -> str:
    """The key a request is routed by: its first row's values of the id columns ``ids`` (records,
    or columns), else its request id."""
    if ids:
        first = rows[0] if isinstance(rows, Sequence) else {c: v[0] for c, v in rows.items() if len(v)}
        values = [first.get(c) for c in ids] if isinstance(first, Mapping) else []
        if values and all(v is not None for v in values):
            return "|".join(str(v) for v in values)
    return request_id


__all__ = ["SLOTS", "arm_of", "sticky_key"]
