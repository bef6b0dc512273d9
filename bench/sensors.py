"""weir's waiting benchmark (issue "control flow", point 4): SENSORS deferred sensors waiting
at once in one `weir standalone`, each a mapped instance of one `wait_for` task (mode `defer`,
the default) on a task of another DAG that has not run yet.

Measured, in one run:
- how long until every instance is `deferred` (expansion, one worker try each, the hand-over);
- while they wait, over WINDOW seconds: the process's RSS (VmRSS, max of 1 s samples), its CPU
  (utime + stime over the window, in % of one core), and how many child processes it has;
- the time from the watched task's success to the last sensor's success (bounded below by
  the poke interval: a deferred sensor is checked every `poke_interval`).

Usage: python3 bench/sensors.py --weir target/release/weir [--sensors 10000]
       [--poke-interval 60] [--window 120]
Prints a table. Not part of CI.
"""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from procstat import child_count, cpu_seconds, memory_mb  # noqa: E402


def weir_pid(proc, weir):
    """The weir process: proc itself, or (under --wrap) the descendant running the binary."""
    if os.readlink(f"/proc/{proc.pid}/exe") == weir:
        return proc.pid
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.readlink(f"/proc/{entry}/exe") == weir:
                return int(entry)
        except OSError:
            continue
    return proc.pid


def counts(db, dag_id, task_id):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute(
            "SELECT state, COUNT(*) FROM task_instance WHERE dag_id = ? AND task_id = ? GROUP BY state",
            (dag_id, task_id),
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def wait_until(what, limit, check, every=0.5):
    start = time.monotonic()
    while True:
        value = check()
        if value:
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            sys.exit(f"timed out after {limit} s waiting for {what}")
        time.sleep(every)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", required=True)
    ap.add_argument("--sensors", type=int, default=10000)
    ap.add_argument("--poke-interval", type=float, default=60.0)
    ap.add_argument("--window", type=float, default=120.0)
    ap.add_argument("--wrap", default="", help="a command to run weir under, e.g. 'heaptrack -o F'")
    args = ap.parse_args()
    weir = os.path.abspath(args.weir)
    n = args.sensors

    project = tempfile.mkdtemp(prefix="weir-bench-sensors-")
    os.makedirs(os.path.join(project, "dags"))
    with open(os.path.join(project, "weir.toml"), "w") as f:
        f.write(f"[core]\nmax_map_length = {n}\n[webserver]\nport = 0\n")
    with open(os.path.join(project, "dags", "upstream.yaml"), "w") as f:
        f.write("schedule: null\nis_paused_upon_creation: false\ntasks:\n"
                "  - {id: load, type: shell, command: echo loaded}\n")
    with open(os.path.join(project, "dags", "waiters.yaml"), "w") as f:
        f.write(f"""schedule: null
is_paused_upon_creation: false
tasks:
  - id: items
    type: shell
    command: python3 -c "import json; print(json.dumps(list(range({n}))))"
    xcom: last_line
  - id: wait
    type: wait_for
    depends_on: [items]
    map_over: "{{{{ ti.xcom_pull(task_ids='items') }}}}"
    dag_id: upstream
    task_id: load
    logical_date: "2026-01-01"
    poke_interval: {args.poke_interval}
""")
    env = dict(os.environ, NO_COLOR="1")
    env.pop("WEIR_HOME", None)
    log = open(os.path.join(project, "standalone.log"), "w")
    wrap = args.wrap.split()
    proc = subprocess.Popen([*wrap, weir, "--project", project, "standalone"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    db = os.path.join(project, ".weir", "metadata.db")
    pid = proc.pid
    try:
        def cli(*a):
            return subprocess.run([weir, "--project", project, *a], check=True,
                                  capture_output=True, text=True, env=env).stdout

        wait_until("the DAGs", 60, lambda: len(json.loads(cli("dags", "list", "-o", "json"))) == 2)
        pid = weir_pid(proc, weir)
        idle_rss = memory_mb(pid)["VmRSS"]
        cli("dags", "trigger", "waiters")
        to_deferred = wait_until(f"{n} deferred sensors", 1800,
                                 lambda: counts(db, "waiters", "wait").get("deferred", 0) == n)
        # Let the hand-over settle, then measure a window of pure waiting.
        time.sleep(2)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        rss_max, kids_max = {"VmRSS": 0.0}, 0
        while time.monotonic() - t0 < args.window:
            rss_max = max(rss_max, memory_mb(pid), key=lambda m: m["VmRSS"])
            kids_max = max(kids_max, child_count(pid))
            time.sleep(1)
        cpu_pct = 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        states = counts(db, "waiters", "wait")
        assert states.get("deferred", 0) == n, states

        cli("dags", "trigger", "upstream", "--logical-date", "2026-01-01")
        wait_until("the upstream task", 120,
                   lambda: counts(db, "upstream", "load").get("success", 0) == 1, every=0.05)
        release = wait_until(f"{n} sensors to succeed", 1800,
                             lambda: counts(db, "waiters", "wait").get("success", 0) == n,
                             every=0.1)
    finally:
        if pid != proc.pid:
            os.kill(pid, 15)
        proc.terminate()
        proc.wait(timeout=60)

    rows = [
        ("sensors waiting at once", f"{n}", ""),
        ("poke interval", f"{args.poke_interval:g} s", ""),
        ("RSS idle, before the sensors", f"{idle_rss:.1f} MB", ""),
        ("time until all are deferred", f"{to_deferred:.1f} s", ""),
        (f"RSS while waiting (max over {args.window:g} s)", f"{rss_max['VmRSS']:.1f} MB", "< 100 MB"),
        ("  of which anonymous (heap, stacks) / file-backed / shared",
         f"{rss_max['RssAnon']:.1f} / {rss_max['RssFile']:.1f} / {rss_max['RssShmem']:.1f} MB", ""),
        ("CPU while waiting", f"{cpu_pct:.2f} % of a core", "< 5 %"),
        ("child processes while waiting (max)", f"{kids_max}", "0"),
        ("upstream success -> all sensors success", f"{release:.1f} s",
         f"<= poke interval ({args.poke_interval:g} s) + checking"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>22}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>22}  {target}")


if __name__ == "__main__":
    main()
