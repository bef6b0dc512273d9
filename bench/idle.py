"""weir's idle-memory benchmark (issue "web UI and REST API", point 6): the RSS of one
`weir standalone` serving the UI and the API on a fresh `weir init` project, while nothing runs.

Measured, in one run, each the max of 1 s samples over WINDOW seconds:
- idle before any task ran: the example DAGs loaded (paused), after a login page, a token, a
  DAG listing and a health check have been served;
- idle after both example DAGs ran once (unpaused and triggered through the API, polled to
  success): `example_daily` (shell and Python tasks) and `names_etl` (HTTP extract into DuckDB,
  a SQL transform and checks), once `SETTLE` seconds have passed since the last run ended.
Each row shows VmRSS and its anonymous (heap, stacks) and file-backed (binary and libraries)
parts; the files whose pages make up most of the file-backed part follow. Then the whole
process tree: its peak while the runs ran (weir, its warehouse process and the tasks'
processes, sampled every 0.2 s) and after the runs (the warehouse process exits once idle for
`[worker] warehouse_idle_s`).

Usage: python3 bench/idle.py --weir target/release/weir [--window 10] [--settle 10]
Prints a table. Not part of CI.
"""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
from harness import Weir  # noqa: E402
from api import request  # noqa: E402
from procstat import child_count, file_rss_mb, memory_mb, tree_rss_mb  # noqa: E402
from sensors import wait_until  # noqa: E402

DAGS = ("example_daily", "names_etl")


def api(base, method, path, token, body=None):
    """An API call's JSON answer."""
    return json.loads(request(base, method, path, token, body)[1])


def peak(pid, window):
    """The sample of the highest VmRSS over `window` seconds of 1 s samples."""
    best = {"VmRSS": 0.0}
    start = time.monotonic()
    while time.monotonic() - start < window:
        best = max(best, memory_mb(pid), key=lambda m: m["VmRSS"])
        time.sleep(1)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=10.0)
    args = ap.parse_args()

    os.environ["WEIR__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "true"
    with Weir(args.weir) as weir:
        base, pid = weir.base, weir.proc.pid
        token = weir.token()
        wait_until("the example DAGs", 60,
                   lambda: api(base, "GET", "/api/v2/dags", token)["total_entries"] == len(DAGS))
        request(base, "GET", "/login", token)
        request(base, "GET", "/api/v2/monitor/health", token)
        before = peak(pid, args.window)
        files_before = dict(file_rss_mb(pid))

        tree_peak, sampling = [0.0], threading.Event()

        def sample_tree():
            while not sampling.is_set():
                tree_peak[0] = max(tree_peak[0], tree_rss_mb(pid))
                time.sleep(0.2)
        sampler = threading.Thread(target=sample_tree)
        sampler.start()
        runs = []
        for dag in DAGS:
            api(base, "PATCH", f"/api/v2/dags/{dag}", token, {"is_paused": False})
            run = api(base, "POST", f"/api/v2/dags/{dag}/dagRuns", token, {"logical_date": None})
            runs.append((dag, run["dag_run_id"]))
        for dag, run_id in runs:
            def ended(dag=dag, run_id=run_id):
                state = api(base, "GET", f"/api/v2/dags/{dag}/dagRuns/{run_id}", token)["state"]
                if state == "failed":
                    sys.exit(f"{dag} run {run_id} failed:\n{weir.tail()}")
                return state == "success"
            wait_until(f"{dag} to succeed", 300, ended)
        sampling.set()
        sampler.join()
        time.sleep(args.settle)
        request(base, "GET", "/api/v2/dags", token)
        after = peak(pid, args.window)
        files = file_rss_mb(pid)[:4]
        tree_after, children_after = tree_rss_mb(pid), child_count(pid)

    rows = [(f"idle before any task ran (max over {args.window:g} s)", before),
            (f"idle after {' and '.join(DAGS)} ran ({args.settle:g} s later)", after)]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'RSS':>9}  {'anon / file-backed':>20}  target")
    for name, m in rows:
        print(f"{name:<{width}}  {m['VmRSS']:>6.1f} MB  "
              f"{m['RssAnon']:>8.1f} / {m['RssFile']:.1f} MB  < 50 MB")
    print("file-backed RSS by file (before / after the runs):")
    for path, mb in files:
        print(f"  {files_before.get(path, 0.0):6.1f} / {mb:6.1f} MB  {path}")
    print(f"whole process tree: peak while the runs ran {tree_peak[0]:.1f} MB; "
          f"after the runs {tree_after:.1f} MB in {1 + children_after} process(es)")


if __name__ == "__main__":
    main()
