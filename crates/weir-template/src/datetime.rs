//! Datetimes that render and format like Airflow's pendulum datetimes.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use std::fmt;
use std::sync::Arc;

/// An instant in a time zone. Renders as `2026-01-15 00:00:00+00:00`; has `strftime`,
/// `isoformat`, `in_timezone`, `add`, `subtract`, `timestamp` and date/time attributes.
#[derive(Debug, Clone)]
pub struct DateTime(pub Zoned);

impl DateTime {
    pub fn utc(ts: Timestamp) -> Self {
        DateTime(ts.to_zoned(TimeZone::UTC))
    }

    fn micros(&self) -> i32 {
        self.0.subsec_nanosecond() / 1000
    }

    fn with_sep(&self, sep: char) -> String {
        let us = self.micros();
        let frac = if us != 0 {
            format!(".{us:06}")
        } else {
            String::new()
        };
        format!(
            "{}{sep}{}{frac}{}",
            self.0.strftime("%Y-%m-%d"),
            self.0.strftime("%H:%M:%S"),
            self.0.strftime("%:z")
        )
    }

    /// Python's `isoformat()`: `2026-01-15T00:00:00+00:00`.
    pub fn isoformat(&self) -> String {
        self.with_sep('T')
    }

    /// `20260115T000000`
    pub fn ts_nodash(&self) -> String {
        self.0.strftime("%Y%m%dT%H%M%S").to_string()
    }

    /// `20260115T000000+0000`
    pub fn ts_nodash_with_tz(&self) -> String {
        self.0.strftime("%Y%m%dT%H%M%S%z").to_string()
    }

    /// Python's `strftime`, through jiff (whose directives agree for the common ones).
    pub fn strftime(&self, format: &str) -> String {
        let format = format.replace("%f", "%6f");
        jiff::fmt::strtime::format(format.as_str(), &self.0).unwrap_or_else(|_| format.clone())
    }

    fn shifted(&self, kwargs: &Kwargs, sign: i64) -> Result<DateTime, Error> {
        let get = |k: &str| -> Result<i64, Error> {
            Ok(kwargs.get::<Option<i64>>(k)?.unwrap_or(0) * sign)
        };
        let (years, months, weeks, days) =
            (get("years")?, get("months")?, get("weeks")?, get("days")?);
        let (hours, minutes, seconds) = (get("hours")?, get("minutes")?, get("seconds")?);
        let span = jiff::Span::new()
            .try_years(years)
            .and_then(|s| s.try_months(months))
            .and_then(|s| s.try_weeks(weeks))
            .and_then(|s| s.try_days(days))
            .and_then(|s| s.try_hours(hours))
            .and_then(|s| s.try_minutes(minutes))
            .and_then(|s| s.try_seconds(seconds))
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
        kwargs.assert_all_used()?;
        self.0
            .checked_add(span)
            .map(DateTime)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_sep(' '))
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let z = &self.0;
        Some(match key.as_str()? {
            "year" => Value::from(z.year()),
            "month" => Value::from(z.month()),
            "day" => Value::from(z.day()),
            "hour" => Value::from(z.hour()),
            "minute" => Value::from(z.minute()),
            "second" => Value::from(z.second()),
            "microsecond" => Value::from(self.micros()),
            "tzname" | "timezone_name" => Value::from(z.time_zone().iana_name().unwrap_or("UTC")),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (&str,) = from_args(args)?;
                Ok(Value::from(self.strftime(format)))
            }
            "isoformat" => Ok(Value::from(self.isoformat())),
            "to_date_string" | "date" => Ok(Value::from(self.0.date().to_string())),
            "timestamp" => Ok(Value::from(
                self.0.timestamp().as_millisecond() as f64 / 1000.0,
            )),
            "in_timezone" | "in_tz" | "astimezone" => {
                let (name,): (&str,) = from_args(args)?;
                let tz = TimeZone::get(name).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("unknown time zone '{name}'"),
                    )
                })?;
                Ok(Value::from_object(DateTime(self.0.with_time_zone(tz))))
            }
            "add" | "subtract" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let sign = if method == "add" { 1 } else { -1 };
                Ok(Value::from_object(self.shifted(&kwargs, sign)?))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}
