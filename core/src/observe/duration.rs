//! The duration syntax of the tools' flags (`--stall-after 10s`), parsed in one place so
//! `mpqueue-top` and `mpqueue-exporter` accept exactly the same text.

use std::time::Duration;

/// The units [`parse_duration`] knows, in nanoseconds.
const UNITS: [(&str, u128); 4] = [
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration written as a number and a unit: `ms`, `s`, `m` or `h`, such as `10s`,
/// `500ms`, `2m`, `1.5s` or `1h`. Surrounding whitespace is ignored; a space between the
/// number and the unit is not allowed, nor is a bare number (seconds or milliseconds?).
/// Zero (`0s`) is accepted; refuse it where it makes no sense.
///
/// This is the syntax of `--stall-after` in `mpqueue-top` and `mpqueue-exporter`; the
/// error is a sentence meant for a command line, as `clap`'s `value_parser` shows it.
///
/// # Errors
/// A message naming the text and what is wrong with it: empty, no unit, an unknown unit,
/// not a number, negative, or too large.
///
/// # Examples
/// ```
/// use mpqueue::observe::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("10").unwrap_err().contains("no unit"));
/// assert!(parse_duration("10x").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration: write a number and a unit, such as 10s, 500ms or 2m".into());
    }
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    if t.starts_with('-') {
        return Err(format!("{text:?} is negative: a duration is 0 or more"));
    }
    if unit.is_empty() {
        return Err(format!(
            "{text:?} has no unit: write {t}s, {t}ms, {t}m or {t}h"
        ));
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!(
            "{text:?}: unknown unit {unit:?} (use ms, s, m or h, as in 10s, 500ms or 2m)"
        ));
    };
    let nanos = nanos_of(number, scale).ok_or_else(|| {
        if number.bytes().any(|b| b.is_ascii_digit()) && number.matches('.').count() < 2 {
            format!("{text:?} is too large")
        } else {
            format!("{text:?}: {number:?} is not a number")
        }
    })?;
    let secs =
        u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("{text:?} is too large"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// `number` (digits, with at most one `.`) times `scale` ns, exactly to the nanosecond
/// (digits below it are dropped); `None` if it is not such a number or overflows.
fn nanos_of(number: &str, scale: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let digits = |s: &str| -> Option<u128> {
        s.bytes().try_fold(0u128, |n, b| {
            n.checked_mul(10)?.checked_add(u128::from(b - b'0'))
        })
    };
    let mut nanos = digits(whole)?.checked_mul(scale)?;
    // 20 digits are far below a nanosecond of any unit, and keep the product in range.
    let fraction = &fraction[..fraction.len().min(20)];
    let ten_to = 10u128.pow(fraction.len() as u32);
    nanos = nanos.checked_add(digits(fraction)? * scale / ten_to)?;
    Some(nanos)
}

/// `--stall-after` of `mpqueue-top` and `mpqueue-exporter`: [`parse_duration`], and more
/// than zero (a zero threshold would call every queue with an item in it stalled).
///
/// # Examples
/// ```
/// use mpqueue::observe::parse_stall_after;
/// assert_eq!(parse_stall_after("2s"), Ok(std::time::Duration::from_secs(2)));
/// assert!(parse_stall_after("0s").unwrap_err().contains("zero"));
/// ```
pub fn parse_stall_after(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!(
            "{text:?} is zero: a stall lasts some time, e.g. 10s"
        )),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_unit() {
        for (text, want) in [
            ("0s", Duration::ZERO),
            ("1ms", Duration::from_millis(1)),
            ("250ms", Duration::from_millis(250)),
            ("10s", Duration::from_secs(10)),
            (" 10s\n", Duration::from_secs(10)),
            ("0.5s", Duration::from_millis(500)),
            ("2m", Duration::from_secs(120)),
            ("1.5m", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (text, says) in [
            ("", "empty"),
            ("  ", "empty"),
            ("10", "no unit"),
            ("10x", "unknown unit \"x\""),
            ("10 s", "unknown unit \" s\""),
            ("10sec", "unknown unit \"sec\""),
            ("s", "\"\" is not a number"),
            ("ms", "\"\" is not a number"),
            (".s", "\".\" is not a number"),
            ("1.2.3s", "is not a number"),
            ("-1s", "negative"),
            ("99999999999999999999999h", "too large"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }

    proptest! {
        /// Any whole number of milliseconds, seconds or minutes reads back exactly.
        #[test]
        fn whole_numbers_round_trip(n in 0u64..1_000_000, unit in 0usize..3) {
            let (suffix, want) = match unit {
                0 => ("ms", Duration::from_millis(n)),
                1 => ("s", Duration::from_secs(n)),
                _ => ("m", Duration::from_secs(n * 60)),
            };
            prop_assert_eq!(parse_duration(&format!("{n}{suffix}")), Ok(want));
        }

        /// No text makes it panic.
        #[test]
        fn never_panics(text in "\\PC{0,12}") {
            let _ = parse_duration(&text);
        }
    }
}
