#!/usr/bin/env python3
"""Regenerate the dbt-core goldens of tests/conformance/<project>/golden/.

For each project (or those named on the command line) and each adapter it has goldens for,
copy the project to a temporary directory, run its dbt command sequence (STEPS below) with
dbt-core, and after every step record:

  - the command and the environment variables it ran with,
  - dbt's exit code,
  - the summary counts PASS/WARN/ERROR/SKIP/NO-OP/TOTAL, read from dbt's `Done. ...` line
    and checked against the same counts computed from target/run_results.json the way dbt's
    printer does (success/pass -> PASS, warn -> WARN, error/fail/partial success -> ERROR,
    skipped -> SKIP, no-op -> NO-OP; project hooks are results too),
  - every node's status (unique_id -> run_results status),
  - the normalised dump of every relation in the warehouse (scripts/conformance_dump.py:
    columns and DuckDB/PostgreSQL type names, all rows sorted; snapshot wall-clock times
    masked, see that module's docstring for exactly what).

Output: tests/conformance/<project>/golden/duckdb.json, and golden/postgres.json for the
projects in POSTGRES (made in a fresh database, dropped afterwards, on the server
$WEIR_CONFORMANCE_PG_URL, default postgres://postgres:postgres@127.0.0.1:5432/postgres).

Needs a Python with dbt-core 1.11.16, dbt-duckdb 1.11.1, dbt-postgres 1.11.0 and duckdb
1.5.6 (the version of the libduckdb weir links): by default the venv in
/root/.cache/weir/dbt-venv (override with $DBT_VENV); run this script with that venv's python
or any python3 (it re-executes itself in the venv). The dbt_utils package for `utils` is
extracted at run time into the temporary copy's dbt_packages/dbt_utils from the dbt_utils
1.4.1 package tarball in the folder $WEIR_FIXTURES (scripts/conformance_ci.sh sets it for
CI).

    python3 scripts/conformance_goldens.py [project ...] [--adapter duckdb|postgres]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "tests" / "conformance"
VENV = Path(os.environ.get("DBT_VENV", "/root/.cache/weir/dbt-venv"))
DBT_UTILS_TARBALL = "dbt_utils-1.4.1-49b932c.tar.gz"
PG_URL = os.environ.get("WEIR_CONFORMANCE_PG_URL",
                        "postgres://postgres:postgres@127.0.0.1:5432/postgres")

# The command sequence of every project: (dbt arguments, extra environment).
STEPS = {
    "shop": [
        (["seed"], {"SHOP_REGION": "emea"}),
        (["run"], {"SHOP_REGION": "emea"}),
        (["test"], {"SHOP_REGION": "emea"}),
        (["build"], {"SHOP_REGION": "emea"}),
    ],
    "phases": [
        (["build", "--vars", "{phase: 1}"], {}),
        (["build", "--vars", "{phase: 2}"], {}),
        (["run", "--full-refresh", "--select", "inc_merge", "--vars", "{phase: 2}"], {}),
    ],
    "utils": [
        (["build"], {}),
    ],
}
POSTGRES = {"shop"}
NEEDS_DBT_UTILS = {"utils"}

sys.path.insert(0, str(REPO / "scripts"))
import conformance_dump  # noqa: E402

DONE_RE = re.compile(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)(?: NO-OP=(\d+))? TOTAL=(\d+)")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def parse_done_line(text):
    """Counts from a `Done. PASS=.. WARN=.. ERROR=.. SKIP=.. [NO-OP=..] TOTAL=..` line."""
    m = None
    for m in DONE_RE.finditer(ANSI_RE.sub("", text)):
        pass
    if not m:
        return None
    p, w, e, s, n, t = m.groups()
    return {"PASS": int(p), "WARN": int(w), "ERROR": int(e), "SKIP": int(s),
            "NO-OP": int(n or 0), "TOTAL": int(t)}


def counts_from_run_results(results):
    c = {"PASS": 0, "WARN": 0, "ERROR": 0, "SKIP": 0, "NO-OP": 0, "TOTAL": 0}
    for r in results:
        st = r["status"]
        key = {"success": "PASS", "pass": "PASS", "warn": "WARN", "error": "ERROR",
               "fail": "ERROR", "partial success": "ERROR", "skipped": "SKIP",
               "no-op": "NO-OP"}[st]
        c[key] += 1
        c["TOTAL"] += 1
    return c


def fixtures_dir():
    return Path(os.environ.get("WEIR_FIXTURES", REPO.parent / "shared" / "fixtures"))


def copy_project(name, dest):
    src = CONF / name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(
        "golden", "target", "dbt_packages", "logs", "*.duckdb", "*.duckdb.wal"))
    if name in NEEDS_DBT_UTILS:
        install_dbt_utils(dest)


def install_dbt_utils(project_dir):
    tarball = fixtures_dir() / DBT_UTILS_TARBALL
    if not tarball.exists():
        sys.exit(f"the dbt_utils 1.4.1 package tarball {DBT_UTILS_TARBALL} is not in "
                 f"{tarball.parent} (set WEIR_FIXTURES to the folder that holds it)")
    target = Path(project_dir) / "dbt_packages" / "dbt_utils"
    target.mkdir(parents=True)
    with tarfile.open(tarball) as tf:
        tf.extractall(target, filter="data")


def versions():
    out = subprocess.run([str(VENV / "bin" / "python"), "-c",
                          "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
                          "['dbt-core', 'dbt-duckdb', 'dbt-postgres', 'duckdb']}))"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def pg_admin(sql):
    import psycopg2
    con = psycopg2.connect(PG_URL)
    con.autocommit = True
    try:
        con.cursor().execute(sql)
    finally:
        con.close()


def run_project(name, adapter, workdir):
    proj = Path(workdir) / name
    copy_project(name, proj)
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("DBT_", "WEIR_CONFORMANCE_")):
            del env[k]
    env.update({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false",
                "TZ": "UTC", "WEIR_CONFORMANCE_TARGET": adapter})
    dbname = None
    if adapter == "duckdb":
        db_file = Path(workdir) / f"{name}.duckdb"
        env["WEIR_CONFORMANCE_DUCKDB"] = str(db_file)
    else:
        u = urllib.parse.urlparse(PG_URL)
        dbname = f"weir_conformance_{name}_{os.getpid()}"
        pg_admin(f'drop database if exists "{dbname}"')
        pg_admin(f'create database "{dbname}"')
        env.update({"WEIR_CONFORMANCE_PG_HOST": u.hostname or "127.0.0.1",
                    "WEIR_CONFORMANCE_PG_PORT": str(u.port or 5432),
                    "WEIR_CONFORMANCE_PG_USER": u.username or "postgres",
                    "WEIR_CONFORMANCE_PG_PASSWORD": urllib.parse.unquote(u.password or ""),
                    "WEIR_CONFORMANCE_PG_DATABASE": dbname})
        db_url = u._replace(path="/" + dbname).geturl()
    steps = []
    try:
        for args, extra in STEPS[name]:
            step_env = dict(env, **extra)
            rr = proj / "target" / "run_results.json"
            if rr.exists():
                rr.unlink()
            cmd = [str(VENV / "bin" / "dbt"), *args, "--project-dir", str(proj),
                   "--profiles-dir", str(proj)]
            p = subprocess.run(cmd, env=step_env, capture_output=True, text=True, cwd=proj)
            log = p.stdout + p.stderr
            counts = parse_done_line(log)
            if counts is None or not rr.exists():
                sys.exit(f"{name} ({adapter}): `dbt {' '.join(args)}` printed no summary:\n{log}")
            results = json.loads(rr.read_text())["results"]
            computed = counts_from_run_results(results)
            if computed != counts:
                sys.exit(f"{name}: counts from run_results.json {computed} != dbt's line {counts}")
            print(f"{name} ({adapter}) dbt {' '.join(args)}: exit {p.returncode} "
                  + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
            if adapter == "duckdb":
                relations = conformance_dump.dump_duckdb(str(db_file))
            else:
                relations = conformance_dump.dump_postgres(db_url)
            steps.append({
                "command": args,
                "env": extra,
                "exit_code": p.returncode,
                "counts": counts,
                "results": {r["unique_id"]: r["status"] for r in sorted(results, key=lambda r: r["unique_id"])},
                "relations": relations,
            })
    finally:
        if dbname:
            pg_admin(f'drop database if exists "{dbname}" with (force)')
    return steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("projects", nargs="*", default=list(STEPS))
    ap.add_argument("--adapter", choices=["duckdb", "postgres"])
    a = ap.parse_args()
    vers = versions()
    for name in a.projects:
        adapters = ["duckdb"] + (["postgres"] if name in POSTGRES else [])
        for adapter in adapters:
            if a.adapter and adapter != a.adapter:
                continue
            with tempfile.TemporaryDirectory(prefix=f"weir-conf-{name}-") as tmp:
                steps = run_project(name, adapter, tmp)
            golden = {
                "project": name,
                "adapter": adapter,
                "made_with": vers,
                "steps": steps,
            }
            out = CONF / name / "golden" / f"{adapter}.json"
            out.parent.mkdir(exist_ok=True)
            out.write_text(conformance_dump.pretty(golden) + "\n")
            print(f"wrote {out.relative_to(REPO)}", flush=True)


if __name__ == "__main__":
    if Path(sys.prefix).resolve() != VENV.resolve() and (VENV / "bin" / "python").exists():
        os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), *sys.argv])
    main()
