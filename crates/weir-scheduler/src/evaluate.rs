//! Readiness: which task instances of a run may move, decided from the states of the run's
//! task instances, the decisions of its control-flow tasks (`branch`, `short_circuit`,
//! `latest_only`, recorded by workers with their success); then how the free capacity goes to
//! the ready instances of a round ([`ration`]). Pure: no store, no clock of its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use weir_core::state::{Readiness, UpstreamCounts};
use weir_core::{Dag, RunState, Skip, TaskState};
use weir_store::{Store, StoreError, TiRow, Transition};

/// Free slots: overall, per DAG, per pool.
#[derive(Debug, Clone)]
pub struct Capacity {
    pub parallelism_left: i64,
    pub dag_active: HashMap<String, i64>,
    pub pool_free: HashMap<String, i64>,
}

impl Capacity {
    pub(crate) async fn load(store: &Store, parallelism: usize) -> Result<Capacity, StoreError> {
        let counts = store.capacity_counts().await?;
        let dag_active: HashMap<String, i64> = counts.dag_active.into_iter().collect();
        let used: HashMap<String, i64> = counts.pool_used.into_iter().collect();
        let pool_free = counts
            .pools
            .into_iter()
            .map(|(name, slots)| {
                let free = slots - used.get(&name).copied().unwrap_or(0);
                (name, free)
            })
            .collect();
        Ok(Capacity {
            parallelism_left: parallelism as i64 - dag_active.values().sum::<i64>(),
            dag_active,
            pool_free,
        })
    }

    /// Takes room for one task instance, or says there is none.
    fn take(&mut self, dag: &Dag, pool: &str, slots: i64) -> bool {
        let dag_used = self.dag_active.get(&dag.dag_id).copied().unwrap_or(0);
        let pool_free = self.pool_free.get(pool).copied();
        if self.parallelism_left <= 0 || dag_used >= dag.max_active_tasks as i64 {
            return false;
        }
        if pool_free.is_some_and(|free| free < slots) {
            return false;
        }
        self.parallelism_left -= 1;
        *self.dag_active.entry(dag.dag_id.clone()).or_insert(0) += 1;
        if let Some(free) = self.pool_free.get_mut(pool) {
            *free -= slots;
        }
        true
    }
}

/// An instance ready to queue, waiting for its share of the room.
#[derive(Debug, Clone)]
pub struct Ready {
    pub priority: i64,
    pub logical_date: i64,
    pub pool: String,
    pub slots: i64,
    pub run: i64,
    pub dag: Arc<Dag>,
    /// Its move to `queued`.
    pub transition: Transition,
}

/// Hands the room (pools, `parallelism`, `max_active_tasks`) to the instances found ready in
/// one round, across all its runs: by priority weight, then the run's logical date, as
/// Airflow queues them, not in the order the runs were evaluated (a new run's first task
/// would wait behind older runs' chains). Returns the moves that got room and the instances
/// that did not, which the scheduler keeps for the next rounds' rationing. Waiting for room is
/// not written down (no `none -> scheduled` storm in a wide fan-out).
pub fn ration(mut ready: Vec<Ready>, capacity: &mut Capacity) -> (Vec<Transition>, Vec<Ready>) {
    ready.sort_by_key(|r| {
        (
            std::cmp::Reverse(r.priority),
            r.logical_date,
            r.transition.ti_id,
        )
    });
    let mut queued = Vec::new();
    let mut waiting = Vec::new();
    for r in ready {
        if capacity.take(&r.dag, &r.pool, r.slots) {
            queued.push(r.transition);
        } else {
            waiting.push(r);
        }
    }
    (queued, waiting)
}

/// What evaluating one run decided.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Every move but those to `queued`.
    pub moves: Vec<Transition>,
    /// The moves to `queued` (ready to run, or a retry whose time came): they wait for room
    /// ([`ration`]).
    pub ready: Vec<Transition>,
    /// Set when every task instance has finished.
    pub run_state: Option<RunState>,
    /// The earliest pending retry time.
    pub next_retry: Option<i64>,
    /// Instances of mapped tasks (map index -1) whose trigger rule says run: the scheduler
    /// renders their `map_over` and expands them (or skips or fails them) after this round.
    pub expand: Vec<i64>,
}

/// What evaluation needs of a DAG's structure, computed once per parsed DAG version rather
/// than on every evaluation: the tasks in dependency order, each task's upstream and
/// downstream tasks by index, the leaves, and task ids by index.
#[derive(Debug)]
pub struct DagShape {
    order: Vec<usize>,
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
    leaves: Vec<usize>,
    index: HashMap<String, usize>,
}

