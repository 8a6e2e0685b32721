//! Reading the Grafana dashboard and PromQL expressions: every panel's queries, Grafana's
//! variables substituted, and the metric names (with their label matchers) an expression
//! selects, checked against the families the exporter publishes.

use mpqueue::families::{FAMILIES, Kind};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The dashboard, from the workspace.
pub fn dashboard_path() -> PathBuf {
    workspace_file("exporter/dashboards/mpqueue.json")
}

/// The alerting and recording rules, from the workspace.
pub fn rules_path() -> PathBuf {
    workspace_file("exporter/alerts/mpqueue.rules.yml")
}

/// Their promtool unit tests.
pub fn rules_test_path() -> PathBuf {
    workspace_file("exporter/alerts/mpqueue.rules.test.yml")
}

fn workspace_file(rel: &str) -> PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// The dashboard's JSON document.
pub fn dashboard() -> Value {
    let path = dashboard_path();
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every panel that is not a row, including the panels of collapsed rows, which Grafana
/// nests in the row's own `panels`.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            if p["type"] == "row" {
                walk(&p["panels"], out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// One query of a panel.
#[derive(Debug, Clone)]
pub struct Target {
    /// The panel's title.
    pub panel: String,
    /// The target's `refId` (A, B, …).
    pub ref_id: String,
    /// The PromQL expression, with Grafana's variables still in it.
    pub expr: String,
}

/// Every panel target of the dashboard, in panel order.
pub fn targets(dashboard: &Value) -> Vec<Target> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let panel = p["title"].as_str().unwrap_or("(untitled)").to_string();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| Target {
                    panel: panel.clone(),
                    ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                    expr: t["expr"].as_str().unwrap_or("").to_string(),
                })
        })
        .collect()
}

/// `expr` with Grafana's variables (`$name`, `${name}`, `${name:format}`, `[[name]]`)
/// replaced by their values in `vars`.
///
/// # Errors
/// The name of a variable `vars` does not hold.
pub fn substitute(expr: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let value = |name: &str| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| format!("unknown variable ${name}"))
    };
    let word = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if rest[i..].starts_with("${") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr}"))?;
            let name = after[1..end].split(':').next().unwrap_or("");
            out.push_str(&value(name)?);
            rest = &after[end + 1..];
        } else if rest[i..].starts_with('$') && word(after) > 0 {
            let n = word(after);
            out.push_str(&value(&after[..n])?);
            rest = &after[n..];
        } else if rest[i..].starts_with("[[") && after[1..].find("]]").is_some() {
            let end = after[1..].find("]]").unwrap();
            let name = after[1..1 + end].split(':').next().unwrap_or("");
            if word(name) == name.len() && !name.is_empty() {
                out.push_str(&value(name)?);
                rest = &after[end + 3..];
            } else {
                out.push('[');
                rest = after;
            }
        } else {
            out.push_str(&rest[i..=i]);
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A vector selector in an expression: the metric name and the text between its braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub matchers: String,
}

