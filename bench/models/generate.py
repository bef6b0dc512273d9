#!/usr/bin/env python3
"""Synthetic dbt projects for the models-engine benchmarks (stdlib only, deterministic).

big N:  N models, all views, in chains of depth 50 (model k of a chain is at depth k). Each
        model refs the one before it in its chain and 0 to 2 more models of a lower depth (so
        1 to 3 refs; the extra refs point at the first three models of any chain up to its own,
        which keeps DuckDB's view expansion linear in the depth). A chain starts from a seed
        or a source. Jinja: ref, source, var, a project macro, and a config() block in every
        fifth model; dbt_project.yml sets +materialized and +tags per folder. One schema.yml
        per chain folder documents every model and puts unique + not_null on the last one.
small:  3 seeds, 5 models (views), 20 data tests (unique, not_null, accepted_values,
        relationships).

Both get a DuckDB profiles.yml (profile `bench`, file bench.duckdb beside dbt_project.yml,
4 threads). The same arguments give byte-identical files.

Usage: bench/models/generate.py big N DIR | small DIR
"""
import os
import random
import sys

CHAIN = 50
SEEDS = ("customers", "orders", "payments")

PROFILES = """bench:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: bench.duckdb
      threads: 4
"""


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def seed_csv(name, rows=20):
    lines = ["id,amount,status,name"]
    for i in range(1, rows + 1):
        lines.append("%d,%d,%s,%s_%d" % (i, (i * 37) % 101, ("placed", "shipped", "returned")[i % 3], name, i))
    return "\n".join(lines) + "\n"


def model_name(i):
    return "m_%05d" % i


def big(n, root):
    """Writes the N-model project into root."""
    rng = random.Random(8)
    chains = (n + CHAIN - 1) // CHAIN
    write(root, "dbt_project.yml", """name: bench_big
version: "1.0.0"
config-version: 2
profile: bench
model-paths: ["models"]
seed-paths: ["seeds"]
macro-paths: ["macros"]
vars:
  multiplier: 3
  status_filter: returned
models:
  bench_big:
    +materialized: view
    chain_000:
      +tags: ["first_chain"]
""")
    write(root, "profiles.yml", PROFILES)
    for s in SEEDS:
        write(root, "seeds/%s.csv" % s, seed_csv(s))
    write(root, "macros/bench.sql", """{% macro label(column, prefix='m') -%}
    '{{ prefix }}_' || cast({{ column }} as varchar)
{%- endmacro %}

{% macro scaled(column) -%}
    ({{ column }} * {{ var('multiplier') }}) % 1000
{%- endmacro %}
""")
    write(root, "models/sources.yml", """version: 2

sources:
  - name: raw
    schema: main
    tables:
      - name: orders
        identifier: orders
        description: the orders seed, read as a source
      - name: payments
        identifier: payments
""")
    for c in range(chains):
        folder = "models/chain_%03d" % c
        props = ["version: 2", "", "models:"]
        for k in range(CHAIN):
            i = c * CHAIN + k
            if i >= n:
                break
            name = model_name(i)
            write(root, "%s/%s.sql" % (folder, name), model_sql(rng, i, c, k))
            props.append("  - name: %s" % name)
            props.append("    description: model %d of chain %d" % (k, c))
            if k == CHAIN - 1 or i == n - 1:
                props.append("    columns:")
                props.append("      - name: id")
                props.append("        data_tests: [unique, not_null]")
        write(root, "%s/schema.yml" % folder, "\n".join(props) + "\n")


