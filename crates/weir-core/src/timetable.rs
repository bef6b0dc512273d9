//! Schedules in a time zone, and Airflow's data-interval rules.
//!
//! A scheduled run covers one data interval `[start, end)`; its logical date is `start` and it
//! is due once `end` has passed. A manual run at logical date `D` gets the latest complete
//! interval that ends at or before `D`. These rules match Airflow 3 with
//! `create_cron_data_intervals=True`.

use crate::dag::Schedule;
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// A half-open interval of data time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DataInterval {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A schedule bound to its time zone, ready to answer "when".
#[derive(Debug, Clone)]
pub struct Timetable {
    kind: Kind,
    tz: TimeZone,
}

#[derive(Debug, Clone)]
enum Kind {
    Never,
    Once,
    Cron(Box<Cron>),
    Every(SignedDuration),
}

/// Expands `@daily` and friends to cron; `None` if `text` is not a preset.
pub fn cron_preset(text: &str) -> Option<&'static str> {
    Some(match text {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@quarterly" => "0 0 1 */3 *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        _ => return None,
    })
}

/// Parses a five-field cron expression, with the error croner gives.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "cron expression '{expr}' has {fields} fields; weir expects 5 (minute hour day-of-month month day-of-week)"
        ));
    }
    Cron::from_str(expr).map_err(|e| format!("bad cron expression '{expr}': {e}"))
}

