#!/usr/bin/env python3
"""The models engine beside dbt-core: the same generated projects, the same run, one table.

M1 parse500    `parse` of 500 models (bench/models/generate.py big 500)
M2 compile500  `compile` of the same 500 models (parse included, as a user runs it)
M3 run500      `run` of the 500 views on DuckDB (the database is deleted and seeded, untimed,
               before every repetition, so each run starts from the same state)
M4 build_small `build` of 3 seeds, 5 models and 20 data tests (generate.py small), from an
               empty database
M5 parse10k    `parse` of 10,000 models

Each workload runs --repeat times (default 3) per tool, weir and dbt taking turns; the table
shows the median of the wall-clock times of the CLI process (start to exit). Each tool works in
its own copy of the generated project (byte-identical), with cwd = the project and the
project's profiles.yml (DuckDB, 4 threads).

M3 also shows a floor: the statements weir ran (target/run/, create view beside and rename),
each model's in one transaction as weir and dbt commit them, replayed in order on one DuckDB
connection by the venv's Python duckdb (the same DuckDB
version as weir's), timed inside Python, on a copy of the seeded database: DuckDB's own cost
of binding and creating the views, with no catalog lookups and no orchestration (and,
separately, the checkpoint DuckDB makes when the connection closes).

Fairness: dbt always gets --no-partial-parse, so it reads every file as weir does (weir has no
partial parsing); DO_NOT_TRACK=1 and --no-version-check keep the network out of it. Everything
else is dbt's default (it writes target/ and logs/, as weir writes target/).

Usage: bench/models/run.py [--weir PATH] [--dbt PATH] [--floor-python PATH] [--repeat N]
                          [--only M1,M2,...] [--keep DIR]
Without dbt (the default is ~/.cache/weir/dbt-venv/bin/dbt), weir's numbers are printed alone.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402

DBT_DEFAULT = os.path.expanduser("~/.cache/weir/dbt-venv/bin/dbt")

# (id, label, project, command, target s, dbt-core 1.11 on this machine per issue 8)
WORKLOADS = [
    ("M1", "parse500", "big500", "parse", 0.2, "7.2 s"),
    ("M2", "compile500", "big500", "compile", 0.5, "9.1 s"),
    ("M3", "run500", "big500", "run", 3.0, "23.6 s"),
    ("M4", "build_small", "small", "build", 0.5, "5.5 s"),
    ("M5", "parse10k", "big10000", "parse", 1.0, "(Fusion: < 0.6 s)"),
]


class Tool:
    def __init__(self, name, argv, extra):
        self.name, self.argv, self.extra = name, argv, extra

    def command(self, command, project):
        return self.argv + [command, "--project-dir", project, "--profiles-dir", project] + self.extra


def weir_tool(path):
    return Tool("weir", [path, "models"], [])


def dbt_tool(path):
    return Tool("dbt", [path, "--no-version-check"], ["--no-partial-parse"])


def env():
    e = dict(os.environ)
    e["DO_NOT_TRACK"] = "1"
    e["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    e["NO_COLOR"] = "1"
    return e


def invoke(tool, command, project):
    """Runs one command; returns (wall s, CompletedProcess)."""
    t0 = time.monotonic()
    out = subprocess.run(tool.command(command, project), cwd=project, env=env(),
                         capture_output=True, text=True)
    return time.monotonic() - t0, out


def fail(tool, command, out):
    tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
    raise SystemExit("%s %s failed (exit %d):\n%s" % (tool.name, command, out.returncode, tail))


def reset_database(project):
    for name in ("bench.duckdb", "bench.duckdb.wal"):
        path = os.path.join(project, name)
        if os.path.exists(path):
            os.remove(path)


def measure(tool, command, project):
    """One timed repetition, with its untimed preparation."""
    if command in ("run", "build"):
        reset_database(project)
    if command == "run":
        took, out = invoke(tool, "seed", project)
        if out.returncode != 0:
            fail(tool, "seed", out)
    took, out = invoke(tool, command, project)
    if out.returncode != 0:
        fail(tool, command, out)
    return took


FLOOR = r"""
import glob, os, sys, time
import duckdb
project, db = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(project, "target", "run", "*", "models", "*", "*.sql")),
               key=os.path.basename)  # m_00000.sql ...: a model refs only lower numbers
models = [[s.strip() for s in open(f).read().split(";\n\n") if s.strip()] for f in files]
con = duckdb.connect(db)
t0 = time.monotonic()
for statements in models:  # a view model's statements commit together, as weir and dbt run them
    con.execute("begin")
    for sql in statements:
        con.execute(sql)
    con.execute("commit")