def model_sql(rng, i, c, k):
    head = ""
    if i % 5 == 0:
        head = "{{ config(materialized='view', tags=['fifth']) }}\n\n"
    if k == 0:
        if c % 3 == 0:
            upstream = "{{ ref('%s') }}" % SEEDS[c % len(SEEDS)]
        else:
            upstream = "{{ source('raw', '%s') }}" % ("orders", "payments")[c % 2]
        return head + ("select id, {{ scaled('amount') }} as amount, {{ label('id') }} as label\n"
                       "from %s\nwhere status != '{{ var(\"status_filter\") }}'\n" % upstream)
    refs = [i - 1]
    for _ in range(rng.randint(0, 2)):
        # A model of depth < 3 in this chain or an earlier one: the chain stays 50 deep.
        other = rng.randint(0, c) * CHAIN + rng.randint(0, min(k - 1, 2))
        if other not in refs:
            refs.append(other)
    lines = ["select t0.id,", "    (t0.amount%s) %% 1000 as amount," %
             "".join(" + t%d.amount" % j for j in range(1, len(refs))),
             "    {{ label('t0.id', prefix='%s') }} as label" % model_name(i),
             "from {{ ref('%s') }} as t0" % model_name(refs[0])]
    for j, r in enumerate(refs[1:], start=1):
        lines.append("left join {{ ref('%s') }} as t%d on t%d.id = t0.id" % (model_name(r), j, j))
    return head + "\n".join(lines) + "\n"


def small(root):
    """Writes the 3 seeds / 5 models / 20 tests project into root."""
    write(root, "dbt_project.yml", """name: bench_small
version: "1.0.0"
config-version: 2
profile: bench
models:
  bench_small:
    +materialized: view
""")
    write(root, "profiles.yml", PROFILES)
    for s in SEEDS:
        write(root, "seeds/%s.csv" % s, seed_csv(s))
    models = {
        "stg_customers": "select id as customer_id, name from {{ ref('customers') }}",
        "stg_orders": "select id as order_id, (id % 20) + 1 as customer_id, amount, status from {{ ref('orders') }}",
        "stg_payments": "select id as payment_id, id as order_id, amount from {{ ref('payments') }}",
        "fct_orders": "{{ config(materialized='table') }}\nselect o.order_id, o.customer_id, o.status, p.amount\n"
                  "from {{ ref('stg_orders') }} o join {{ ref('stg_payments') }} p using (order_id)",
        "customers_summary": "select c.customer_id, c.name, count(o.order_id) as orders, coalesce(sum(o.amount), 0) as total\n"
                             "from {{ ref('stg_customers') }} c left join {{ ref('fct_orders') }} o using (customer_id)\n"
                             "group by 1, 2",
    }
    for name, sql in models.items():
        write(root, "models/%s.sql" % name, sql + "\n")
    statuses = "accepted_values: {arguments: {values: [placed, shipped, returned]}}"
    write(root, "models/schema.yml", """version: 2

models:
  - name: stg_customers
    columns:
      - name: customer_id
        data_tests: [unique, not_null]
      - name: name
        data_tests: [not_null]
  - name: stg_orders
    columns:
      - name: order_id
        data_tests: [unique, not_null]
      - name: customer_id
        data_tests:
          - not_null
          - relationships: {arguments: {to: ref('stg_customers'), field: customer_id}}
      - name: status
        data_tests:
          - %s
  - name: stg_payments
    columns:
      - name: payment_id
        data_tests: [unique, not_null]
      - name: order_id
        data_tests:
          - relationships: {arguments: {to: ref('stg_orders'), field: order_id}}
  - name: fct_orders
    columns:
      - name: order_id
        data_tests: [unique, not_null]
      - name: status
        data_tests:
          - %s
  - name: customers_summary
    columns:
      - name: customer_id
        data_tests: [unique, not_null]
      - name: total
        data_tests: [not_null]

seeds:
  - name: customers
    columns:
      - name: id
        data_tests: [unique, not_null]
  - name: orders
    columns:
      - name: id
        data_tests: [unique]
""" % (statuses, statuses))


def main(argv):
    if len(argv) == 3 and argv[0] == "big":
        big(int(argv[1]), argv[2])
    elif len(argv) == 2 and argv[0] == "small":
        small(argv[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
