//! Durations and bandwidths as scenario files write them: `"150ms"`,
//! `"1s"`, `"2.5s"`, `"10mbit"`.
//!
//! Parsing never panics and never overflows: every input that is not a
//! well-formed, representable value is an error that says what was expected.
//! Durations are kept to whole nanoseconds; the simulator's own random draws
//! (jitter) are whole microseconds, so reports print three decimals of
//! milliseconds exactly.

use core::fmt;
use core::time::Duration;

/// Why a duration or bandwidth string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitError(pub String);

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnitError {}

/// Splits `"12.5ms"` into (`"12.5"`, `"ms"`).
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim())
}

/// `digits[.digits]` times `scale` (an integer number of base units per unit),
/// exactly, or `None` on overflow, on more fractional digits than the scale
/// can hold, or on anything malformed.
fn scaled(number: &str, scale: u64) -> Option<u64> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = whole.checked_mul(scale)?;
    let mut unit = scale;
    for digit in frac.bytes() {
        let d = u64::from(digit - b'0');
        if !unit.is_multiple_of(10) {
            // Finer than the base unit: only zeros may follow.
            if d != 0 {
                return None;
            }
            continue;
        }
        unit /= 10;
        value = value.checked_add(d.checked_mul(unit)?)?;
    }
    Some(value)
}

/// Parses a duration: a non-negative decimal number and a unit, one of `ns`,
/// `us` (or `µs`), `ms`, `s`, `m` (minutes) or `h`. `"0"` alone is accepted
/// as zero; any other number needs its unit.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let t = text.trim();
    let bad = || {
        UnitError(format!(
            "{text:?} is not a duration: write a number and a unit, such as \"150ms\", \"1s\" or \"2.5s\" (units ns, us, ms, s, m, h)"
        ))
    };
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let (number, unit) = split_number(t);
    let per_unit: u64 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(bad()),
    };
    let nanos = scaled(number, per_unit).ok_or_else(|| {
        if number.is_empty() {
            bad()
        } else {
            UnitError(format!(
                "{text:?} is not a representable duration (too large, or finer than a nanosecond)"
            ))
        }
    })?;
    Ok(Duration::from_nanos(nanos))
}

/// Formats a duration the way scenario files write it, choosing the largest
/// unit that keeps it exact (`"250ms"`, `"1.5s"`, `"127s"`, `"10us"`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0ms".to_string();
    }
    for (unit, scale) in [("s", 1_000_000_000u128), ("ms", 1_000_000), ("us", 1_000)] {
        if nanos >= scale {
            let whole = nanos / scale;
            let frac = nanos % scale;
            if frac == 0 {
                return format!("{whole}{unit}");
            }
            // Up to three fractional digits keep small units readable.
            if frac.is_multiple_of(scale / 1000) {
                let digits = format!("{:03}", frac / (scale / 1000));
                return format!("{whole}.{}{unit}", digits.trim_end_matches('0'));
            }
        }
    }
    format!("{nanos}ns")
}

/// Milliseconds of `d` as a float, for reports.
pub fn millis(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// Parses a bandwidth in bits per second: a number with `bit`, `kbit`,
/// `mbit` or `gbit` (case-insensitive; `bps`, `kbps`, `mbps`, `gbps` too).
pub fn parse_bandwidth(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    let bad = || {
        UnitError(format!(
            "{text:?} is not a bandwidth: write a number and a unit, such as \"10mbit\" or \"512kbit\" (bit, kbit, mbit, gbit per second)"
        ))
    };
    let (number, unit) = split_number(t);
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "bit" | "bps" => 1,
        "kbit" | "kbps" => 1_000,
        "mbit" | "mbps" => 1_000_000,
        "gbit" | "gbps" => 1_000_000_000,
        _ => return Err(bad()),
    };
    match scaled(number, scale) {
        Some(0) => Err(UnitError(format!(
            "{text:?}: a bandwidth must be more than zero (leave `bandwidth` out for an unlimited link)"
        ))),
        Some(v) => Ok(v),
        None => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_exactly() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("150ms"), Ok(ms(150)));
        assert_eq!(parse_duration("1s"), Ok(ms(1000)));
        assert_eq!(parse_duration("300s"), Ok(ms(300_000)));
        assert_eq!(parse_duration("2.5s"), Ok(ms(2500)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration(" 7 ms "), Ok(ms(7)));
    }

    #[test]
    fn bad_durations_are_errors_not_panics() {
        for bad in [
            "",
            "ms",
            "5",
            "-1s",
            "1.2.3s",
            "1e3ms",
            "99999999999999999999s",
            "1.0000000001ms",
            "18446744073709551616ns",
            "5 parsecs",
            ".",
            ".s",
            "１s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["250ms", "1.5s", "127s", "10us", "0ms", "1.25ms", "7ns"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("10mbit"), Ok(10_000_000));
        assert_eq!(parse_bandwidth("1.5Mbps"), Ok(1_500_000));
        assert_eq!(parse_bandwidth("512kbit"), Ok(512_000));
        assert!(parse_bandwidth("0mbit").is_err());
        assert!(parse_bandwidth("fast").is_err());
        assert!(parse_bandwidth("0.5bit").is_err());
    }
}
