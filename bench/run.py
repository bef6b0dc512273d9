#!/usr/bin/env python3
"""weir's benchmarks: generates each workload, runs it under `weir standalone`, prints a table.

W1 chain100  100 sequential `true` tasks: trigger to run success, and per task, beside its
             floor: 100 sequential `bash -c true` spawns with no orchestration
W2 fan1000   start -> 1000 parallel `true` tasks -> end: tasks per second, beside its floor:
             1000 `bash -c true` spawns, 32 at a time (the worker's slots), no orchestration
W2e fan1000e the same fan-out of `empty` tasks: pure orchestration, no process
W6 scale     100, 300 and 1000 DAGs, each a chain of 10 `shell: true` tasks on `every 1m`:
             p99 of (first task's start - interval end) and weir's own CPU s per task
             instance (/proc utime+stime of the weir process, children excluded)
W3 parse1000 1000 DAG files of 10 tasks: process start until all are registered
W5 idle      RSS after 30 s idle, and process start until `weir health` says healthy
D1 load1m    a 1,000,000-row CSV served over HTTP, loaded into DuckDB by an `http` task's save_to
D2 sql1000   1000 templated `sql` tasks (inserts into one DuckDB table) in one DAG: tasks per second

Usage: bench/run.py [--weir PATH] [--idle SECONDS] [--only W1,W2,...] [--w6-minutes M] [--repeat N]
W1 and W2 run weir and their floor N times (default 3), taking turns, and compare the best of
each: on a shared 2-core machine one run of either can be a third slower than the next.
Times come from the metadata DB (queued_at -> end_date), as the peer figures in
../shared/peer-bench/FIGURES.md do, and from the wall clock around the CLI.
"""
import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from procstat import cpu_seconds, tree_rss_mb  # noqa: E402

SETTINGS = """
[core]
parallelism = 32

[scheduler]
dag_dir_list_interval = 1.0
heartbeat_s = 5.0
poll_s = 0.2

[worker]
slots = 32
"""


def project(root, name):
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "dags"))
    with open(os.path.join(d, "weir.toml"), "w") as f:
        f.write(SETTINGS)
    return d


def chain_dag(n):
    lines = ["dag_id: chain%d" % n, "tasks:"]
    for i in range(n):
        dep = "" if i == 0 else ", depends_on: [t%d]" % (i - 1)
        lines.append("  - {id: t%d, type: shell, command: 'true'%s}" % (i, dep))
    return "\n".join(lines) + "\n"


def fan_dag(n):
    lines = ["dag_id: fan%d" % n, "max_active_tasks: 64", "tasks:", "  - {id: start, type: empty}"]
    for i in range(n):
        lines.append("  - {id: t%d, type: shell, command: 'true', depends_on: [start]}" % i)
    lines.append("  - id: end\n    type: empty\n    depends_on: [%s]" % ", ".join("t%d" % i for i in range(n)))
    return "\n".join(lines) + "\n"


def empty_fan_dag(n):
    return fan_dag(n).replace("type: shell, command: 'true'", "type: empty").replace("fan%d" % n, "fan%de" % n, 1)


def floor_sequential(n):
    """Seconds for n sequential `bash -c true` spawns: the physical floor of a chain."""
    t0 = time.monotonic()
    subprocess.run(["bash", "-c", "for i in $(seq %d); do bash -c true; done" % n], check=True)
    return time.monotonic() - t0


def floor_parallel(n, parallelism):
    """Seconds for n `bash -c true` spawns, `parallelism` at a time (xargs -P)."""
    t0 = time.monotonic()
    subprocess.run(["bash", "-c", "seq %d | xargs -P %d -I{} bash -c true" % (n, parallelism)], check=True)
    return time.monotonic() - t0


def chain10_every_minute(i):
    lines = ["dag_id: scale_%04d" % i, "schedule: every 1m", "start_date: 2026-01-01", "catchup: false", "tasks:"]
    for t in range(10):
        dep = "" if t == 0 else ", depends_on: [t%d]" % (t - 1)
        lines.append("  - {id: t%d, type: shell, command: 'true'%s}" % (t, dep))
    return "\n".join(lines) + "\n"