const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "inf", "nan", "atan2"];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The vector selectors of a PromQL expression, in order. A small lexer, not a parser:
/// it skips strings, comments, numbers, durations (`[…]`, after `offset`), label lists
/// of `by`/`on`/…, keywords, aggregations and function names (an identifier followed by
/// `(`); every other identifier is a metric name. A selector with no name
/// (`{__name__="…"}`) comes back with an empty name.
///
/// # Errors
/// An unclosed string, brace, bracket or parenthesis.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    // The index just past the bracket that closes the one at `i`, skipping strings.
    let close = |i: usize, open: u8, shut: u8| -> Result<usize, String> {
        let mut depth = 0;
        let mut j = i;
        while j < b.len() {
            match b[j] {
                b'"' | b'\'' | b'`' => j = end_of_string(b, j)?,
                c if c == open => {
                    depth += 1;
                    j += 1;
                }
                c if c == shut => {
                    depth -= 1;
                    j += 1;
                    if depth == 0 {
                        return Ok(j);
                    }
                }
                _ => j += 1,
            }
        }
        Err(format!("unclosed {} in {expr}", open as char))
    };
    let is_ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b':';
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if matches!(c, b'"' | b'\'' | b'`') {
            i = end_of_string(b, i)?;
        } else if c == b'[' {
            i = close(i, b'[', b']')?;
        } else if c == b'{' {
            let end = close(i, b'{', b'}')?;
            out.push(Selector {
                name: String::new(),
                matchers: expr[i + 1..end - 1].to_string(),
            });
            i = end;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            // A number (1, 0.99, 1e-06, 0x1f) or a duration (5m, 1h30m).
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                let e = b[i] == b'e' || b[i] == b'E';
                i += 1;
                if e && i < b.len() && (b[i] == b'-' || b[i] == b'+') {
                    i += 1;
                }
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let lower = word.to_ascii_lowercase();
            let next = skip_ws(i);
            let peek = b.get(next).copied();
            if GROUPING.contains(&lower.as_str()) {
                if peek == Some(b'(') {
                    i = close(next, b'(', b')')?;
                }
            } else if lower == "offset" {
                // Its duration, possibly negative.
                i = next;
                if b.get(i) == Some(&b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else if KEYWORDS.contains(&lower.as_str())
                || AGGREGATIONS.contains(&lower.as_str())
                || peek == Some(b'(')
            {
                // A keyword, an aggregation (its `by (…)` and `(` come next) or a function.
            } else if peek == Some(b'{') {
                let end = close(next, b'{', b'}')?;
                out.push(Selector {
                    name: word.to_string(),
                    matchers: expr[next + 1..end - 1].to_string(),
                });
                i = end;
            } else {
                out.push(Selector {
                    name: word.to_string(),
                    matchers: String::new(),
                });
            }
        } else {
            i += 1;
        }
    }
    Ok(out)
}

/// The index just past the string literal that starts at `i`.
fn end_of_string(b: &[u8], i: usize) -> Result<usize, String> {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && quote != b'`' {
            j += 2;
        } else if b[j] == quote {
            return Ok(j + 1);
        } else {
            j += 1;
        }
    }
    Err("unclosed string".to_string())
}

/// Families being added to the exporter (issue 13) that `FAMILIES` may not list yet. Once
/// it does, they are simply listed twice.
pub const NEW_FAMILIES: &[(&str, Kind)] = &[
    ("mpqueue_item_wait_seconds", Kind::Histogram),
    ("mpqueue_oldest_item_age_seconds", Kind::Gauge),
    ("mpqueue_last_get_age_seconds", Kind::Gauge),
    ("mpqueue_health", Kind::Gauge),
    ("mpqueue_buffered_items", Kind::Gauge),
];

/// The exporter's metrics about itself (written through the `metrics` facade, not
/// `FAMILIES`).
pub const EXPORTER_FAMILIES: &[(&str, Kind)] = &[
    ("mpqueue_exporter_scrape_duration_seconds", Kind::Histogram),
    ("mpqueue_exporter_scrape_errors_total", Kind::Counter),
    ("mpqueue_exporter_queues", Kind::Gauge),
    ("mpqueue_exporter_stale_queues", Kind::Gauge),
];

/// Every series name Prometheus can hold from a scrape of the exporter: each family's
/// name, or for a histogram its `_bucket`, `_sum` and `_count`.
pub fn known_series_names() -> BTreeSet<String> {
    FAMILIES
        .iter()
        .map(|f| (f.name(), f.kind()))
        .chain(NEW_FAMILIES.iter().copied())
        .chain(EXPORTER_FAMILIES.iter().copied())
        .flat_map(|(name, kind)| match kind {
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{name}{s}"))
                .collect::<Vec<_>>(),
            Kind::Counter | Kind::Gauge => vec![name.to_string()],
        })
        .collect()
}

/// `s` with the characters that are special in a (RE2) regular expression escaped, as
/// Grafana escapes a variable's value in a `=~` matcher. The result goes inside a PromQL
/// double-quoted string, where a backslash itself needs escaping.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                out.push_str("\\\\");
                out.push(c);
            }
            '"' => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out
}
