"""Bulk inserts without the ORM's per-object cost, for set-wise writes of tens of thousands of rows.

`QuerySet.bulk_create` prepares every value of every object through its field (a few microseconds each), which
dominates a population run. `insert_rows` sends plain, already-adapted tuples with the driver's `executemany`
and `ON CONFLICT DO NOTHING` (SQLite and PostgreSQL), so a row that would break a unique constraint, such as
the one active recommendation per patient and definition, is skipped rather than failing the batch. Like
bulk_create it sends no signals: callers bump the cache versions themselves (clinrec.cache.bump_versions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]], *, using: str = DEFAULT_DB_ALIAS
) -> None:
    """Insert `rows` (tuples in the order of `fields`, values adapted with `db_value`) into `model`'s table."""
    connection = connections[using]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(rows))


def db_value(model: type[models.Model], field: str, value: Any, *, using: str = DEFAULT_DB_ALIAS) -> Any:
    """`value` as the database stores it in `model.field` (dates as text on SQLite, JSON adapted, ...)."""
    return model._meta.get_field(field).get_db_prep_save(value, connection=connections[using])