def w6(weir, root, n, minutes):
    """n DAGs on `every 1m` for `minutes`: (p99 latency s, CPU ms per task instance, runs)."""
    p = project(root, "w6_%d" % n)
    for i in range(n):
        open(os.path.join(p, "dags", "scale_%04d.yaml" % i), "w").write(chain10_every_minute(i))
    subprocess.run([weir, "--project", p, "db", "migrate"], check=True, capture_output=True)
    sa = Standalone(weir, p)
    try:
        wait(lambda: healthy(weir, p), 60, 0.05)
        # Start counting at a minute boundary, after the first (catch-up) runs settled.
        time.sleep(60 - time.time() % 60 + 5)
        cpu0, t0 = cpu_seconds(sa.proc.pid), time.time()
        time.sleep(minutes * 60)
        cpu1, t1 = cpu_seconds(sa.proc.pid), time.time()
    finally:
        sa.stop()
    con = db(p)
    lat = [r[0] / 1e6 for r in con.execute(
        "SELECT ti.start_date - r.data_interval_end FROM dag_run r JOIN task_instance ti ON ti.run_pk = r.id "
        "WHERE ti.task_id = 't0' AND ti.start_date IS NOT NULL AND r.data_interval_end >= ? AND r.data_interval_end <= ?",
        (int(t0 * 1e6), int(t1 * 1e6)))]
    tis = con.execute(
        "SELECT COUNT(*) FROM task_instance WHERE end_date >= ? AND end_date <= ?",
        (int(t0 * 1e6), int(t1 * 1e6))).fetchone()[0]
    con.close()
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    return p99, 1000.0 * (cpu1 - cpu0) / max(tis, 1), len(lat), tis


def sql_dag(n):
    lines = ["dag_id: sql%d" % n, "max_active_tasks: 64", "tasks:",
             "  - {id: create, type: sql, connection: warehouse, sql: 'create or replace table hits (task varchar, ds varchar, n integer)'}"]
    for i in range(n):
        lines.append("  - {id: q%d, type: sql, connection: warehouse, depends_on: [create], "
                     "sql: \"insert into hits values ('{{ task.task_id }}', '{{ ds }}', {{ params.base + %d }})\"}" % (i, i))
    return "\n".join(lines).replace("tasks:\n", "params: {base: 1000}\ntasks:\n", 1) + "\n"


def load_dag(url):
    return """dag_id: load1m
tasks:
  - id: extract
    type: http
    url: "%s"
    timeout: 10m
    save_to: {connection: warehouse, table: raw.big, format: csv, mode: replace}
""" % url


def parse_dag(i):
    lines = ["dag_id: parse_%04d" % i, "schedule: '@daily'", "start_date: 2026-01-01", "tasks:"]
    for t in range(10):
        dep = "" if t == 0 else ", depends_on: [t%d]" % (t - 1)
        lines.append("  - {id: t%d, type: shell, command: 'echo {{ ds }} %d'%s}" % (t, t, dep))
    return "\n".join(lines) + "\n"


class Standalone:
    def __init__(self, weir, proj):
        self.log = open(os.path.join(proj, "standalone.log"), "w+")
        self.t0 = time.monotonic()
        env = dict(os.environ, WEIR__WEBSERVER__PORT="0")
        self.proc = subprocess.Popen([weir, "--project", proj, "standalone"], stdout=subprocess.DEVNULL,
                                     stderr=self.log, stdin=subprocess.DEVNULL, env=env)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def rss_mb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")


def wait(pred, limit, step=0.005):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise SystemExit("timed out")


def db(proj):
    return sqlite3.connect("file:%s?mode=ro" % os.path.join(proj, ".weir", "metadata.db"), uri=True, timeout=30)