impl DagShape {
    pub fn new(dag: &Dag) -> DagShape {
        let index: HashMap<String, usize> = dag
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id.clone(), i))
            .collect();
        let upstream: Vec<Vec<usize>> = dag
            .tasks
            .iter()
            .map(|t| {
                t.depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); dag.tasks.len()];
        for (i, ups) in upstream.iter().enumerate() {
            for &u in ups {
                downstream[u].push(i);
            }
        }
        DagShape {
            order: topological_order(dag),
            leaves: (0..dag.tasks.len())
                .filter(|&i| downstream[i].is_empty())
                .collect(),
            upstream,
            downstream,
            index,
        }
    }

    /// Which tasks lie downstream of any of `from` (transitively, `from` included).
    fn reachable_from(&self, from: impl IntoIterator<Item = usize>) -> Vec<bool> {
        let mut seen = vec![false; self.upstream.len()];
        let mut stack: Vec<usize> = from.into_iter().collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(&self.downstream[i]);
            }
        }
        seen
    }
}

/// Why task `index` is skipped by a decision of a control-flow task upstream of it, if it is,
/// as Airflow's `SkipMixin`: a `branch` (or `latest_only`) skips its direct downstream tasks
/// that it did not choose, except those downstream of a chosen one (a join right after the
/// branch); a `short_circuit` that ignores trigger rules skips everything downstream of it,
/// which `forced` carries down the order. Only a decision of a successful instance counts: a
/// cleared one is gone, and clearing a skipped task alone skips it again (Airflow's
/// `NotPreviouslySkippedDep`).
fn skipped_by<'a>(
    shape: &DagShape,
    by_task: &[Option<&'a TiRow>],
    state: &[Option<TaskState>],
    forced: &[Option<&'a str>],
    chosen_reach: &mut HashMap<usize, Vec<bool>>,
    index: usize,
) -> (Option<&'a str>, Option<&'a str>) {
    let mut all_downstream = None;
    let mut direct = None;
    for &up in &shape.upstream[index] {
        if all_downstream.is_none() {
            all_downstream = forced[up];
        }
        let decision = match (state[up], by_task[up]) {
            (Some(TaskState::Success), Some(ti)) => ti.decision.as_ref(),
            _ => None,
        };
        let Some(decision) = decision else {
            continue;
        };
        match &decision.skip {
            Skip::AllDownstream => {
                all_downstream.get_or_insert(decision.reason.as_str());
            }
            Skip::DirectExcept(chosen) if direct.is_none() => {
                let reach = chosen_reach.entry(up).or_insert_with(|| {
                    shape.reachable_from(chosen.iter().filter_map(|c| shape.index.get(c).copied()))
                });
                if !reach[index] {
                    direct = Some(decision.reason.as_str());
                }
            }
            Skip::DirectExcept(_) => {}
        }
    }
    (all_downstream, direct)
}

/// Decides, for one running run, which task instances move where. Pure: reads the current
/// states and returns compare-and-set transitions.
pub fn evaluate_run(
    dag: &Dag,
    tis: &[TiRow],
    now: i64,
    past: &HashMap<String, TaskState>,
) -> RunOutcome {
    evaluate_shaped(dag, &DagShape::new(dag), tis, now, past)
}

/// [`evaluate_run`] with the DAG's shape computed beforehand (the scheduler keeps one per
/// DAG version): linear in the run's task instances and dependencies.
pub fn evaluate_shaped(
    dag: &Dag,
    shape: &DagShape,
    tis: &[TiRow],
    now: i64,
    past: &HashMap<String, TaskState>,
) -> RunOutcome {
    let mut out = RunOutcome::default();
    // Per task (by index): its instances (one, or a mapped task's items), the first of them
    // and that one's state as this evaluation sees it (what control-flow decisions read).
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); dag.tasks.len()];
    let mut by_task: Vec<Option<&TiRow>> = vec![None; dag.tasks.len()];
    let mut state: Vec<Option<TaskState>> = vec![None; dag.tasks.len()];
    // Per instance (by position in `tis`): its state as this evaluation sees it.
    let mut current: Vec<TaskState> = tis.iter().map(|t| t.state).collect();
    for (n, ti) in tis.iter().enumerate() {
        match shape.index.get(ti.task_id.as_str()) {
            Some(&i) => {
                if members[i].is_empty() {
                    by_task[i] = Some(ti);
                    state[i] = Some(ti.state);
                }
                members[i].push(n);
            }
            // Instances of tasks that left the DAG file end as `removed` (running ones end on
            // their own); they no longer count for the run's state.
            None => {
                if let Some(m) = removal(ti) {
                    out.moves.push(m);
                }
            }
        }
    }
    let mut unfinished = tis.iter().filter(|t| !t.state.is_finished()).count() - out.moves.len();
    // Per task: the reason when a short_circuit upstream of it skips everything downstream.
    let mut forced: Vec<Option<&str>> = vec![None; dag.tasks.len()];
    let mut chosen_reach: HashMap<usize, Vec<bool>> = HashMap::new();
    for &index in &shape.order {
        let task = &dag.tasks[index];
        let (all_downstream, direct) =
            skipped_by(shape, &by_task, &state, &forced, &mut chosen_reach, index);
        forced[index] = all_downstream;
        // Trigger rules see every instance upstream: each item of a mapped task counts, as
        // in Airflow. Upstream tasks come first in the order, so their moves of this round
        // are in `current` already.
        let mut counts = UpstreamCounts::default();
        for &up in &shape.upstream[index] {
            if members[up].is_empty() {
                counts.add(TaskState::Removed);
            }
            for &m in &members[up] {
                counts.add(current[m]);
            }
        }
        // A dependency on a task that is not in the DAG counts as removed.
        for _ in shape.upstream[index].len()..task.depends_on.len() {
            counts.add(TaskState::Removed);
        }
        for &m in &members[index] {
            let ti = &tis[m];
            let mut reason = None;
            let next = match current[m] {
                TaskState::None | TaskState::Scheduled if all_downstream.or(direct).is_some() => {
                    reason = all_downstream.or(direct);
                    Some(TaskState::Skipped)
                }
                TaskState::None | TaskState::Scheduled => {
                    match task.trigger_rule.evaluate(counts) {
                        Readiness::Wait => None,
                        Readiness::Skip => Some(TaskState::Skipped),
                        Readiness::UpstreamFailed => Some(TaskState::UpstreamFailed),
                        Readiness::Run => {
                            let past_ok = !task.depends_on_past
                                || past.get(&task.task_id).is_none_or(|s| {
                                    matches!(s, TaskState::Success | TaskState::Skipped)
                                });
                            if past_ok && task.map_over.is_some() && ti.map_index < 0 {
                                out.expand.push(ti.id);
                                None
                            } else if past_ok && ends_in_scheduler(task) {
                                Some(TaskState::Success)
                            } else if past_ok {
                                Some(TaskState::Queued)
                            } else {
                                None
                            }
                        }
                    }
                }
                // A retry, or a sensor's next poke, once its time has come.
                TaskState::UpForRetry | TaskState::UpForReschedule => match ti.next_retry_at {
                    Some(at) if at > now => {
                        out.next_retry = Some(out.next_retry.map_or(at, |n: i64| n.min(at)));
                        None
                    }
                    _ => Some(TaskState::Queued),
                },
                _ => None,
            };
            if let Some(to) = next {
                let transition = Transition {
                    ti_id: ti.id,
                    from: current[m],
                    to,
                    next_retry_at: None,
                    reason: reason.map(String::from),
                };
                if to == TaskState::Queued {
                    out.ready.push(transition);
                } else {
                    out.moves.push(transition);
                }
                if to.is_finished() {
                    unfinished -= 1;
                }
                current[m] = to;
            }
        }
        state[index] = members[index].first().map(|&m| current[m]);
    }
    if tis.is_empty() {
        out.run_state = Some(RunState::Success);
    } else if unfinished == 0 {
        let leaves_failed = shape.leaves.iter().any(|&i| {
            members[i]
                .iter()
                .any(|&m| matches!(current[m], TaskState::Failed | TaskState::UpstreamFailed))
        });
        out.run_state = Some(if leaves_failed {
            RunState::Failed
        } else {
            RunState::Success
        });
    }
    out
}

