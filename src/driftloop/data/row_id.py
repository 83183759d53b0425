"""Ids made from the rows themselves, for event logs where no column tells rows apart.

Bookings, emails or sensor events often share their event time and carry no id. Such a row is
named by a hash of its values (its targets aside, so a scored request and the same row arriving
later with its label get the same name) and its place among identical rows of its batch: two
identical bookings in one file are two rows, the same file ingested twice is the same rows, so
the second is refused as duplicates. The hash is BLAKE2b of the typed values as text, stable
across processes and library versions.
"""

from __future__ import annotations

from hashlib import blake2b

import polars as pl

from driftloop.data.contract import Contract

# Between values, and for a missing one: characters no value of a CSV or a request holds.
SEPARATOR, MISSING = "\x1f", "\x00"
# Bytes of the hash: 80 bits, far from a collision among billions of distinct rows.
DIGEST_BYTES = 10


def with_row_ids(typed: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """``typed`` (rows typed to ``contract``) with its missing ids made from the rows, where
    the contract names such an id; an id the rows already carry (stored rows read back) stays."""
    name = contract.row_id_column
    if name is None or typed.is_empty():
        return typed
    digest = row_digests(typed, contract)
    place = pl.int_range(pl.len()).over(digest).cast(pl.String)
    made = typed.select(pl.concat_str([pl.lit(digest), place], separator="-")).to_series()
    current = typed.get_column(name) if name in typed.columns else pl.repeat(None, typed.height, dtype=pl.String)
    return typed.with_columns(pl.coalesce(current.cast(pl.String), made).alias(name))


def row_digests(typed: pl.DataFrame, contract: Contract) -> pl.Series:
    """The hash of each row's values (its id and targets aside): a row's own part of its made id."""
    name = contract.row_id_column
    values = [c for c in contract.stored_columns if c != name and c not in contract.targets and c in typed.columns]
    text = typed.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null(MISSING) for c in values], separator=SEPARATOR)
    ).to_series()
    return pl.Series([blake2b(row.encode(), digest_size=DIGEST_BYTES).hexdigest() for row in text], dtype=pl.String)
