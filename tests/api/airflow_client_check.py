"""Drives a running `weir standalone` with apache-airflow-client 3.x, Airflow's own typed
Python client: every call below goes through the client's models (pydantic, strict), so a
field weir names or types differently from Airflow fails here.

Usage: airflow_client_check.py WEIR_BINARY
Creates a project with `weir init` in a temp folder, starts `weir standalone` on a free port
(harness.py), and exits non-zero with the failing step on the first error.
"""

import json
import sys
import time

import airflow_client.client as ac
from airflow_client.client.api import (backfill_api, connection_api, dag_api, dag_run_api, monitor_api,
                                       pool_api, task_instance_api, variable_api, version_api, x_com_api)
from airflow_client.client.models import (BackfillPostBody, DAGPatchBody, TriggerDAGRunPostBody, VariableBody)
from harness import Weir


def step(name):
    print(f"- {name}", flush=True)


def main():
    with Weir(sys.argv[1]) as weir:
        run_checks(weir)
    print("airflow-client check: all calls passed through the client's models")


def run_checks(weir):
    step("POST /auth/token")
    token = weir.token()
    cfg = ac.Configuration(host=weir.base)
    cfg.access_token = token
    client = ac.ApiClient(cfg)

    step("health and version")
    health = monitor_api.MonitorApi(client).get_health()
    assert health.metadatabase.status == "healthy", health
    version = version_api.VersionApi(client).get_version()
    assert version.version, version

    dags = dag_api.DAGApi(client)
    step("list DAGs")
    listing = dags.get_dags(limit=100)
    ids = sorted(d.dag_id for d in listing.dags)
    assert "example_daily" in ids, ids
    assert listing.total_entries == len(ids), listing.total_entries

    step("unpause")
    patched = dags.patch_dag("example_daily", DAGPatchBody(is_paused=False))
    assert patched.is_paused is False

    runs = dag_run_api.DagRunApi(client)
    step("trigger with conf")
    run = runs.trigger_dag_run("example_daily", TriggerDAGRunPostBody(logical_date=None, conf={"min_rows": 4}))
    assert run.conf == {"min_rows": 4}, run.conf
    run_id = run.dag_run_id

    step("poll the run to success")
    deadline = time.monotonic() + 120
    while True:
        got = runs.get_dag_run("example_daily", run_id)
        if got.state.value in ("success", "failed"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"run still {got.state} after 120 s")
        time.sleep(0.2)
    assert got.state.value == "success", got.state
    assert runs.get_dag_runs("example_daily").total_entries >= 1

    tis = task_instance_api.TaskInstanceApi(client)
    step("list its task instances")
    listed = tis.get_task_instances("example_daily", run_id)
    states = {t.task_id: t.state.value for t in listed.task_instances}
    assert states == {"extract": "success", "summarise": "success", "enough_rows": "success",
                      "report": "success"}, states

    step("read a task log")
    logs = tis.get_log("example_daily", run_id, "enough_rows", 1, full_content=True)
    text = json.dumps(logs.to_dict())
    assert "need at least 4" in text, text[:2000]  # the trigger's conf reached the template

    step("read XComs")
    xcoms = x_com_api.XComApi(client)
    entries = xcoms.get_xcom_entries("example_daily", run_id, "extract")
    assert [e.key for e in entries.xcom_entries] == ["return_value"], entries
    value = xcoms.get_xcom_entry(dag_id="example_daily", dag_run_id=run_id, task_id="extract",
                                 xcom_key="return_value")
    assert "events_" in str(value.actual_instance.value), value

    step("variables: create, read, update, delete")
    variables = variable_api.VariableApi(client)
    created = variables.post_variable(VariableBody(key="region", value="kr", description="where"))
    assert created.value == "kr"
    assert variables.get_variable("region").value == "kr"
    updated = variables.patch_variable("region", VariableBody(key="region", value="jp"))
    assert updated.value == "jp"
    assert any(v.key == "region" for v in variables.get_variables().variables)
    variables.delete_variable("region")
    try:
        variables.get_variable("region")
        raise AssertionError("a deleted variable is still there")
    except ac.exceptions.NotFoundException:
        pass

    step("list connections and pools")
    connection_api.ConnectionApi(client).get_connections()
    pools = pool_api.PoolApi(client).get_pools()
    assert any(p.name == "default_pool" for p in pools.pools), pools

    step("create a backfill")
    backfills = backfill_api.BackfillApi(client)
    bf = backfills.create_backfill(BackfillPostBody(dag_id="example_daily", from_date="2026-01-01T00:00:00Z",
                                                    to_date="2026-01-03T00:00:00Z"))
    assert bf.dag_id == "example_daily"
    assert backfills.get_backfill(bf.id).id == bf.id
    assert backfills.list_backfills(dag_id="example_daily").total_entries >= 1


if __name__ == "__main__":
    main()