def healthy(weir, proj):
    return subprocess.run([weir, "--project", proj, "health"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def spread(values):
    """`best (all values)` of a list of seconds, as printed in the table."""
    return "%.3f (%s)" % (min(values), ", ".join("%.3f" % v for v in values))


def run_dag(weir, proj, dag_id, tasks):
    """Triggers dag_id under standalone; returns (wall s, db queued->end s)."""
    sa = Standalone(weir, proj)
    try:
        wait(lambda: healthy(weir, proj), 30, 0.01)
        t0 = time.monotonic()
        out = subprocess.run([weir, "--project", proj, "dags", "trigger", dag_id, "--wait"],
                             capture_output=True, text=True)
        wall = time.monotonic() - t0
        if out.returncode != 0:
            raise SystemExit("%s failed: %s" % (dag_id, out.stderr))
        con = db(proj)
        q, e = con.execute("SELECT queued_at, end_date FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchone()
        n = con.execute("SELECT COUNT(*) FROM task_instance ti JOIN dag_run r ON r.id = ti.run_pk "
                        "WHERE r.dag_id = ? AND ti.state = 'success'", (dag_id,)).fetchone()[0]
        con.close()
        assert n == tasks, (n, tasks)
        return wall, (e - q) / 1e6
    finally:
        sa.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", default=None)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("--only", default="W1,W2,W2e,W3,W5,D1,D2")
    ap.add_argument("--w6-minutes", type=float, default=5.0)
    ap.add_argument("--w6-sizes", default="100,300,1000")
    ap.add_argument("--repeat", type=int, default=3,
                    help="W1 and W2: runs of weir and of the floor, taking turns; the best of each is compared")
    args = ap.parse_args()
    weir = args.weir or shutil.which("weir")
    if not weir:
        raise SystemExit("pass --weir PATH (build with cargo build --release -p weir)")
    only = set(args.only.split(","))
    root = tempfile.mkdtemp(prefix="weir-bench-")
    rows = []
    try:
        if "W1" in only:
            inners, floors = [], []
            for r in range(args.repeat):
                p = project(root, "w1-%d" % r)
                open(os.path.join(p, "dags", "chain100.yaml"), "w").write(chain_dag(100))
                inners.append(run_dag(weir, p, "chain100", 100)[1])
                floors.append(floor_sequential(100))
            inner, floor = min(inners), min(floors)
            rows.append(("W1 chain100", "DB queued->end %s s; floor %s s (best of %d, taking turns)" % (
                             spread(inners), spread(floors), args.repeat),
                         "%.1f ms/task (%.2fx floor)" % (inner * 10, inner / floor), "within 2x floor", "Airflow 1.10 s/task, Prefect 10.7 ms/task"))
        if "W2" in only:
            inners, floors = [], []
            for r in range(args.repeat):
                p = project(root, "w2-%d" % r)
                open(os.path.join(p, "dags", "fan1000.yaml"), "w").write(fan_dag(1000))
                inners.append(run_dag(weir, p, "fan1000", 1002)[1])
                floors.append(floor_parallel(1000, 32))
            inner, floor = min(inners), min(floors)
            rows.append(("W2 fan1000", "DB queued->end %s s; floor %s s (best of %d, taking turns)" % (
                             spread(inners), spread(floors), args.repeat),
                         "%.0f tasks/s (%.0f%% of floor's %.0f)" % (1002 / inner, 100 * floor / inner, 1000 / floor),
                         ">= 70% of floor", "Airflow 4.5 tasks/s, Prefect 112 tasks/s"))
        if "W2e" in only:
            p = project(root, "w2e")
            open(os.path.join(p, "dags", "fan1000e.yaml"), "w").write(empty_fan_dag(1000))
            wall, inner = run_dag(weir, p, "fan1000e", 1002)
            rows.append(("W2e fan1000e", "1000 `empty` tasks between two joins; DB queued->end %.3f s" % inner,
                         "%.0f tasks/s" % (1002 / inner), ">= 5000 tasks/s", ""))
        if "W3" in only:
            p = project(root, "w3")
            for i in range(1000):
                open(os.path.join(p, "dags", "parse_%04d.yaml" % i), "w").write(parse_dag(i))
            # Pre-create the metadata DB so that the figure is parsing and registering, as for the peers.
            subprocess.run([weir, "--project", p, "db", "migrate"], check=True, capture_output=True)
            sa = Standalone(weir, p)
            try:
                def registered():
                    try:
                        con = db(p)
                        n = con.execute("SELECT COUNT(*) FROM dag WHERE is_active = 1").fetchone()[0]
                        con.close()
                        return n >= 1000
                    except sqlite3.Error:
                        return False
                wait(registered, 60, 0.005)
                took = time.monotonic() - sa.t0
            finally:
                sa.stop()
            rows.append(("W3 parse1000", "process start to 1000 DAGs (10 tasks each) registered in the DB",
                         "%.2f s" % took, "< 1 s", "Airflow 78 s"))
        if "W5" in only:
            p = os.path.join(root, "w5")
            subprocess.run([weir, "init", p], check=True, capture_output=True)
            subprocess.run([weir, "--project", p, "db", "migrate"], check=True, capture_output=True)
            sa = Standalone(weir, p)
            try:
                wait(lambda: healthy(weir, p), 30, 0.002)
                up = time.monotonic() - sa.t0
                time.sleep(args.idle)
                rss = sa.rss_mb()
                tree = tree_rss_mb(sa.proc.pid)
            finally:
                sa.stop()
            rows.append(("W5 idle", "weir init project (its 2 DAGs ran once: shell, python, DuckDB); RSS after %.0f s idle" % args.idle,
                         "%.1f MB (process tree %.1f MB)" % (rss, tree), "tree < 30 MB", "Airflow ~1 GB"))
            e = project(root, "w5empty")
            subprocess.run([weir, "--project", e, "db", "migrate"], check=True, capture_output=True)
            sa = Standalone(weir, e)
            try:
                wait(lambda: healthy(weir, e), 30, 0.002)
                time.sleep(args.idle)
                rss_empty = sa.rss_mb()
            finally:
                sa.stop()
            rows.append(("W5 idle", "empty dags folder (as Airflow's W5 point); RSS after %.0f s idle" % args.idle,
                         "%.1f MB" % rss_empty, "< 50 MB", "Airflow ~1 GB"))
            rows.append(("W5 start-up", "process start until `weir health` exits 0", "%.3f s" % up, "< 0.5 s", ""))
        if "W6" in only:
            for n in [int(x) for x in args.w6_sizes.split(",")]:
                p99, cpu_ms, runs, tis = w6(weir, root, n, args.w6_minutes)
                rows.append(("W6 scale %d" % n, "%d DAGs x chain of 10 on every 1m for %.0f min: %d runs, %d task instances" % (n, args.w6_minutes, runs, tis),
                             "p99 %.2f s; %.2f ms CPU/TI" % (p99, cpu_ms), "p99 < 2 s at 1000; CPU/TI flat within 1.5x", "weir before this change: 3.3 ms CPU/TI at 200 DAGs"))
        if "D1" in only:
            p = project(root, "d1")
            data = os.path.join(root, "www")
            os.makedirs(data)
            with open(os.path.join(data, "big.csv"), "w") as f:
                f.write("id,name,gender,amount,event_date\n")
                for i in range(1_000_000):
                    f.write("%d,name_%d,%s,%d.%02d,2026-01-%02d\n" % (i, i % 5000, "MF"[i % 2], i % 997, i % 100, 1 + i % 28))
            size_mb = os.path.getsize(os.path.join(data, "big.csv")) / 1e6
            server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"], cwd=data,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                port = int(server.stdout.readline().split("port ")[1].split(" ")[0])
                open(os.path.join(p, "dags", "load1m.yaml"), "w").write(load_dag("http://127.0.0.1:%d/big.csv" % port))
                subprocess.run([weir, "--project", p, "db", "migrate"], check=True, capture_output=True)
                t0 = time.monotonic()
                out = subprocess.run([weir, "--project", p, "dags", "test", "load1m", "2026-01-15"],
                                     capture_output=True, text=True)
                wall = time.monotonic() - t0
                if out.returncode != 0:
                    raise SystemExit("load1m failed: %s %s" % (out.stdout, out.stderr))
                con = db(p)
                s_, e_ = con.execute("SELECT start_date, end_date FROM task_instance WHERE task_id = 'extract'").fetchone()
                con.close()
                task_s = (e_ - s_) / 1e6
            finally:
                server.kill()
            rows.append(("D1 load1m", "%.0f MB CSV over HTTP into DuckDB (task %.2f s, CLI wall %.2f s)" % (size_mb, task_s, wall),
                         "%.0f rows/s" % (1_000_000 / task_s), "", "dbt seed is not built for this size"))
        if "D2" in only:
            p = project(root, "d2")
            open(os.path.join(p, "dags", "sql1000.yaml"), "w").write(sql_dag(1000))
            wall, inner = run_dag(weir, p, "sql1000", 1001)
            rows.append(("D2 sql1000", "1000 templated sql inserts into DuckDB; DB queued->end %.3f s" % inner,
                         "%.0f tasks/s" % (1001 / inner), "", ""))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    widths = [max(len(r[i]) for r in rows + [("workload", "what was measured", "weir", "target", "peers (FIGURES.md)")])
              for i in range(5)]
    header = ("workload", "what was measured", "weir", "target", "peers (FIGURES.md)")
    for r in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


if __name__ == "__main__":
    main()
