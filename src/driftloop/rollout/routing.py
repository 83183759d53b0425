"""Which arm a request goes to: the candidate's share of traffic, sticky by entity.

A request's key (its first row's entity id, or its request id when the contract names no
entity) is hashed to one of 10,000 slots; the candidate takes the slots below its share. The
hash is CRC-32, the same in every process (Python's own ``hash`` of a string is not), so every
server and worker sends an entity the same way; and a growing share keeps the entities it had.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

SLOTS = 10_000


def to_candidate(key: str, percent: float) -> bool:
    """Whether the request keyed ``key`` goes to the candidate when it takes ``percent`` of traffic."""
    return zlib.crc32(key.encode()) % SLOTS < round(percent * SLOTS / 100)


def sticky_key(rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]], ids: list[str], request_id: str) -> str:
    """The key a request is routed by: its first row's values of the id columns ``ids`` (records,
    or columns), else its request id."""
    if ids:
        first = rows[0] if isinstance(rows, Sequence) else {c: v[0] for c, v in rows.items() if len(v)}
        values = [first.get(c) for c in ids] if isinstance(first, Mapping) else []
        if values and all(v is not None for v in values):
            return "|".join(str(v) for v in values)
    return request_id


__all__ = ["SLOTS", "sticky_key", "to_candidate"]
