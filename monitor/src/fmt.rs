//! Text helpers: escaping untrusted strings, and compact numbers, rates, sizes and durations.

use std::fmt::Write;
use std::time::Duration;

/// Makes text from another process safe to print: control characters (including ESC, so no
/// escape sequence reaches the terminal), and other invisible or bidi-override characters
/// are shown as `\u{..}` escapes; backslashes are doubled.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn is_invisible(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF)
}

/// How a process's liveness is shown: `yes`, `dead`, or `unknown` (another pid namespace,
/// or `/proc` unreadable).
pub fn liveness(l: mpqueue::observe::Liveness) -> &'static str {
    match l {
        mpqueue::observe::Liveness::Alive => "yes",
        mpqueue::observe::Liveness::Dead => "dead",
        mpqueue::observe::Liveness::Unknown => "unknown",
    }
}

/// A queue's state: `live` (a process attached to it is alive), `stale` (every one is
/// dead), `unknown` (none known alive, some that cannot be told).
pub fn queue_state(s: &mpqueue::observe::Snapshot) -> &'static str {
    match s.liveness() {
        mpqueue::observe::Liveness::Alive => "live",
        mpqueue::observe::Liveness::Dead => "stale",
        mpqueue::observe::Liveness::Unknown => "unknown",
    }
}

/// `1234567` → `1.23M`; small numbers as they are.
pub fn count(n: f64) -> String {
    let a = n.abs();
    if a >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", n / 1e3)
    } else if n.fract() == 0.0 || a >= 100.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

/// Bytes with binary units: `1536` → `1.5KiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// A short duration: `1.0µs`, `250µs`, `12ms`, `1.5s`, `3m`.
pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e4 {
        format!("{:.1}µs", ns / 1e3)
    } else if ns < 1e6 {
        format!("{:.0}µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.0}ms", ns / 1e6)
    } else if ns < 120e9 {
        format!("{:.1}s", ns / 1e9)
    } else {
        format!("{:.0}m", ns / 60e9)
    }
}

/// A fill bar of `width` cells for `used` of `max` (empty for unbounded queues).
pub fn fill_bar(used: u64, max: u64, width: usize) -> String {
    if max == 0 || width == 0 {
        return " ".repeat(width);
    }
    let filled = ((used.min(max) as f64 / max as f64) * width as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(escape("jobs"), "jobs");
        assert_eq!(escape("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("x\ny\u{202e}z\\"), "x\\u{a}y\\u{202e}z\\\\");
        assert_eq!(escape("ünïcödé ✓"), "ünïcödé ✓");
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(12.5), "12.5");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(count(4_200_000.0), "4.20M");
        assert_eq!(bytes(1536.0), "1.5KiB");
        assert_eq!(duration(Duration::from_micros(250)), "250µs");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fill_bar(5, 10, 4), "██░░");
        assert_eq!(fill_bar(5, 0, 3), "   ");
    }
}
