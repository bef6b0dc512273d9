//! Task-instance and run states, trigger rules, and how a trigger rule reads its upstream states.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name users see and the store keeps.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} '{}'", stringify!($name), other)),
                }
            }
        }
    };
}

string_enum! {
    /// The state of one task instance, as in Airflow.
    TaskState {
        None = "none",
        Scheduled = "scheduled",
        Queued = "queued",
        Running = "running",
        Success = "success",
        Failed = "failed",
        Skipped = "skipped",
        UpstreamFailed = "upstream_failed",
        UpForRetry = "up_for_retry",
        UpForReschedule = "up_for_reschedule",
        // A sensor (or a waiting `trigger_dag`) handed to the triggerer: no slot, no process.
        Deferred = "deferred",
        Removed = "removed",
        // Cleared while a try ran: the try is being stopped, then the instance runs anew.
        Restarting = "restarting",
    }
}

// `none` is Airflow's "no state yet"; the enum comes from a macro, so the variant cannot be
// marked `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for TaskState {
    fn default() -> Self {
        TaskState::None
    }
}

impl TaskState {
    /// A state the task instance will not leave on its own.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Success
                | TaskState::Failed
                | TaskState::Skipped
                | TaskState::UpstreamFailed
                | TaskState::Removed
        )
    }
}

string_enum! {
    /// The state of a DAG run.
    RunState {
        Queued = "queued",
        Running = "running",
        Success = "success",
        Failed = "failed",
    }
}

impl RunState {
    pub fn is_finished(self) -> bool {
        matches!(self, RunState::Success | RunState::Failed)
    }
}

string_enum! {
    /// Why a run exists; also the prefix of its run id (`scheduled__2026-01-01T00:00:00+00:00`).
    RunType {
        Scheduled = "scheduled",
        Manual = "manual",
        Backfill = "backfill",
        AssetTriggered = "asset_triggered",
    }
}

string_enum! {
    /// When a task may run, given the states of its direct upstream tasks (Airflow's eleven rules).
    TriggerRule {
        AllSuccess = "all_success",
        AllFailed = "all_failed",
        AllDone = "all_done",
        AllSkipped = "all_skipped",
        OneSuccess = "one_success",
        OneFailed = "one_failed",
        OneDone = "one_done",
        NoneFailed = "none_failed",
        NoneFailedMinOneSuccess = "none_failed_min_one_success",
        NoneSkipped = "none_skipped",
        Always = "always",
    }
}

// The enum comes from a macro, so `#[derive(Default)]` cannot mark the variant.
#[allow(clippy::derivable_impls)]
impl Default for TriggerRule {
    fn default() -> Self {
        TriggerRule::AllSuccess
    }
}

/// Counts of the direct upstream tasks' states, the only input a trigger rule reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamCounts {
    pub total: usize,
    pub success: usize,
    pub skipped: usize,
    pub failed: usize,
    pub upstream_failed: usize,
    pub removed: usize,
}

impl UpstreamCounts {
    pub fn add(&mut self, state: TaskState) {
        self.total += 1;
        match state {
            TaskState::Success => self.success += 1,
            TaskState::Skipped => self.skipped += 1,
            TaskState::Failed => self.failed += 1,
            TaskState::UpstreamFailed => self.upstream_failed += 1,
            TaskState::Removed => self.removed += 1,
            _ => {}
        }
    }

    fn done(&self) -> usize {
        self.success + self.skipped + self.failed + self.upstream_failed + self.removed
    }

    fn failed_any(&self) -> usize {
        self.failed + self.upstream_failed
    }
}

/// What a trigger rule decides for a task whose upstream states are `counts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Not decidable yet: some upstream task is still to finish.
    Wait,
    /// The task may be queued.
    Run,
    /// The task will not run and becomes skipped.
    Skip,
    /// The task will not run and becomes upstream_failed.
    UpstreamFailed,
}

