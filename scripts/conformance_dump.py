#!/usr/bin/env python3
"""Normalised dump of every relation in a DuckDB file or a PostgreSQL database.

Used to make the dbt-core goldens of tests/conformance/ (scripts/conformance_goldens.py) and
to dump what weir built for the comparison (scripts/conformance_check.py), so both sides go
through exactly the same code.

    python scripts/conformance_dump.py --duckdb FILE
    python scripts/conformance_dump.py --postgres URL [--schemas a,b,...]

prints a JSON list of relations, sorted by (schema, name):

    {"schema": ..., "name": ..., "kind": "table" | "view",
     "columns": [[name, type], ...],          # in column order, the database's type names
     "rows": [[v, ...], ...]}                  # every row, sorted (see below)

Schemas left out: information_schema, pg_catalog, pg_toast, pg_temp_*/pg_toast_temp_*
(PostgreSQL) and DuckDB's internal ones; in DuckDB only the file's own catalog is read.
Types: DuckDB's `duckdb_columns().data_type` (e.g. INTEGER, DECIMAL(10,2), VARCHAR,
TIMESTAMP WITH TIME ZONE); PostgreSQL's `format_type(atttypid, atttypmod)` (e.g. integer,
numeric(10,2), character varying(20), text).

Values, rendered as JSON:
  NULL -> null; booleans -> true/false; integers -> numbers; DECIMAL/NUMERIC -> the exact
  decimal text as a string ("12.50"); floats -> numbers rounded to 12 significant digits
  (NaN/Infinity as strings); dates, times -> ISO text; timestamps -> ISO text with a space
  ("2024-01-03 10:00:00"), timestamps with a time zone converted to UTC and suffixed "+00:00";
  intervals -> "<days>d <seconds>s <microseconds>us"; UUIDs, bytes (hex) -> strings;
  lists/structs/maps -> JSON arrays/objects of rendered values.

Masking of wall-clock values (snapshots only). In a relation that has a `dbt_scd_id` column
(a snapshot table), a value of `dbt_updated_at`, `dbt_valid_from` or `dbt_valid_to` that is a
timestamp on or after WALLCLOCK_AFTER (2025-01-01; the conformance data never has such
dates, so these can only come from current_timestamp when dbt snapshotted: the check
strategy's times, and the times of hard-delete invalidations and deletion records) is
replaced by a placeholder "<now:N>", where N numbers the distinct such values of that
relation in time order from 1 (so rows of the same snapshot run share a placeholder, and a
later run has a larger N). `dbt_scd_id` of a row whose `dbt_updated_at` was masked hashes
that time and is replaced by "<scd_id>". Nothing else is masked.

Rows are sorted after masking, by every column in order, with nulls last, numbers before
strings, numbers numerically, everything else by its JSON text.
"""
from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import math
import sys
import uuid

WALLCLOCK_AFTER = dt.datetime(2025, 1, 1)
SNAPSHOT_TIME_COLUMNS = ("dbt_updated_at", "dbt_valid_from", "dbt_valid_to")
SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "pg_toast"}


