//! `latest_only`: skips its direct downstream tasks unless the run is the latest scheduled
//! interval, as Airflow's `LatestOnlyOperator`: a manual run goes on; a scheduled or backfill
//! run goes on only while now lies in `(data_interval_end, the next interval's end]`.

use crate::{Decide, OpError, Operator, Plan, PlanContext, Verdict};
use jiff::Timestamp;
use weir_core::{DataInterval, Decision, RunType, Skip, Timetable, iso};

pub struct LatestOnly;

impl Operator for LatestOnly {
    fn name(&self) -> &'static str {
        "latest_only"
    }

    fn plan(&self, cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        let interval = DataInterval {
            start: cx.template.data_interval_start,
            end: cx.template.data_interval_end,
        };
        let timetable = Timetable::new(&cx.dag.schedule, cx.dag.tz()).ok();
        let downstream: Vec<String> = cx.downstream().into_iter().map(String::from).collect();
        Ok(Plan::Decide(Decide::Now(verdict(
            &cx.task.task_id,
            cx.run_type,
            interval,
            timetable.as_ref(),
            cx.now,
            downstream,
        ))))
    }
}

fn verdict(
    task_id: &str,
    run_type: RunType,
    interval: DataInterval,
    timetable: Option<&Timetable>,
    now: Timestamp,
    downstream: Vec<String>,
) -> Verdict {
    let go_on = |why: String| Verdict {
        decision: None,
        xcom: Some(serde_json::json!(downstream)),
        message: format!("latest_only '{task_id}': {why}; the downstream tasks go on"),
    };
    if run_type == RunType::Manual {
        return go_on("a manual run".into());
    }
    // Airflow asks the timetable for the interval after this one, unrestricted by the DAG's
    // start, end and catchup.
    let next = timetable
        .filter(|t| t.is_periodic())
        .and_then(|t| t.next_scheduled(Some(interval), None, None, true, now));
    let Some(next) = next else {
        return go_on("no interval follows this one".into());
    };
    if interval.end < now && now <= next.end {
        return go_on(format!(
            "the latest interval (now {} is after its end {} and not after the next one's {})",
            iso(now),
            iso(interval.end),
            iso(next.end)
        ));
    }
    let reason = format!(
        "latest_only '{task_id}': not the latest interval ({run_type} run of the interval ending {})",
        iso(interval.end)
    );
    Verdict {
        message: format!(
            "{reason}; now is {}, the latest interval ended after {}: the direct downstream tasks are skipped",
            iso(now),
            iso(next.end)
        ),
        xcom: Some(serde_json::json!([])),
        decision: Some(Decision {
            skip: Skip::DirectExcept(Vec::new()),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::Schedule;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn only_the_latest_interval_or_a_manual_run_goes_on() {
        let daily = Timetable::new(
            &Schedule::Cron {
                expr: "0 0 * * *".into(),
                text: "@daily".into(),
            },
            jiff::tz::TimeZone::UTC,
        )
        .unwrap();
        let day = |d: &str, e: &str| DataInterval {
            start: at(d),
            end: at(e),
        };
        let now = at("2026-01-16T10:00:00Z");
        let cases = [
            // The interval that ended at midnight is the latest.
            (
                RunType::Scheduled,
                day("2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z"),
                true,
            ),
            (
                RunType::Backfill,
                day("2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z"),
                true,
            ),
            // The day before it is not (catchup, backfill).
            (
                RunType::Scheduled,
                day("2026-01-14T00:00:00Z", "2026-01-15T00:00:00Z"),
                false,
            ),
            (
                RunType::Backfill,
                day("2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z"),
                false,
            ),
            // Nor is an interval that has not ended.
            (
                RunType::Backfill,
                day("2026-01-16T00:00:00Z", "2026-01-17T00:00:00Z"),
                false,
            ),
            (
                RunType::Manual,
                day("2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z"),
                true,
            ),
        ];
        for (run_type, interval, goes_on) in cases {
            let v = verdict(
                "latest",
                run_type,
                interval,
                Some(&daily),
                now,
                vec!["a".into()],
            );
            assert_eq!(
                v.decision.is_none(),
                goes_on,
                "{run_type} {interval:?}: {v:?}"
            );
        }
        let v = verdict(
            "latest",
            RunType::Scheduled,
            day("2026-01-14T00:00:00Z", "2026-01-15T00:00:00Z"),
            Some(&daily),
            now,
            vec![],
        );
        assert_eq!(
            v.decision.unwrap().reason,
            "latest_only 'latest': not the latest interval (scheduled run of the interval ending 2026-01-15T00:00:00+00:00)"
        );
        let never = Timetable::new(&Schedule::Never, jiff::tz::TimeZone::UTC).unwrap();
        let v = verdict(
            "latest",
            RunType::Scheduled,
            day("2026-01-14T00:00:00Z", "2026-01-15T00:00:00Z"),
            Some(&never),
            now,
            vec![],
        );
        assert!(v.decision.is_none(), "no later interval: go on");
    }
}
