"""Bulk inserts without the ORM's per-object cost, for set-wise writes of tens of thousands of rows.

`QuerySet.bulk_create` prepares every value of every object through its field (a few microseconds each), which
dominates a population run. `insert_rows` sends plain, already-adapted tuples with `ON CONFLICT DO NOTHING`
(SQLite and PostgreSQL), so a row that would break a unique constraint, such as the one active recommendation
per patient and definition, is skipped rather than failing the batch; with `returning` it answers which rows it
did insert (`INSERT ... RETURNING` reports exactly those), so a caller never has to guess them by reading back.

How the rows travel depends on the database, because the per-statement cost does:
- PostgreSQL: `COPY` into a scratch table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`: COPY
  formats the rows in the driver's C code, where rows sent as statement parameters (one statement per row,
  even pipelined, or arrays to unnest) are quoted value by value in Python, several times slower;
- SQLite: the driver's `executemany` (a prepared statement run per row, in-process), or multi-row `VALUES`
  batches within the variable limit when rows must be returned (`executemany` cannot return rows).

Like bulk_create it sends no signals: callers bump the cache versions themselves (clinrec.cache.bump_versions)
and write any history rows themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models.expressions import RawSQL


def insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    returning: Sequence[str] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> list[tuple]:
    """Insert `rows` (tuples in the order of `fields`, values adapted with `db_value`, JSON possibly as text from
    `json_text`) into `model`'s table.

    Returns, for each row actually inserted (not skipped for a conflict), the values of `returning` (raw
    database values, in no particular order); an empty list without `returning`.
    """
    rows = list(rows)
    if not rows:
        return []
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    table = quote(meta.db_table)
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    returned = f" RETURNING {', '.join(quote(meta.get_field(name).column) for name in returning)}" if returning else ""
    if connection.vendor == "postgresql":
        return _copy_then_insert(connection, meta.db_table, columns, rows, returned, using=using)
    with connection.cursor() as cursor:
        row_placeholder = f"({', '.join(['%s'] * len(fields))})"
        if not returning:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES {row_placeholder} ON CONFLICT DO NOTHING", rows)
            return []
        connection.ensure_connection()
        batch = max(1, _sqlite_variable_limit(connection) // len(fields))
        inserted: list[tuple] = []
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_placeholder] * len(part))} "
                f"ON CONFLICT DO NOTHING{returned}",
                [value for row in part for value in row],
            )
            inserted.extend(cursor.fetchall())
        return inserted


def _copy_then_insert(connection, table: str, columns: str, rows: list, returned: str, *, using: str) -> list[tuple]:
    """PostgreSQL: COPY the rows into a scratch table, then move them with one `INSERT ... SELECT` (which can skip
    conflicts and return, where COPY can do neither). COPY formats rows in the driver's C code; a statement with
    rows as parameters would quote each value in Python."""
    quote = connection.ops.quote_name
    staging = quote(f"bulk_{table}")
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {staging} AS SELECT {columns} FROM {quote(table)} WITH NO DATA")
        with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING{returned}"
        )
        inserted = cursor.fetchall() if returned else []
        cursor.execute(f"DROP TABLE {staging}")
    return inserted


def _sqlite_variable_limit(connection) -> int:
    import sqlite3

    getlimit = getattr(connection.connection, "getlimit", None)  # Python 3.11+; else Django's cautious figure
    return getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else connection.features.max_query_params


def stored_ids(ids: Sequence[Any]) -> RawSQL | list:
    """Ids read from the database, for an `__in` lookup (`pk__in=stored_ids(ids)`): the SQL of a plain list,
    `IN (%s, %s, ...)`, so the planner sees the same thing, without the field preparing each value again (a
    few microseconds each, for every query of every chunk of thousands of ids). Only for ids as stored."""
    return RawSQL(", ".join(["%s"] * len(ids)), list(ids)) if ids else []


def json_text(model: type[models.Model], field: str) -> Callable[[Any], str]:
    """A function writing values of the JSON field `model.field` as the JSON text `insert_rows` can send on
    either database: the field's encoder without its per-value layers, and text that can be written twice
    (a link and its history row) for one encoding."""
    encoder = model._meta.get_field(field).encoder
    return partial(json.dumps, cls=encoder)


def db_value(model: type[models.Model], field: str, value: Any, *, using: str = DEFAULT_DB_ALIAS) -> Any:
    """`value` as the database stores it in `model.field` (dates as text on SQLite, JSON adapted, ...)."""
    return model._meta.get_field(field).get_db_prep_save(value, connection=connections[using])