impl TriggerRule {
    /// Airflow's trigger-rule semantics, including its early decisions (`one_success` runs as
    /// soon as one upstream succeeded) and which "cannot run" outcome each rule produces.
    pub fn evaluate(self, c: UpstreamCounts) -> Readiness {
        use Readiness::*;
        let all_done = c.done() == c.total;
        match self {
            TriggerRule::Always => Run,
            TriggerRule::AllSuccess => {
                if c.failed_any() > 0 {
                    UpstreamFailed
                } else if c.skipped > 0 {
                    Skip
                } else if c.success + c.removed == c.total {
                    Run
                } else {
                    Wait
                }
            }
            TriggerRule::AllFailed => {
                if c.success > 0 || c.skipped > 0 {
                    Skip
                } else if all_done {
                    Run
                } else {
                    Wait
                }
            }
            TriggerRule::AllDone => {
                if all_done {
                    Run
                } else {
                    Wait
                }
            }
            TriggerRule::AllSkipped => {
                if c.success > 0 || c.failed_any() > 0 {
                    Skip
                } else if all_done {
                    Run
                } else {
                    Wait
                }
            }
            TriggerRule::OneSuccess => {
                if c.success > 0 {
                    Run
                } else if all_done {
                    if c.failed_any() > 0 {
                        UpstreamFailed
                    } else {
                        Skip
                    }
                } else {
                    Wait
                }
            }
            TriggerRule::OneFailed => {
                if c.failed_any() > 0 {
                    Run
                } else if all_done {
                    Skip
                } else {
                    Wait
                }
            }
            TriggerRule::OneDone => {
                if c.success + c.failed > 0 {
                    Run
                } else if all_done {
                    Skip
                } else {
                    Wait
                }
            }
            TriggerRule::NoneFailed => {
                if c.failed_any() > 0 {
                    UpstreamFailed
                } else if all_done {
                    Run
                } else {
                    Wait
                }
            }
            TriggerRule::NoneFailedMinOneSuccess => {
                if c.failed_any() > 0 {
                    UpstreamFailed
                } else if all_done {
                    if c.success > 0 || c.total == 0 {
                        Run
                    } else {
                        Skip
                    }
                } else {
                    Wait
                }
            }
            TriggerRule::NoneSkipped => {
                if c.skipped > 0 {
                    Skip
                } else if all_done {
                    Run
                } else {
                    Wait
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(states: &[TaskState]) -> UpstreamCounts {
        let mut c = UpstreamCounts::default();
        for s in states {
            c.add(*s);
        }
        c
    }

    #[test]
    fn names_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), *s);
        }
        for r in TriggerRule::ALL {
            assert_eq!(r.as_str().parse::<TriggerRule>().unwrap(), *r);
        }
        assert_eq!(TriggerRule::ALL.len(), 11);
    }

    #[test]
    fn rules_decide_like_airflow() {
        use Readiness::{Run, Skip, Wait};
        use TaskState::*;
        const UF: Readiness = Readiness::UpstreamFailed;
        let table: &[(TriggerRule, &[TaskState], Readiness)] = &[
            (TriggerRule::AllSuccess, &[Success, Success], Run),
            (TriggerRule::AllSuccess, &[Success, Running], Wait),
            (TriggerRule::AllSuccess, &[Failed, Running], UF),
            (TriggerRule::AllSuccess, &[Skipped, Success], Skip),
            (TriggerRule::AllFailed, &[Failed, UpstreamFailed], Run),
            (TriggerRule::AllFailed, &[Failed, Success], Skip),
            (TriggerRule::AllDone, &[Failed, Skipped, Success], Run),
            (TriggerRule::AllDone, &[Failed, Queued], Wait),
            (TriggerRule::AllSkipped, &[Skipped, Skipped], Run),
            (TriggerRule::AllSkipped, &[Skipped, Success], Skip),
            (TriggerRule::OneSuccess, &[Success, Running], Run),
            (TriggerRule::OneSuccess, &[Failed, Failed], UF),
            (TriggerRule::OneSuccess, &[Skipped, Skipped], Skip),
            (TriggerRule::OneFailed, &[Failed, Running], Run),
            (TriggerRule::OneFailed, &[Success, Success], Skip),
            (TriggerRule::OneDone, &[Success, Running], Run),
            (TriggerRule::OneDone, &[Skipped, Skipped], Skip),
            (TriggerRule::NoneFailed, &[Success, Skipped], Run),
            (TriggerRule::NoneFailed, &[Success, Failed], UF),
            (
                TriggerRule::NoneFailedMinOneSuccess,
                &[Skipped, Skipped],
                Skip,
            ),
            (
                TriggerRule::NoneFailedMinOneSuccess,
                &[Skipped, Success],
                Run,
            ),
            (TriggerRule::NoneSkipped, &[Failed, Success], Run),
            (TriggerRule::NoneSkipped, &[Skipped, Success], Skip),
            (TriggerRule::Always, &[Running], Run),
        ];
        for (rule, states, expected) in table {
            assert_eq!(
                rule.evaluate(counts(states)),
                *expected,
                "{rule} {states:?}"
            );
        }
    }
}