impl Timetable {
    pub fn new(schedule: &Schedule, tz: TimeZone) -> Result<Self, String> {
        let kind = match schedule {
            // Runs of a DAG scheduled on assets come from asset events, not from time.
            Schedule::Never | Schedule::Assets { .. } => Kind::Never,
            Schedule::Once => Kind::Once,
            Schedule::Cron { expr, .. } => Kind::Cron(Box::new(parse_cron(expr)?)),
            Schedule::Every { every, .. } => {
                if every.is_zero() {
                    return Err("an 'every' schedule needs a positive duration".into());
                }
                Kind::Every(SignedDuration::try_from(*every).map_err(|e| e.to_string())?)
            }
        };
        Ok(Timetable { kind, tz })
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether the scheduler creates runs for this timetable at all.
    pub fn is_periodic(&self) -> bool {
        matches!(self.kind, Kind::Cron(_) | Kind::Every(_))
    }

    fn zoned(&self, t: Timestamp) -> Zoned {
        t.to_zoned(self.tz.clone())
    }

    /// The first fire time strictly after `t` (cron only).
    ///
    /// Like Airflow, a cron that does not fire every hour is read in wall-clock time: a fire
    /// time inside a DST gap moves forward by the gap (02:30 becomes 03:30) and one inside a
    /// fold fires once, at its second occurrence (Airflow's `make_aware` sets `fold=1`: "schedule
    /// the run at the time of the second instance"), so the interval before it is an hour
    /// longer. Crons that fire every hour follow absolute time.
    fn cron_next(&self, cron: &Cron, t: Timestamp) -> Option<Timestamp> {
        self.cron_step(cron, t, false, Direction::Forward)
    }

    /// The last fire time at or before `t` (inclusive) or strictly before it.
    fn cron_prev(&self, cron: &Cron, t: Timestamp, inclusive: bool) -> Option<Timestamp> {
        self.cron_step(cron, t, inclusive, Direction::Backward)
    }

    fn cron_step(
        &self,
        cron: &Cron,
        t: Timestamp,
        inclusive: bool,
        dir: Direction,
    ) -> Option<Timestamp> {
        let find = |from: &jiff::civil::DateTime, incl: bool| match dir {
            Direction::Forward => cron.find_next_occurrence(from, incl).ok(),
            Direction::Backward => cron.find_previous_occurrence(from, incl).ok(),
        };
        if covers_every_hour(cron) {
            let z = self.zoned(t);
            let found = match dir {
                Direction::Forward => cron.find_next_occurrence(&z, inclusive).ok(),
                Direction::Backward => cron.find_previous_occurrence(&z, inclusive).ok(),
            };
            return found.map(|z| z.timestamp());
        }
        let mut civil = self.zoned(t).datetime();
        let mut incl = inclusive;
        // `t` in the first pass of a fold: its wall-clock times come again, and only their
        // second pass fires. Forward, they are all still ahead; backward, none of them is behind.
        if let jiff::tz::AmbiguousOffset::Fold { before, .. } =
            self.tz.to_ambiguous_timestamp(civil).offset()
            && t.to_zoned(TimeZone::fixed(before)).datetime() == civil
            && let Some(transition) = self.tz.following(t).next()
        {
            civil = transition.timestamp().to_zoned(self.tz.clone()).datetime();
            incl = dir == Direction::Forward;
        }
        // A wall-clock time can map back across `t` inside a fold; keep walking until it doesn't.
        for _ in 0..4 {
            let next = find(&civil, incl)?;
            // The later instant: after a gap for a time that does not exist, the second pass
            // for a time that happens twice.
            let at = self.tz.to_ambiguous_zoned(next).later().ok()?.timestamp();
            let ok = match dir {
                Direction::Forward => at > t || (inclusive && at == t),
                Direction::Backward => at < t || (inclusive && at == t),
            };
            if ok {
                return Some(at);
            }
            civil = next;
            incl = false;
        }
        None
    }

    /// The first interval boundary at or after `t`, on `anchor`'s grid for `every`.
    fn align_next(&self, t: Timestamp, anchor: Option<Timestamp>) -> Option<Timestamp> {
        match &self.kind {
            Kind::Cron(cron) => self.cron_step(cron, t, true, Direction::Forward),
            Kind::Every(step) => {
                let anchor = anchor.unwrap_or(t);
                if t <= anchor {
                    return Some(anchor);
                }
                let n = div_ceil(t.duration_since(anchor).as_nanos(), step.as_nanos());
                anchor.checked_add(*step * n as i32).ok()
            }
            Kind::Never | Kind::Once => Some(t),
        }
    }

    /// The interval that begins at boundary `start`.
    fn interval_from(&self, start: Timestamp) -> Option<DataInterval> {
        let end = match &self.kind {
            Kind::Cron(cron) => self.cron_next(cron, start)?,
            Kind::Every(step) => start.checked_add(*step).ok()?,
            Kind::Never | Kind::Once => start,
        };
        Some(DataInterval { start, end })
    }

    /// The start of the latest interval that has completed by `now` (Airflow's
    /// `_skip_to_latest`), for `catchup: false`.
    fn latest_complete_start(
        &self,
        now: Timestamp,
        anchor: Option<Timestamp>,
    ) -> Option<Timestamp> {
        match &self.kind {
            Kind::Cron(cron) => {
                let end = self.cron_prev(cron, now, true)?;
                self.cron_prev(cron, end, false)
            }
            Kind::Every(step) => {
                let anchor = anchor.unwrap_or(now);
                let elapsed = now.duration_since(anchor);
                if elapsed < *step {
                    return Some(anchor);
                }
                let n = elapsed.as_nanos() / step.as_nanos() - 1;
                anchor.checked_add(*step * n as i32).ok()
            }
            Kind::Never | Kind::Once => None,
        }
    }

    /// The next scheduled interval after the last one the scheduler created (`last`), or the
    /// first one if there is none. `None` when the schedule has nothing more to run. The caller
    /// creates the run only once `end <= now`.
    pub fn next_scheduled(
        &self,
        last: Option<DataInterval>,
        start_date: Option<Timestamp>,
        end_date: Option<Timestamp>,
        catchup: bool,
        now: Timestamp,
    ) -> Option<DataInterval> {
        let interval = match &self.kind {
            Kind::Never => return None,
            Kind::Once => {
                if last.is_some() {
                    return None;
                }
                let at = start_date?;
                DataInterval { start: at, end: at }
            }
            Kind::Cron(_) | Kind::Every(_) => {
                let mut start = match last {
                    Some(prev) => prev.end,
                    None => self.align_next(start_date?, start_date)?,
                };
                if !catchup && let Some(latest) = self.latest_complete_start(now, start_date) {
                    start = start.max(latest);
                }
                self.interval_from(start)?
            }
        };
        match end_date {
            Some(end) if interval.start > end => None,
            _ => Some(interval),
        }
    }

    /// Every interval whose start lies in `[from, to]`, in order (backfill). Bounded by `limit`.
    pub fn intervals_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Vec<DataInterval> {
        let mut out = Vec::new();
        if !self.is_periodic() {
            return out;
        }
        let mut start = match self.align_next(from, Some(from)) {
            Some(s) => s,
            None => return out,
        };
        while start <= to && out.len() < limit {
            let Some(interval) = self.interval_from(start) else {
                break;
            };
            if interval.end <= start {
                break;
            }
            out.push(interval);
            start = interval.end;
        }
        out
    }

    /// The data interval of a manual run at logical date `at`: the latest complete interval
    /// ending at or before it.
    pub fn manual_interval(&self, at: Timestamp) -> DataInterval {
        match &self.kind {
            Kind::Cron(cron) => {
                let end = self.cron_prev(cron, at, true);
                let start = end.and_then(|e| self.cron_prev(cron, e, false));
                match (start, end) {
                    (Some(start), Some(end)) => DataInterval { start, end },
                    _ => DataInterval { start: at, end: at },
                }
            }
            Kind::Every(step) => DataInterval {
                start: at.checked_sub(*step).unwrap_or(at),
                end: at,
            },
            Kind::Never | Kind::Once => DataInterval { start: at, end: at },
        }
    }

    /// The next time a run becomes due after `now`, for "next run" in listings.
    pub fn next_fire_after(&self, now: Timestamp) -> Option<Timestamp> {
        match &self.kind {
            Kind::Cron(cron) => self.cron_next(cron, now),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Forward,
    Backward,
}

/// Whether the cron's hour field is `*`, as Airflow's `_covers_every_hour` decides.
fn covers_every_hour(cron: &Cron) -> bool {
    cron.pattern.to_string().split_whitespace().nth(1) == Some("*")
}

fn div_ceil(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cron(expr: &str, tz: &str) -> Timetable {
        Timetable::new(
            &Schedule::Cron {
                expr: expr.into(),
                text: expr.into(),
            },
            TimeZone::get(tz).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn manual_daily_matches_airflow() {
        let t = cron("0 0 * * *", "UTC");
        let i = t.manual_interval(ts("2026-01-15T00:00:00Z"));
        assert_eq!(i.start, ts("2026-01-14T00:00:00Z"));
        assert_eq!(i.end, ts("2026-01-15T00:00:00Z"));
        let i = t.manual_interval(ts("2026-01-15T10:00:00Z"));
        assert_eq!(i.start, ts("2026-01-14T00:00:00Z"));
    }

    #[test]
    fn catchup_walks_every_interval_and_no_catchup_skips_to_latest() {
        let t = cron("0 0 * * *", "UTC");
        let start = Some(ts("2026-01-01T00:00:00Z"));
        let now = ts("2026-01-05T12:00:00Z");
        let first = t.next_scheduled(None, start, None, true, now).unwrap();
        assert_eq!(first.start, ts("2026-01-01T00:00:00Z"));
        let second = t
            .next_scheduled(Some(first), start, None, true, now)
            .unwrap();
        assert_eq!(second.start, ts("2026-01-02T00:00:00Z"));
        let latest = t.next_scheduled(None, start, None, false, now).unwrap();
        assert_eq!(latest.start, ts("2026-01-04T00:00:00Z"));
        assert_eq!(latest.end, ts("2026-01-05T00:00:00Z"));
    }

    #[test]
    fn every_is_anchored_at_start_date() {
        let t = Timetable::new(
            &Schedule::Every {
                every: Duration::from_secs(900),
                text: "every 15m".into(),
            },
            TimeZone::UTC,
        )
        .unwrap();
        let start = Some(ts("2026-01-01T00:05:00Z"));
        let i = t
            .next_scheduled(None, start, None, true, ts("2026-01-01T01:00:00Z"))
            .unwrap();
        assert_eq!(
            (i.start, i.end),
            (ts("2026-01-01T00:05:00Z"), ts("2026-01-01T00:20:00Z"))
        );
        let i = t
            .next_scheduled(None, start, None, false, ts("2026-01-01T01:00:00Z"))
            .unwrap();
        assert_eq!(i.start, ts("2026-01-01T00:35:00Z"));
    }

    #[test]
    fn backfill_lists_intervals_by_start() {
        let t = cron("0 0 * * *", "UTC");
        let got = t.intervals_between(ts("2026-01-01T00:00:00Z"), ts("2026-01-10T00:00:00Z"), 1000);
        assert_eq!(got.len(), 10);
        assert_eq!(got[9].start, ts("2026-01-10T00:00:00Z"));
    }
}

#[cfg(test)]
mod dst_tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A daily 02:30 in Europe/Berlin, across both DST changes of 2026, run with catchup.
    /// Airflow (croniter + pendulum, `_should_fix_dst`) fires once per day: at 03:30 CEST on
    /// the spring-forward day (02:30 does not exist) and at the second 02:30 (CET) on the
    /// fall-back day, after a 25-hour interval.
    #[test]
    fn berlin_0230_across_spring_forward_and_fall_back() {
        let t = Timetable::new(
            &Schedule::Cron {
                expr: "30 2 * * *".into(),
                text: "30 2 * * *".into(),
            },
            TimeZone::get("Europe/Berlin").unwrap(),
        )
        .unwrap();
        let starts = |from: &str, to: &str| -> Vec<String> {
            t.intervals_between(ts(from), ts(to), 100)
                .iter()
                .map(|i| format!("{}..{}", i.start, i.end))
                .collect()
        };
        assert_eq!(
            starts("2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z"),
            vec![
                "2026-03-28T01:30:00Z..2026-03-29T01:30:00Z",
                "2026-03-29T01:30:00Z..2026-03-30T00:30:00Z",
                "2026-03-30T00:30:00Z..2026-03-31T00:30:00Z",
            ]
        );
        assert_eq!(
            starts("2026-10-23T12:00:00Z", "2026-10-26T12:00:00Z"),
            vec![
                "2026-10-24T00:30:00Z..2026-10-25T01:30:00Z",
                "2026-10-25T01:30:00Z..2026-10-26T01:30:00Z",
                "2026-10-26T01:30:00Z..2026-10-27T01:30:00Z",
            ]
        );
    }

    /// From inside the first pass of the fold, the next 02:30 is the second pass of the same
    /// night, and the last one before is the day before's.
    #[test]
    fn from_inside_the_fold_the_second_pass_is_next() {
        let t = Timetable::new(
            &Schedule::Cron {
                expr: "30 2 * * *".into(),
                text: "30 2 * * *".into(),
            },
            TimeZone::get("Europe/Berlin").unwrap(),
        )
        .unwrap();
        let Kind::Cron(cron) = &t.kind else {
            unreachable!()
        };
        // 00:45Z is 02:45 CEST, the first pass; 01:15Z is 02:15 CET, the second.
        assert_eq!(
            t.cron_next(cron, ts("2026-10-25T00:45:00Z")),
            Some(ts("2026-10-25T01:30:00Z"))
        );
        assert_eq!(
            t.cron_prev(cron, ts("2026-10-25T00:45:00Z"), true),
            Some(ts("2026-10-24T00:30:00Z"))
        );
        assert_eq!(
            t.cron_next(cron, ts("2026-10-25T01:15:00Z")),
            Some(ts("2026-10-25T01:30:00Z"))
        );
        assert_eq!(
            t.cron_prev(cron, ts("2026-10-25T01:45:00Z"), true),
            Some(ts("2026-10-25T01:30:00Z"))
        );
    }
}
