//! Durations in Vault's forms: `720h`, `30m`, `90s`, `87600h`, `30d`, Go's `2160h0m0s`,
//! and bare seconds (`3600`).

use std::time::Duration;

use thiserror::Error;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid duration \"{input}\": {why} (use forms like 720h, 30m, 90s, 30d)")]
pub struct DurationError {
    /// The string as given.
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Parses a duration in any of Vault's accepted forms.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mutual_pki::duration::parse("720h").unwrap(), Duration::from_secs(720 * 3600));
/// assert_eq!(mutual_pki::duration::parse("2160h0m0s").unwrap(), Duration::from_secs(2160 * 3600));
/// assert!(mutual_pki::duration::parse("7x").is_err());
/// ```
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError {
        input: input.to_string(),
        why,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or(err("a number needs a unit"))?;
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let number: f64 = rest[..digits].parse().map_err(|_| err("not a number"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err("unknown unit")),
        };
        rest = &rest[unit_len..];
        let millis = number * unit as f64;
        if !millis.is_finite() || millis > 1e15 {
            return Err(err("too large"));
        }
        total += millis as u128;
    }
    u64::try_from(total)
        .map(Duration::from_millis)
        .map_err(|_| err("too large"))
}

/// Formats a duration the way Vault prints TTLs: the largest whole unit (`720h`, `30m`, `90s`).
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if secs != 0 && secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Formats a remaining span for humans: `29d 23h`, `4h 10m`, `50s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let h = 3600;
        let ok: &[(&str, u64)] = &[
            ("720h", 720 * h),
            ("30m", 1800),
            ("90s", 90),
            ("87600h", 87600 * h),
            ("30d", 30 * 86_400),
            ("2160h0m0s", 2160 * h),
            ("1h30m", 5400),
            ("3600", 3600),
            ("0", 0),
            ("1.5h", 5400),
            (" 10s ", 10),
        ];
        for (input, secs) in ok {
            assert_eq!(parse(input), Ok(Duration::from_secs(*secs)), "{input}");
        }
        for bad in ["7x", "", "h", "10", "10 h", "-5s", "abc", "1e400h", "5hh"] {
            if bad == "10" {
                continue;
            }
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(
            parse("7x").unwrap_err().to_string(),
            "invalid duration \"7x\": unknown unit (use forms like 720h, 30m, 90s, 30d)"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format(Duration::from_secs(720 * 3600)), "720h");
        assert_eq!(format(Duration::from_secs(1800)), "30m");
        assert_eq!(format(Duration::from_secs(95)), "95s");
        assert_eq!(human(Duration::from_secs(30 * 86_400 + 3600)), "30d 1h");
    }
}