/// An `empty` task with nothing to announce (no success or execute notification, no
/// outlets) succeeds as soon as it is ready, without a worker or a try, as Airflow's scheduler
/// does with `EmptyOperator`: a join costs one write, not a claim, a log and a finish.
pub fn ends_in_scheduler(task: &weir_core::Task) -> bool {
    task.task_type == "empty"
        && task.outlets.is_empty()
        && !task.callbacks.contains_key("on_success")
        && !task.callbacks.contains_key("on_execute")
        && task.map_over.is_none()
}

/// The move that ends a task instance whose task is gone (from the file, or with its DAG):
/// `removed`, unless it already finished or a try is running (that one ends on its own).
pub fn removal(ti: &TiRow) -> Option<Transition> {
    let ends =
        !ti.state.is_finished() && !matches!(ti.state, TaskState::Running | TaskState::Restarting);
    ends.then_some(Transition {
        ti_id: ti.id,
        from: ti.state,
        to: TaskState::Removed,
        next_retry_at: None,
        reason: None,
    })
}

/// Task indexes with every task after its upstream tasks (the spec rejects cycles; anything
/// left over is appended in file order so that nothing is lost).
pub fn topological_order(dag: &Dag) -> Vec<usize> {
    let index: HashMap<&str, usize> = dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task_id.as_str(), i))
        .collect();
    let mut indegree: Vec<usize> = dag
        .tasks
        .iter()
        .map(|t| {
            t.depends_on
                .iter()
                .filter(|d| index.contains_key(d.as_str()))
                .count()
        })
        .collect();
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); dag.tasks.len()];
    for (i, t) in dag.tasks.iter().enumerate() {
        for d in &t.depends_on {
            if let Some(&u) = index.get(d.as_str()) {
                downstream[u].push(i);
            }
        }
    }
    let mut ready: std::collections::VecDeque<usize> =
        (0..dag.tasks.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(dag.tasks.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &d in &downstream[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    if order.len() < dag.tasks.len() {
        let seen: HashSet<usize> = order.iter().copied().collect();
        order.extend((0..dag.tasks.len()).filter(|i| !seen.contains(i)));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::TriggerRule;

    fn task(id: &str, deps: &[&str], rule: TriggerRule) -> weir_core::Task {
        weir_core::Task {
            task_id: id.into(),
            task_type: "shell".into(),
            config: Default::default(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            trigger_rule: rule,
            depends_on_past: false,
            retries: 0,
            retry_delay: Default::default(),
            retry_exponential_backoff: false,
            max_retry_delay: None,
            execution_timeout: None,
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: 1,
            queue: "default".into(),
            params: Default::default(),
            env: Default::default(),
            callbacks: Default::default(),
            sla: None,
            doc: None,
            group: None,
            map_over: None,
            outlets: vec![],
            line: 1,
        }
    }

    fn dag(tasks: Vec<weir_core::Task>) -> Dag {
        Dag {
            dag_id: "d".into(),
            fileloc: "dags/d.yaml".into(),
            description: None,
            owner: None,
            tags: vec![],
            schedule: weir_core::Schedule::Never,
            timezone: "UTC".into(),
            start_date: None,
            end_date: None,
            catchup: false,
            max_active_runs: 16,
            max_active_tasks: 16,
            is_paused_upon_creation: None,
            params: Default::default(),
            callbacks: Default::default(),
            doc: None,
            tasks,
        }
    }

    fn ti(id: i64, task_id: &str, state: TaskState) -> TiRow {
        TiRow {
            id,
            run_pk: 1,
            dag_id: "d".into(),
            run_id: "r".into(),
            task_id: task_id.into(),
            map_index: -1,
            state,
            try_number: 0,
            max_tries: 0,
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: 1,
            queue: "default".into(),
            worker: None,
            pid: None,
            queued_at: None,
            start_date: None,
            end_date: None,
            heartbeat: None,
            next_retry_at: None,
            decision: None,
            reason: None,
            map_item: None,
            sensor: None,
        }
    }

    impl RunOutcome {
        /// The moves and the moves to `queued`, by task instance.
        fn every_move(&self) -> Vec<Transition> {
            let mut all: Vec<Transition> = self.moves.iter().chain(&self.ready).cloned().collect();
            all.sort_by_key(|m| m.ti_id);
            all
        }
    }

    fn room(parallelism: i64) -> Capacity {
        Capacity {
            parallelism_left: parallelism,
            dag_active: HashMap::new(),
            pool_free: HashMap::from([("default_pool".to_string(), 128)]),
        }
    }

    use TaskState as S;
    use TriggerRule as R;

    /// One case: the upstream states of `b` (which depends on `a1` and `a2`) and what `b` does.
    struct Case {
        rule: TriggerRule,
        upstream: [TaskState; 2],
        expect: Option<TaskState>,
    }

    #[test]
    fn trigger_rules_decide_the_downstream_move() {
        let cases = [
            Case {
                rule: R::AllSuccess,
                upstream: [S::Success, S::Success],
                expect: Some(S::Queued),
            },
            Case {
                rule: R::AllSuccess,
                upstream: [S::Success, S::Running],
                expect: None,
            },
            Case {
                rule: R::AllSuccess,
                upstream: [S::Success, S::Failed],
                expect: Some(S::UpstreamFailed),
            },
            Case {
                rule: R::AllSuccess,
                upstream: [S::Success, S::Skipped],
                expect: Some(S::Skipped),
            },
            Case {
                rule: R::AllFailed,
                upstream: [S::Failed, S::Failed],
                expect: Some(S::Queued),
            },
            Case {
                rule: R::AllFailed,
                upstream: [S::Failed, S::Success],
                expect: Some(S::Skipped),
            },
            Case {
                rule: R::AllDone,
                upstream: [S::Failed, S::Skipped],
                expect: Some(S::Queued),
            },
            Case {
                rule: R::AllDone,
                upstream: [S::Failed, S::Queued],
                expect: None,
            },
            Case {
                rule: R::OneSuccess,
                upstream: [S::Success, S::Running],
                expect: Some(S::Queued),
            },
            Case {
                rule: R::OneFailed,
                upstream: [S::Failed, S::Running],
                expect: Some(S::Queued),
            },
            Case {
                rule: R::NoneFailed,
                upstream: [S::Success, S::Skipped],
                expect: Some(S::Queued),
            },
            Case {
                rule: R::NoneFailed,
                upstream: [S::Success, S::UpstreamFailed],
                expect: Some(S::UpstreamFailed),
            },
            Case {
                rule: R::NoneFailedMinOneSuccess,
                upstream: [S::Skipped, S::Skipped],
                expect: Some(S::Skipped),
            },
            Case {
                rule: R::NoneFailedMinOneSuccess,
                upstream: [S::Skipped, S::Success],
                expect: Some(S::Queued),
            },
            Case {
                rule: R::Always,
                upstream: [S::Running, S::None],
                expect: Some(S::Queued),
            },
        ];
        let d = dag(vec![
            task("a1", &[], R::AllSuccess),
            task("a2", &[], R::AllSuccess),
            task("b", &["a1", "a2"], R::AllSuccess),
        ]);
        for case in cases {
            let mut d = d.clone();
            d.tasks[2].trigger_rule = case.rule;
            let tis = [
                ti(1, "a1", case.upstream[0]),
                ti(2, "a2", case.upstream[1]),
                ti(3, "b", S::None),
            ];
            let out = evaluate_run(&d, &tis, 0, &HashMap::new());
            let moved = out.every_move().iter().find(|m| m.ti_id == 3).map(|m| m.to);
            assert_eq!(
                moved, case.expect,
                "{:?} with {:?}",
                case.rule, case.upstream
            );
        }
    }

    #[test]
    fn empty_tasks_end_in_the_scheduler_and_their_downstream_moves_in_the_same_round() {
        let mut start = task("start", &[], R::AllSuccess);
        start.task_type = "empty".into();
        let mut end = task("end", &["work"], R::AllSuccess);
        end.task_type = "empty".into();
        let mut announced = task("announced", &["start"], R::AllSuccess);
        announced.task_type = "empty".into();
        announced
            .callbacks
            .insert("on_success".into(), serde_json::json!([]));
        let d = dag(vec![
            start,
            task("work", &["start"], R::AllSuccess),
            end,
            announced,
        ]);
        let tis = [
            ti(1, "start", S::None),
            ti(2, "work", S::None),
            ti(3, "end", S::None),
            ti(4, "announced", S::None),
        ];
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        let moves: Vec<(i64, TaskState)> =
            out.every_move().iter().map(|m| (m.ti_id, m.to)).collect();
        assert_eq!(
            moves,
            [(1, S::Success), (2, S::Queued), (4, S::Queued)],
            "start ends at once; work and the empty task with a notification go to a worker"
        );
        let tis = [
            ti(1, "start", S::Success),
            ti(2, "work", S::Success),
            ti(3, "end", S::None),
            ti(4, "announced", S::Success),
        ];
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        let every = out.every_move();
        assert_eq!(every.len(), 1);
        assert_eq!(
            (every[0].ti_id, every[0].to),
            (3, S::Success),
            "no room is needed"
        );
        assert_eq!(out.run_state, Some(RunState::Success));
    }

    /// The ready instances of `out` (of run `run` of `d`), each with priority `priority`.
    fn ready(d: &Dag, run: i64, priority: i64, out: RunOutcome) -> Vec<Ready> {
        let d = Arc::new(d.clone());
        out.ready
            .into_iter()
            .map(|transition| Ready {
                priority,
                logical_date: run,
                pool: "default_pool".into(),
                slots: 1,
                run,
                dag: d.clone(),
                transition,
            })
            .collect()
    }

    fn runs_of(waiting: &[Ready]) -> HashSet<i64> {
        waiting.iter().map(|r| r.run).collect()
    }

    #[test]
    fn a_full_parallelism_leaves_ready_instances_unwritten() {
        let d = dag(vec![
            task("a", &[], R::AllSuccess),
            task("b", &[], R::AllSuccess),
        ]);
        let tis = [ti(1, "a", S::None), ti(2, "b", S::None)];
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        assert!(out.moves.is_empty());
        let (queued, waiting) = ration(ready(&d, 7, 1, out), &mut room(1));
        assert_eq!(
            queued.len(),
            1,
            "one queued, the other waits without a write"
        );
        assert_eq!(queued[0].to, S::Queued);
        assert_eq!(runs_of(&waiting), HashSet::from([7]));
    }

    #[test]
    fn room_goes_by_priority_then_logical_date_across_runs() {
        let d = dag(vec![task("a", &[], R::AllSuccess)]);
        let mut pooled = dag(vec![task("p", &[], R::AllSuccess)]);
        pooled.dag_id = "pooled".into();
        pooled.max_active_tasks = 1;
        let evaluated = |d: &Dag, id: i64| {
            evaluate_run(
                d,
                &[ti(id, &d.tasks[0].task_id, S::None)],
                0,
                &HashMap::new(),
            )
        };
        // Runs as evaluated: 1 (old, light), 2 (newer, heavy), 3 (older than 2, heavy);
        // two of `pooled` with max_active_tasks 1.
        let mut all = ready(&d, 1, 1, evaluated(&d, 10));
        all.extend(ready(&d, 2, 5, evaluated(&d, 20)));
        all.extend(ready(&d, 3, 5, evaluated(&d, 30)));
        all.extend(ready(&pooled, 4, 9, evaluated(&pooled, 40)));
        all.extend(ready(&pooled, 5, 9, evaluated(&pooled, 50)));
        for r in &mut all {
            r.logical_date = match r.run {
                1 => 100,
                2 => 300,
                3 => 200,
                4 => 400,
                _ => 500,
            };
        }
        let (queued, waiting) = ration(all, &mut room(3));
        let ids: Vec<i64> = queued.iter().map(|m| m.ti_id).collect();
        assert_eq!(
            ids,
            [40, 30, 20],
            "the heaviest first, the older of equal weights first; one of `pooled` at a time"
        );
        assert_eq!(runs_of(&waiting), HashSet::from([1, 5]));
    }

    #[test]
    fn instances_of_tasks_that_left_the_file_are_removed_and_the_run_finishes() {
        let d = dag(vec![task("a", &[], R::AllSuccess)]);
        let tis = [ti(1, "a", S::Success), ti(2, "gone", S::None)];
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        let every = out.every_move();
        assert_eq!(every.len(), 1);
        assert_eq!((every[0].ti_id, every[0].to), (2, S::Removed));
        assert_eq!(out.run_state, Some(RunState::Success));
    }

    #[test]
    fn a_failed_leaf_fails_the_run_and_retries_wait_for_their_time() {
        let d = dag(vec![
            task("a", &[], R::AllSuccess),
            task("b", &[], R::AllSuccess),
        ]);
        let out = evaluate_run(
            &d,
            &[ti(1, "a", S::Success), ti(2, "b", S::Failed)],
            0,
            &HashMap::new(),
        );
        assert_eq!(out.run_state, Some(RunState::Failed));
        let mut retry = ti(2, "b", S::UpForRetry);
        retry.next_retry_at = Some(100);
        let out = evaluate_run(
            &d,
            &[ti(1, "a", S::Success), retry.clone()],
            50,
            &HashMap::new(),
        );
        assert!(out.every_move().is_empty());
        assert_eq!(out.next_retry, Some(100));
        let out = evaluate_run(&d, &[ti(1, "a", S::Success), retry], 100, &HashMap::new());
        assert_eq!(out.every_move()[0].to, S::Queued);
    }

    #[test]
    fn a_mapped_task_expands_when_ready_and_each_item_counts_for_trigger_rules() {
        let mut load = task("load", &["list"], R::AllSuccess);
        load.map_over = Some(serde_json::json!("{{ ti.xcom_pull(task_ids='list') }}"));
        let d = dag(vec![
            task("list", &[], R::AllSuccess),
            load,
            task("after", &["load"], R::AllSuccess),
            task("done", &["load"], R::AllDone),
        ]);
        let moves = |out: &RunOutcome| -> Vec<(i64, TaskState)> {
            out.every_move().iter().map(|m| (m.ti_id, m.to)).collect()
        };
        // Not expanded yet: the scheduler is asked to expand it; nothing else moves.
        let tis = [
            ti(1, "list", S::Success),
            ti(2, "load", S::None),
            ti(3, "after", S::None),
            ti(4, "done", S::None),
        ];
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        assert_eq!(out.expand, [2]);
        assert_eq!(moves(&out), []);
        assert_eq!(out.run_state, None);
        // Expanded into three items: each is queued on its own, within the room there is.
        let item = |id: i64, map_index: i64, state: TaskState| TiRow {
            map_index,
            ..ti(id, "load", state)
        };
        let with = |items: [TaskState; 3]| {
            vec![
                ti(1, "list", S::Success),
                item(2, 0, items[0]),
                item(5, 1, items[1]),
                item(6, 2, items[2]),
                ti(3, "after", S::None),
                ti(4, "done", S::None),
            ]
        };
        let out = evaluate_run(&d, &with([S::None; 3]), 0, &HashMap::new());
        assert!(out.expand.is_empty());
        assert_eq!(
            moves(&out),
            [(2, S::Queued), (5, S::Queued), (6, S::Queued)]
        );
        let (queued, waiting) = ration(ready(&d, 1, 1, out), &mut room(2));
        assert_eq!(queued.len(), 2);
        assert_eq!(runs_of(&waiting), HashSet::from([1]));
        // Downstream sees each item's state: one failed item is enough for all_success to
        // give up, all_done waits for the last one.
        let tis = with([S::Success, S::Failed, S::Running]);
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        assert_eq!(moves(&out), [(3, S::UpstreamFailed)]);
        let tis = with([S::Success, S::Success, S::Running]);
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        assert_eq!(moves(&out), []);
        let tis = with([S::Success, S::Failed, S::Success]);
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        assert_eq!(moves(&out), [(3, S::UpstreamFailed), (4, S::Queued)]);
        // A failed item of a leaf fails the run.
        let d = dag(vec![task("list", &[], R::AllSuccess), d.tasks[1].clone()]);
        let tis = [
            ti(1, "list", S::Success),
            item(2, 0, S::Success),
            item(5, 1, S::Failed),
        ];
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        assert_eq!(out.run_state, Some(RunState::Failed));
    }

    /// A decided instance: `task_id` succeeded with `skip`, for `reason`.
    fn decided(id: i64, task_id: &str, skip: weir_core::Skip) -> TiRow {
        TiRow {
            decision: Some(weir_core::Decision {
                skip,
                reason: format!("{task_id} decided"),
            }),
            ..ti(id, task_id, S::Success)
        }
    }

    /// One case of control flow: the deciding task `c` (upstream of everything below), its
    /// decision, the instances' states, and what each instance moves to (with the reason).
    struct FlowCase {
        what: &'static str,
        skip: weir_core::Skip,
        states: &'static [(&'static str, TaskState)],
        expect: &'static [(&'static str, TaskState, Option<&'static str>)],
    }

    #[test]
    fn decisions_of_control_flow_tasks_skip_their_downstream_as_airflow() {
        use weir_core::Skip;
        // c -> a -> a2 -> done(all_done); c -> b -> b2; c -> join(none_failed_min_one_success)
        // with a2 and b2 also upstream of join; side(one_success) after c and a free task x.
        let done = task("done", &["a2"], R::AllDone);
        let d = dag(vec![
            task("c", &[], R::AllSuccess),
            task("a", &["c"], R::AllSuccess),
            task("a2", &["a"], R::AllSuccess),
            done,
            task("b", &["c"], R::AllSuccess),
            task("b2", &["b"], R::AllSuccess),
            task("join", &["c", "a2", "b2"], R::NoneFailedMinOneSuccess),
            task("x", &[], R::AllSuccess),
            task("side", &["c", "x"], R::OneSuccess),
        ]);
        let cases = [
            FlowCase {
                what: "a branch that chose a skips b (and b2 by its trigger rule, in the same round); the join after a is not skipped",
                skip: Skip::DirectExcept(vec!["a".into()]),
                states: &[
                    ("a", S::None),
                    ("a2", S::None),
                    ("b", S::None),
                    ("b2", S::None),
                    ("join", S::None),
                    ("side", S::None),
                    ("x", S::Running),
                ],
                expect: &[
                    ("a", S::Queued, None),
                    ("b", S::Skipped, Some("c decided")),
                    ("side", S::Skipped, Some("c decided")),
                    ("b2", S::Skipped, None),
                ],
            },
            FlowCase {
                what: "the chosen task's own downstream waits as usual; a skipped path follows trigger rules",
                skip: Skip::DirectExcept(vec!["a".into()]),
                states: &[
                    ("a", S::Success),
                    ("a2", S::None),
                    ("b", S::Skipped),
                    ("b2", S::None),
                ],
                expect: &[("a2", S::Queued, None), ("b2", S::Skipped, None)],
            },
            FlowCase {
                what: "the join runs once one path succeeded and the other was skipped",
                skip: Skip::DirectExcept(vec!["a".into()]),
                states: &[
                    ("a", S::Success),
                    ("a2", S::Success),
                    ("b", S::Skipped),
                    ("b2", S::Skipped),
                    ("join", S::None),
                ],
                expect: &[("join", S::Queued, None)],
            },
            FlowCase {
                what: "choosing nothing skips every direct downstream task",
                skip: Skip::DirectExcept(vec![]),
                states: &[
                    ("a", S::None),
                    ("b", S::None),
                    ("join", S::None),
                    ("x", S::Success),
                    ("side", S::None),
                ],
                expect: &[
                    ("a", S::Skipped, Some("c decided")),
                    ("b", S::Skipped, Some("c decided")),
                    ("side", S::Skipped, Some("c decided")),
                    ("join", S::Skipped, Some("c decided")),
                ],
            },
            FlowCase {
                what: "a short_circuit ignoring trigger rules skips all downstream, all_done too, in one round",
                skip: Skip::AllDownstream,
                states: &[
                    ("a", S::None),
                    ("a2", S::None),
                    ("done", S::None),
                    ("b", S::None),
                    ("b2", S::None),
                    ("join", S::None),
                ],
                expect: &[
                    ("a", S::Skipped, Some("c decided")),
                    ("b", S::Skipped, Some("c decided")),
                    ("a2", S::Skipped, Some("c decided")),
                    ("b2", S::Skipped, Some("c decided")),
                    ("done", S::Skipped, Some("c decided")),
                    ("join", S::Skipped, Some("c decided")),
                ],
            },
            FlowCase {
                what: "everything downstream stays skipped in a later round, whatever finished between",
                skip: Skip::AllDownstream,
                states: &[("a", S::Skipped), ("a2", S::Skipped), ("done", S::None)],
                expect: &[("done", S::Skipped, Some("c decided"))],
            },
            FlowCase {
                what: "respecting trigger rules, the all_done task after the skipped chain runs",
                skip: Skip::DirectExcept(vec![]),
                states: &[("a", S::Skipped), ("a2", S::Skipped), ("done", S::None)],
                expect: &[("done", S::Queued, None)],
            },
            FlowCase {
                what: "a task cleared alone after its skip is skipped again",
                skip: Skip::DirectExcept(vec!["a".into()]),
                states: &[("a", S::Success), ("b", S::None)],
                expect: &[("b", S::Skipped, Some("c decided"))],
            },
            FlowCase {
                what: "a task that already runs is left alone",
                skip: Skip::AllDownstream,
                states: &[("a", S::Running), ("b", S::Success)],
                expect: &[],
            },
        ];
        for case in cases {
            let mut tis = vec![decided(1, "c", case.skip.clone())];
            for (i, (id, state)) in case.states.iter().enumerate() {
                tis.push(ti(i as i64 + 2, id, *state));
            }
            let out = evaluate_run(&d, &tis, 0, &HashMap::new());
            let every = out.every_move();
            let mut moves: Vec<(&str, TaskState, Option<&str>)> = every
                .iter()
                .map(|m| {
                    let id = tis
                        .iter()
                        .find(|t| t.id == m.ti_id)
                        .unwrap()
                        .task_id
                        .as_str();
                    (id, m.to, m.reason.as_deref())
                })
                .collect();
            // By task id: the order of the moves is not part of the decision.
            moves.sort_by_key(|m| m.0);
            let mut expect = case.expect.to_vec();
            expect.sort_by_key(|m| m.0);
            assert_eq!(moves, expect, "{}", case.what);
        }
        // An unsuccessful instance's decision does not count: its downstream follows trigger
        // rules (a failed branch makes them upstream_failed).
        let tis = [
            TiRow {
                state: S::Failed,
                ..decided(1, "c", Skip::DirectExcept(vec!["a".into()]))
            },
            ti(2, "b", S::None),
        ];
        let out = evaluate_run(&d, &tis, 0, &HashMap::new());
        assert_eq!(
            out.every_move()
                .iter()
                .map(|m| (m.to, m.reason.clone()))
                .collect::<Vec<_>>(),
            [(S::UpstreamFailed, None)]
        );
    }
}
