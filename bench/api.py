"""weir's web benchmark (issue "web UI and REST API", point 5): a `weir standalone` with DAGS
paused DAGs and RUNS_PER_DAG runs each in its store, loaded from loopback by wrk (Debian's
`wrk`) with 64 connections:

- `GET /api/v2/dags` (the API listing, default page of 50): requests/s and p99;
- `GET /` (the DAG list page, with the session cookie): requests/s and p99;
- the grid of one DAG of GRID_TASKS tasks with 25 runs: time of one render (median of 5);
- `GET /api/v2/monitor/health`, one request after another from one connection, while the
  scheduler runs the core benchmark's fan-out (1,000 parallel `true` tasks): p50 and p99.

Usage: python3 bench/api.py --weir target/release/weir [--dags 1000] [--runs-per-dag 10]
       [--seconds 10] [--grid-tasks 1000]
Prints a table. Not part of CI.
"""

import argparse
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
from harness import Weir  # noqa: E402


def request(base, method, path, token, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, resp.read()


def wrk(url, headers, seconds):
    cmd = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", url]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(p99.group(1)) * scale, int(non2xx.group(1)) if non2xx else 0


def health_under_fan_out(base, token):
    """Health latencies, one request at a time, while bench_fan's 1,000 tasks run."""
    request(base, "PATCH", "/api/v2/dags/bench_fan", token, {"is_paused": False})
    _, body = request(base, "POST", "/api/v2/dags/bench_fan/dagRuns", token, {"logical_date": None})
    run_id = json.loads(body)["dag_run_id"]
    latencies = []
    last_look = time.monotonic()
    deadline = last_look + 300
    while time.monotonic() < deadline:
        t = time.monotonic()
        with urllib.request.urlopen(base + "/api/v2/monitor/health", timeout=30) as resp:
            assert resp.status == 200
            resp.read()
        latencies.append((time.monotonic() - t) * 1000)
        if time.monotonic() - last_look > 0.5:
            last_look = time.monotonic()
            _, body = request(base, "GET", f"/api/v2/dags/bench_fan/dagRuns/{run_id}", token)
            state = json.loads(body)["state"]
            if state in ("success", "failed"):
                break
    assert state == "success", state
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return (f"health during fan-out ({len(latencies)} reqs)", f"p50 {p50:.1f} ms", f"p99 {p99:.1f} ms", 0, "p99 < 10 ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--dags", type=int, default=1000)
    ap.add_argument("--runs-per-dag", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--grid-tasks", type=int, default=1000)
    a = ap.parse_args()

    os.environ["WEIR__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "true"
    with Weir(a.weir) as weir:
        dags = os.path.join(weir.proj, "dags")
        for i in range(a.dags):
            with open(os.path.join(dags, f"bench_{i:04d}.yaml"), "w") as f:
                f.write(f"dag_id: bench_{i:04d}\ntags: [bench]\nschedule: '@daily'\nstart_date: 2026-01-01\n"
                        "catchup: false\ntasks:\n  - {id: a, type: empty}\n  - {id: b, type: empty, depends_on: [a]}\n")
        with open(os.path.join(dags, "bench_fan.yaml"), "w") as f:
            f.write("dag_id: bench_fan\nstart_date: 2026-01-01\ntasks:\n  - {id: start, type: empty}\n")
            for t in range(1000):
                f.write(f"  - {{id: t{t:04d}, type: shell, command: 'true', depends_on: [start]}}\n")
            f.write("  - id: end\n    type: empty\n    depends_on: [" + ", ".join(f"t{t:04d}" for t in range(1000)) + "]\n")
        lines = ["dag_id: bench_grid", "schedule: '@daily'", "start_date: 2026-01-01", "catchup: false", "tasks:"]
        lines += [f"  - {{id: t{t:04d}, type: empty}}" for t in range(a.grid_tasks)]
        open(os.path.join(dags, "bench_grid.yaml"), "w").write("\n".join(lines) + "\n")
        token = weir.token()
        deadline = time.monotonic() + 300
        while True:
            _, body = request(weir.base, "GET", "/api/v2/dags?limit=1&dag_id_pattern=bench_%25", token)
            if json.loads(body)["total_entries"] >= a.dags + 2:
                break
            assert time.monotonic() < deadline, "the DAGs were not parsed in 300 s"
            time.sleep(0.5)

        def trigger(job):
            dag, k = job
            request(weir.base, "POST", f"/api/v2/dags/{dag}/dagRuns", token,
                    {"logical_date": f"2026-02-{k + 1:02d}T00:00:00Z"})

        jobs = [(f"bench_{i:04d}", k) for i in range(a.dags) for k in range(a.runs_per_dag)]
        jobs += [("bench_grid", k) for k in range(25)]
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(trigger, jobs))
        setup = time.monotonic() - t0

        auth = ["Authorization: Bearer " + token]
        cookie = ["Cookie: weir_session=" + token]
        rows = []
        rps, p99, bad = wrk(weir.base + "/api/v2/dags", auth, a.seconds)
        rows.append(("GET /api/v2/dags (64 conns)", f"{rps:,.0f} req/s", f"p99 {p99:.1f} ms", bad, ">= 5,000 req/s"))
        rps, p99, bad = wrk(weir.base + "/", cookie, a.seconds)
        rows.append(("GET / DAG list page (64 conns)", f"{rps:,.0f} req/s", f"p99 {p99:.1f} ms", bad, "p99 < 50 ms"))
        times = []
        for _ in range(5):
            t = time.monotonic()
            req = urllib.request.Request(weir.base + "/dags/bench_grid/grid", headers={"Cookie": "weir_session=" + token})
            with urllib.request.urlopen(req, timeout=120) as resp:
                assert resp.status == 200
                size = len(resp.read())
            times.append((time.monotonic() - t) * 1000)
        rows.append((f"grid {a.grid_tasks} tasks x 25 runs", f"{statistics.median(times):.0f} ms", f"{size / 1e6:.1f} MB", 0, "< 200 ms"))

        rows.append(health_under_fan_out(weir.base, token))

    print(f"\n{a.dags} DAGs, {len(jobs)} runs triggered through the API in {setup:.1f} s\n")
    print(f"{'workload':36} {'rate/time':>14} {'latency/size':>14} {'non-2xx':>8}  target")
    for r in rows:
        print(f"{r[0]:36} {r[1]:>14} {r[2]:>14} {r[3]:>8}  {r[4]}")


if __name__ == "__main__":
    main()
