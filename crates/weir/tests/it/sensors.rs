//! trigger_dag and wait_for across DAGs: what `dags validate` can tell from the DAG folder.
//! (The operators, the `deferred` state and the triggerer are not in this build yet.)

use crate::support::Project;

#[test]
fn a_trigger_or_sensor_naming_an_unknown_dag_or_task_is_refused_at_validation_with_file_and_line() {
    let p = Project::new();
    p.dag("raw_events", "tasks:\n  - id: load\n    type: empty\n");
    p.dag(
        "parent",
        "tasks:\n  - id: start\n    type: empty\n  - id: kick\n    type: trigger_dag\n    dag_id: raw_event\n  - id: upstream_done\n    type: wait_for\n    dag_id: raw_events\n    task_id: lod\n  - id: elsewhere\n    type: wait_for\n    dag_id: nowhere\n    task_id: load\n  - id: fine\n    type: wait_for\n    dag_id: raw_events\n    task_id: load\n",
    );
    let (code, stdout, stderr) = p.run(&["dags", "validate"]);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(
            "error: task 'kick' of DAG 'parent' triggers DAG 'raw_event', which is not in the DAG folder\n  --> dags/parent.yaml:4\nhint: did you mean 'raw_events'?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "error: task 'upstream_done' of DAG 'parent' waits for task 'lod' of DAG 'raw_events', which has no such task\n  --> dags/parent.yaml:7\nhint: did you mean 'load'?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "error: task 'elsewhere' of DAG 'parent' waits for DAG 'nowhere', which is not in the DAG folder\n  --> dags/parent.yaml:11"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("task 'fine' of DAG"), "{stderr}");
    assert!(stderr.contains("7 problems in 1 of 2 files"), "{stderr}");
    assert!(!stderr.contains("raw_events.yaml"), "{stderr}");
}
