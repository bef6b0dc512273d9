"""Bounded schemathesis runs against a `weir standalone` (harness.py):

1. weir's own `/api/v2/openapi.json`: no response is a server error, and every response fits
   the schema weir documents;
2. Airflow's own OpenAPI document (`v2-rest-api-generated.yaml` from the apache-airflow-core
   wheel on PyPI, path given as AIRFLOW_OPENAPI), limited to the operations weir implements:
   no server error, and every response fits Airflow's schema.

Usage: schemathesis_check.py WEIR_BINARY AIRFLOW_OPENAPI [SECONDS_PER_RUN]
"""

import json
import os
import subprocess
import sys
import urllib.request

import yaml

from harness import Weir

CHECKS = "not_a_server_error,response_schema_conformance"


def schemathesis(args, budget):
    exe = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    cmd = [exe, "run", *args, "--checks", CHECKS, "--max-examples", "10", "--max-time", str(budget),
           "--workers", "2", "--phases", "examples,fuzzing,stateful", "--request-timeout", "20",
           "--seed", "1", "--no-color"]
    print("$", " ".join(a if "Bearer" not in a else "Authorization: Bearer ***" for a in cmd), flush=True)
    done = subprocess.run(cmd, text=True, capture_output=True, cwd=os.environ.get("ST_CWD", "/tmp"))
    print(done.stdout[-int(os.environ.get("ST_TAIL", "6000")):])
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"schemathesis found problems (exit {done.returncode})")


def main():
    weir_bin, airflow_spec = sys.argv[1], sys.argv[2]
    budget = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    with Weir(weir_bin) as weir:
        auth = "Authorization: Bearer " + weir.token()
        # Logging out would revoke the token the run goes on with.
        schemathesis([weir.base + "/api/v2/openapi.json", "-H", auth, "--exclude-path", "/auth/logout"], budget)

        with urllib.request.urlopen(weir.base + "/api/v2/openapi.json") as resp:
            ours = json.load(resp)
        theirs = yaml.safe_load(open(airflow_spec))
        ids = []
        # Airflow's own answer to a dry-run clear cannot validate against its schema: its items
        # are `oneOf` TaskInstanceResponse and NewTaskResponse, and every full task instance
        # also matches NewTaskResponse (no additionalProperties: false). weir's own document
        # (the first run) checks that operation.
        ambiguous = {"clear_dag_run"}
        for path, item in ours["paths"].items():
            for method in item:
                op = theirs.get("paths", {}).get(path, {}).get(method)
                if op and op.get("operationId") and op["operationId"] not in ambiguous:
                    ids.append(op["operationId"])
        print(f"{len(ids)} of Airflow's operations are implemented by weir: {', '.join(sorted(ids))}")
        assert len(ids) >= 30, ids
        print(f"left out, Airflow's schema is ambiguous there: {', '.join(sorted(ambiguous))}")
        args = [airflow_spec, "--url", weir.base, "-H", auth]
        for i in ids:
            args += ["--include-operation-id", i]
        schemathesis(args, budget)
    print("schemathesis: no server errors, no response outside weir's or Airflow's schema")


if __name__ == "__main__":
    main()