took = time.monotonic() - t0
con.close()  # DuckDB checkpoints here (weir leaves its WAL to the next command)
closed = time.monotonic() - t0 - took
print("%d %d %.6f %.6f" % (len(files), sum(map(len, models)), took, closed))
"""


def duckdb_python(python):
    """`python` if it imports duckdb, else None."""
    if os.access(python, os.X_OK) and subprocess.run([python, "-c", "import duckdb"],
                                                     capture_output=True).returncode == 0:
        return python
    return None


def floor_run(python, project, weir):
    """Replays weir's run SQL of `project` on a freshly seeded copy of its database."""
    reset_database(project)
    took, out = invoke(weir, "seed", project)
    if out.returncode != 0:
        fail(weir, "seed", out)
    copy = os.path.join(project, "floor")
    shutil.rmtree(copy, ignore_errors=True)
    os.makedirs(copy)
    for name in ("bench.duckdb", "bench.duckdb.wal"):  # the catalog is named after the file
        if os.path.exists(os.path.join(project, name)):
            shutil.copy(os.path.join(project, name), copy)
    out = subprocess.run([python, "-c", FLOOR, project, os.path.join(copy, "bench.duckdb")],
                         capture_output=True, text=True)
    shutil.rmtree(copy, ignore_errors=True)
    if out.returncode != 0:
        raise SystemExit("the DuckDB floor failed:\n%s" % out.stderr[-2000:])
    files, statements, took, closed = out.stdout.split()
    return float(took), float(closed), int(statements)


def generated(root, key):
    """The generated project `key` (big500, big10000, small), generated once per run."""
    path = os.path.join(root, "src", key)
    if not os.path.isdir(path):
        if key == "small":
            generate.small(path)
        else:
            generate.big(int(key[3:]), path)
    return path


def copy_for(root, key, tool):
    path = os.path.join(root, tool.name, key)
    if not os.path.isdir(path):
        shutil.copytree(generated(root, key), path)
    return path


def fmt(seconds):
    return "%.3f" % seconds if seconds < 10 else "%.1f" % seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", default=None)
    ap.add_argument("--dbt", default=DBT_DEFAULT)
    ap.add_argument("--floor-python", default=os.path.join(os.path.dirname(DBT_DEFAULT), "python"),
                    help="a Python with the duckdb module, for M3's floor")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="M1,M2,M3,M4,M5")
    ap.add_argument("--keep", default=None, help="generate into DIR and leave it there")
    args = ap.parse_args()
    weir = args.weir or shutil.which("weir")
    if not weir:
        raise SystemExit("pass --weir PATH (build with cargo build --release -p weir)")
    tools = [weir_tool(os.path.abspath(weir))]
    if os.access(args.dbt, os.X_OK):
        version = subprocess.run([args.dbt, "--version"], capture_output=True, text=True, env=env()).stdout
        installed = [line.split(":")[-1].strip() for line in version.splitlines() if "installed" in line]
        print("dbt-core %s (%s)" % (installed[0] if installed else "?", args.dbt))
        tools.append(dbt_tool(args.dbt))
    else:
        print("dbt not found at %s (pass --dbt PATH): weir's numbers alone" % args.dbt)
    only = set(args.only.split(","))
    root = args.keep or tempfile.mkdtemp(prefix="weir-models-bench-")
    os.makedirs(root, exist_ok=True)
    print("load average before: %.2f %.2f %.2f on %d cores" % (os.getloadavg() + (os.cpu_count(),)))
    rows = []
    try:
        for wid, label, key, command, target, quoted in WORKLOADS:
            if wid not in only and label not in only:
                continue
            projects = {t.name: copy_for(root, key, t) for t in tools}
            times = {t.name: [] for t in tools}
            for _ in range(args.repeat):
                for t in tools:
                    times[t.name].append(measure(t, command, projects[t.name]))
            floor = ""
            python = duckdb_python(args.floor_python)
            if command == "run" and python:
                floors = [floor_run(python, projects["weir"], tools[0]) for _ in range(args.repeat)]
                floor = "; DuckDB floor %s + %s checkpoint at close (%d statements)" % (
                    fmt(statistics.median(f[0] for f in floors)),
                    fmt(statistics.median(f[1] for f in floors)), floors[0][2])
            w = statistics.median(times["weir"])
            d = statistics.median(times["dbt"]) if "dbt" in times else None
            spread = "; ".join("%s %s" % (name, "/".join(fmt(x) for x in xs)) for name, xs in times.items()) + floor
            rows.append(("%s %s" % (wid, label), fmt(w), fmt(d) if d is not None else "-",
                         "%.0fx" % (d / w) if d is not None else "-", "< %g s" % target,
                         "yes" if w < target else "NO", quoted, spread))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("load average after:  %.2f %.2f %.2f" % os.getloadavg())
    header = ("workload", "weir s", "dbt s", "dbt/weir", "target", "met?", "issue 8's dbt", "runs (s)")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


if __name__ == "__main__":
    main()
