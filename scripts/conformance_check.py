#!/usr/bin/env python3
"""Compare what weir builds with the dbt-core goldens of tests/conformance/.

For each project (all by default) and adapter (DuckDB by default; `--adapter postgres` or
`all` also runs the projects that have golden/postgres.json), copy the project to a temporary
directory exactly as scripts/conformance_goldens.py does (dbt_utils extracted into
dbt_packages/ from the dbt_utils 1.4.1 package tarball in $WEIR_FIXTURES), then for every
step of the golden run

    $WEIR_BIN models <the step's dbt arguments> --project-dir <copy> --profiles-dir <copy>

with the step's environment, and check:
  - the exit code is 0 when dbt's was 0, and non-zero when dbt's was not;
  - the counts of weir's summary line `Done. PASS=.. WARN=.. ERROR=.. SKIP=.. [NO-OP=..]
    TOTAL=..` equal dbt's (NO-OP is compared when weir prints it; otherwise dbt's must be 0);
  - every node's status in weir's target/run_results.json equals dbt's (skip with
    --no-node-statuses);
  - the normalised dump of the warehouse (scripts/conformance_dump.py) equals the golden's;
    a unified diff is printed on mismatch.

    WEIR_BIN=target/release/weir python3 scripts/conformance_check.py [project ...]
        [--adapter duckdb|postgres|all] [--no-node-statuses] [--keep]

Needs Python `duckdb` 1.5.6 (and `psycopg2` or `psycopg` for PostgreSQL), not dbt. The
DuckDB file is named <project>.duckdb, as for the goldens (its catalog name shows in data,
e.g. dbt_utils.union_relations' _dbt_source_relation). PostgreSQL runs use a fresh database
on $WEIR_CONFORMANCE_PG_URL (default postgres://postgres:postgres@127.0.0.1:5432/postgres).
Exit status: 0 all equal, 1 a mismatch, 2 weir's `models` commands are not available.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conformance_dump  # noqa: E402
from conformance_goldens import (CONF, PG_URL, STEPS, copy_project,  # noqa: E402
                                 parse_done_line, pg_admin)


def weir_available(weir):
    try:
        p = subprocess.run([weir, "models", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def check_project(weir, name, adapter, golden, workdir, node_statuses):
    failures = []
    proj = Path(workdir) / name
    copy_project(name, proj)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "WEIR_CONFORMANCE_"))}
    env.update({"TZ": "UTC", "WEIR_CONFORMANCE_TARGET": adapter, "NO_COLOR": "1"})
    dbname = None
    if adapter == "duckdb":
        db_file = Path(workdir) / f"{name}.duckdb"
        env["WEIR_CONFORMANCE_DUCKDB"] = str(db_file)
    else:
        u = urllib.parse.urlparse(PG_URL)
        dbname = f"weir_conformance_check_{name}_{os.getpid()}"
        pg_admin(f'drop database if exists "{dbname}"')
        pg_admin(f'create database "{dbname}"')
        env.update({"WEIR_CONFORMANCE_PG_HOST": u.hostname or "127.0.0.1",
                    "WEIR_CONFORMANCE_PG_PORT": str(u.port or 5432),
                    "WEIR_CONFORMANCE_PG_USER": u.username or "postgres",
                    "WEIR_CONFORMANCE_PG_PASSWORD": urllib.parse.unquote(u.password or ""),
                    "WEIR_CONFORMANCE_PG_DATABASE": dbname})
        db_url = u._replace(path="/" + dbname).geturl()
    try:
        for i, step in enumerate(golden["steps"], 1):
            args = step["command"]
            label = f"{name} ({adapter}) step {i}: weir models {' '.join(args)}"
            rr = proj / "target" / "run_results.json"
            if rr.exists():
                rr.unlink()
            cmd = [weir, "models", *args, "--project-dir", str(proj), "--profiles-dir", str(proj)]
            p = subprocess.run(cmd, env=dict(env, **step["env"]), capture_output=True, text=True,
                               cwd=proj)
            out = p.stdout + p.stderr
            problems = []
            if (p.returncode == 0) != (step["exit_code"] == 0):
                problems.append(f"exit code {p.returncode}, dbt's was {step['exit_code']}")
            counts = parse_done_line(out)
            want = step["counts"]
            if counts is None:
                problems.append("no `Done. PASS=.. WARN=.. ERROR=.. SKIP=.. TOTAL=..` line")
            else:
                printed_noop = "NO-OP=" in out
                keys = ["PASS", "WARN", "ERROR", "SKIP", "TOTAL"] + (["NO-OP"] if printed_noop else [])
                got = {k: counts[k] for k in keys}
                exp = {k: want[k] for k in keys}
                if got != exp:
                    problems.append(f"counts {got}, dbt's {exp}")
                if not printed_noop and want.get("NO-OP", 0):
                    problems.append(f"dbt counted NO-OP={want['NO-OP']}, weir prints no NO-OP")
            if node_statuses:
                if not rr.exists():
                    problems.append("no target/run_results.json")
                else:
                    got_st = {r["unique_id"]: r["status"] for r in json.loads(rr.read_text())["results"]}
                    if got_st != step["results"]:
                        for uid in sorted(set(got_st) | set(step["results"])):
                            a, b = got_st.get(uid, "(absent)"), step["results"].get(uid, "(absent)")
                            if a != b:
                                problems.append(f"node {uid}: weir {a}, dbt {b}")
            if adapter == "duckdb":
                rels = conformance_dump.dump_duckdb(str(db_file)) if db_file.exists() else []
            else:
                rels = conformance_dump.dump_postgres(db_url)
            want_text = conformance_dump.to_json(step["relations"]).splitlines()
            got_text = conformance_dump.to_json(rels).splitlines()
            if want_text != got_text:
                diff = "\n".join(difflib.unified_diff(want_text, got_text, "dbt-core (golden)",
                                                      "weir", lineterm="", n=2))
                problems.append("relations differ:\n" + diff)
            if problems:
                failures.append(label)
                print(f"FAIL {label}")
                for pr in problems:
                    print("  " + pr.replace("\n", "\n  "))
                print("  --- weir's output (last 40 lines) ---")
                for line in out.splitlines()[-40:]:
                    print("  | " + line)
            else:
                print(f"ok   {label}")
            sys.stdout.flush()
    finally:
        if dbname:
            pg_admin(f'drop database if exists "{dbname}" with (force)')
    return failures


def main():
    ap = argparse.ArgumentParser(description="compare weir models with the dbt-core goldens")
    ap.add_argument("projects", nargs="*", default=list(STEPS))
    ap.add_argument("--adapter", choices=["duckdb", "postgres", "all"], default="duckdb")
    ap.add_argument("--no-node-statuses", action="store_true",
                    help="do not compare target/run_results.json statuses")
    ap.add_argument("--keep", action="store_true", help="keep the temporary project copies")
    a = ap.parse_args()
    try:
        import duckdb  # noqa: F401
    except ImportError:
        print("conformance_check: needs the Python package duckdb==1.5.6 (pip install duckdb==1.5.6)")
        sys.exit(2)
    weir = os.environ.get("WEIR_BIN")
    if not weir:
        print("conformance_check: set WEIR_BIN to the weir binary (e.g. target/release/weir)")
        sys.exit(2)
    ok, text = weir_available(weir)
    if not ok:
        print(f"conformance_check: `{weir} models --help` failed: weir's dbt-compatible "
              f"`models` commands are not available in this binary, nothing compared.\n{text[-2000:]}")
        sys.exit(2)
    failures = []
    for name in a.projects:
        for adapter in ["duckdb", "postgres"]:
            if a.adapter not in (adapter, "all"):
                continue
            gpath = CONF / name / "golden" / f"{adapter}.json"
            if not gpath.exists():
                if a.adapter == adapter:
                    print(f"skip {name} ({adapter}): no {gpath.relative_to(CONF.parent.parent)}")
                continue
            golden = json.loads(gpath.read_text())
            tmp = tempfile.mkdtemp(prefix=f"weir-check-{name}-")
            try:
                failures += check_project(weir, name, adapter, golden, tmp, not a.no_node_statuses)
            finally:
                if a.keep:
                    print(f"     kept {tmp}")
                else:
                    subprocess.run(["rm", "-rf", tmp])
    if failures:
        print(f"\n{len(failures)} step(s) differ from dbt-core:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("\nall steps equal dbt-core's goldens")


if __name__ == "__main__":
    main()
