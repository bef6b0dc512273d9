//! Durations as users write them: `30s`, `5m`, `1h30m`, `2d`, `250ms`, or a bare number of seconds.

use std::time::Duration;

/// Parses `30s`, `5m`, `1h30m`, `2d`, `1w`, `250ms` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<f64>() {
        if secs < 0.0 || !secs.is_finite() {
            return Err(format!(
                "duration '{text}' must be a non-negative number of seconds"
            ));
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("bad duration '{text}'"));
        }
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration '{text}'"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let seconds = match unit {
            "ms" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" | "week" | "weeks" => 604800.0,
            "" => {
                return Err(format!(
                    "bad duration '{text}': a number needs a unit (ms, s, m, h, d, w)"
                ));
            }
            other => {
                return Err(format!(
                    "bad duration '{text}': unknown unit '{other}' (use ms, s, m, h, d or w)"
                ));
            }
        };
        total += Duration::from_secs_f64(value * seconds);
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it: `1h30m`, `45s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = (ms / 1000) as u64;
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let cases = [
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("2d", 172_800_000),
            ("250ms", 250),
            ("90", 90_000),
            ("1.5", 1_500),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_duration(text).unwrap().as_millis(), ms, "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("unknown unit 'parsecs'")
        );
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("").is_err());
    }
}