def render(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        r = float(f"{v:.12g}")
        return int(r) if r.is_integer() and abs(r) < 2**53 else r
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
            return v.isoformat(sep=" ") + "+00:00"
        return v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return f"{v.days}d {v.seconds}s {v.microseconds}us"
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return [render(x) for x in v]
    if isinstance(v, dict):
        return {str(k): render(x) for k, x in v.items()}
    return str(v)


def _naive_utc(v):
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            return v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return v
    return None


def mask_snapshot(columns, raw_rows):
    """Apply the wall-clock masking described in the module docstring to raw (unrendered)
    rows; returns rows with masked cells already rendered as placeholder strings."""
    names = [c for c, _ in columns]
    if "dbt_scd_id" not in names:
        return raw_rows
    idx = [names.index(c) for c in SNAPSHOT_TIME_COLUMNS if c in names]
    times = set()
    for row in raw_rows:
        for i in idx:
            t = _naive_utc(row[i])
            if t is not None and t >= WALLCLOCK_AFTER:
                times.add(t)
    order = {t: n for n, t in enumerate(sorted(times), 1)}
    scd = names.index("dbt_scd_id")
    upd = names.index("dbt_updated_at") if "dbt_updated_at" in names else None
    out = []
    for row in raw_rows:
        row = list(row)
        masked_updated = False
        for i in idx:
            t = _naive_utc(row[i])
            if t is not None and t in order:
                row[i] = _Placeholder(f"<now:{order[t]}>")
                if i == upd:
                    masked_updated = True
        if masked_updated and row[scd] is not None:
            row[scd] = _Placeholder("<scd_id>")
        out.append(row)
    return out


class _Placeholder(str):
    pass


def _sort_key(row):
    key = []
    for v in row:
        if v is None:
            key.append((2, 0, ""))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            key.append((0, v, ""))
        else:
            key.append((1, 0, json.dumps(v, sort_keys=True)))
    return key


def finish(schema, name, kind, columns, raw_rows):
    raw_rows = mask_snapshot(columns, raw_rows)
    rows = [[str(v) if isinstance(v, _Placeholder) else render(v) for v in r] for r in raw_rows]
    rows.sort(key=_sort_key)
    return {"schema": schema, "name": name, "kind": kind,
            "columns": [[c, t] for c, t in columns], "rows": rows}


def qident(s):
    return '"' + s.replace('"', '""') + '"'


def dump_duckdb(path):
    import duckdb

    con = duckdb.connect(path, read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        db = con.execute("select current_database()").fetchone()[0]
        rels = con.execute(
            """
            select schema_name, table_name, 'table' from duckdb_tables()
              where database_name = ? and not internal and not temporary
            union all
            select schema_name, view_name, 'view' from duckdb_views()
              where database_name = ? and not internal and not temporary
            order by 1, 2
            """, [db, db]).fetchall()
        out = []
        for schema, name, kind in rels:
            if schema in SYSTEM_SCHEMAS:
                continue
            cols = con.execute(
                """select column_name, data_type from duckdb_columns()
                   where database_name = ? and schema_name = ? and table_name = ?
                   order by column_index""", [db, schema, name]).fetchall()
            rows = con.execute(
                f"select * from {qident(db)}.{qident(schema)}.{qident(name)}").fetchall()
            out.append(finish(schema, name, kind, cols, rows))
        return out
    finally:
        con.close()


def dump_postgres(url, schemas=None):
    try:
        import psycopg2 as pg
    except ImportError:  # psycopg 3
        import psycopg as pg

    con = pg.connect(url)
    try:
        cur = con.cursor()
        cur.execute("set time zone 'UTC'")
        cur.execute(
            """
            select n.nspname, c.relname, case when c.relkind in ('v', 'm') then 'view' else 'table' end
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.relkind in ('r', 'p', 'v', 'm', 'f')
              and n.nspname not in ('information_schema', 'pg_catalog', 'pg_toast')
              and n.nspname not like 'pg_temp_%' and n.nspname not like 'pg_toast_temp_%'
            order by 1, 2
            """)
        rels = cur.fetchall()
        out = []
        for schema, name, kind in rels:
            if schemas and schema not in schemas:
                continue
            cur.execute(
                """select a.attname, format_type(a.atttypid, a.atttypmod)
                   from pg_attribute a
                   join pg_class c on c.oid = a.attrelid
                   join pg_namespace n on n.oid = c.relnamespace
                   where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
                   order by a.attnum""", (schema, name))
            cols = cur.fetchall()
            cur.execute(f"select * from {qident(schema)}.{qident(name)}")
            rows = cur.fetchall()
            out.append(finish(schema, name, kind, cols, rows))
        con.rollback()
        return out
    finally:
        con.close()


def _scalar(v):
    return not isinstance(v, (list, dict))


def _inline(v):
    """Scalars and lists of scalars (a table row, however long) go on one line; so do short
    flat dicts and short lists of one-line values (a relation's column list)."""
    if _scalar(v):
        return True
    if isinstance(v, dict):
        return all(_scalar(x) for x in v.values()) and len(json.dumps(v)) <= 100
    if all(_scalar(x) for x in v):
        return True
    return all(_inline(x) for x in v) and len(json.dumps(v)) <= 100


def pretty(v, indent=0):
    """Deterministic JSON text with one table row per line, so that a unified diff of two
    dumps is readable; `json.loads(pretty(v)) == v`."""
    pad = "  " * (indent + 1)
    if isinstance(v, list) and v and not _inline(v):
        items = [pretty(x, indent + 1) for x in v]
        return "[\n" + ",\n".join(pad + i for i in items) + "\n" + "  " * indent + "]"
    if isinstance(v, dict) and v and not _inline(v):
        items = [json.dumps(str(k)) + ": " + pretty(x, indent + 1) for k, x in v.items()]
        return "{\n" + ",\n".join(pad + i for i in items) + "\n" + "  " * indent + "}"
    return json.dumps(v)


def to_json(relations):
    return pretty(relations)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--duckdb", metavar="FILE")
    g.add_argument("--postgres", metavar="URL")
    ap.add_argument("--schemas", help="comma-separated schemas to dump (PostgreSQL; default all)")
    a = ap.parse_args(argv)
    if a.duckdb:
        rels = dump_duckdb(a.duckdb)
    else:
        rels = dump_postgres(a.postgres, set(a.schemas.split(",")) if a.schemas else None)
    sys.stdout.write(to_json(rels) + "\n")


if __name__ == "__main__":
    main()
