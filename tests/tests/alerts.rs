//! The Prometheus rules (`exporter/alerts/`) and the Grafana dashboard
//! (`exporter/dashboards/`) of `mpqueue-exporter`: `promtool check rules` and
//! `promtool test rules` pass, every alert is unit-tested both firing and silent, a real
//! Prometheus loads and evaluates the rules, the dashboard is well formed, and every metric
//! the rules and the dashboard name is one the exporter publishes.
//!
//! Nothing here skips: `promtool` and `prometheus` (Debian package `prometheus`, which
//! scripts/test.sh installs) must be installed, or the tests fail.

mod support;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::prom::Prometheus;
use support::promql::{self, Selector};
use support::wait_for;

/// The alerts the rules must define, each with its severity.
const ALERTS: &[(&str, &str)] = &[
    ("MpqueueConsumerStalled", "critical"),
    ("MpqueueNoConsumer", "critical"),
    ("MpqueueBacklogGrowing", "warning"),
    ("MpqueueItemsLost", "warning"),
    ("MpqueueWaitHigh", "warning"),
];

/// The recording rule that holds the p99 item-wait threshold: the one place to set it.
const WAIT_THRESHOLD: &str = "mpqueue:item_wait_p99_threshold_seconds";

/// Runs promtool; whether it succeeded, and what it printed.
fn promtool(args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .arg(file)
        .output()
        .expect(
            "promtool (Debian package prometheus) must be installed; scripts/test.sh installs it",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_check_rules_passes() {
    let (ok, out) = promtool(&["check", "rules"], &promql::rules_path());
    assert!(
        ok && out.contains("SUCCESS"),
        "promtool check rules:\n{out}"
    );
}

#[test]
fn promtool_unit_tests_pass() {
    let (ok, out) = promtool(&["test", "rules"], &promql::rules_test_path());
    assert!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
}

/// The `alert_rule_test` entries of the unit-test file: (alert, whether some alert is
/// expected to fire). An entry is a list item with `eval_time:` and everything indented
/// under it; it expects a firing alert if it has `exp_labels`.
fn alert_tests(text: &str) -> Vec<(String, bool)> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if !(t.starts_with("- ") && t.contains("eval_time:")) {
            continue;
        }
        let mut entry = t.to_string();
        for next in &lines[i + 1..] {
            if !next.trim().is_empty() && indent(next) <= indent(line) {
                break;
            }
            entry.push('\n');
            entry.push_str(next);
        }
        let name = entry
            .split("alertname:")
            .nth(1)
            .map(|r| {
                r.trim_start()
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .next()
                    .unwrap_or("")
            })
            .unwrap_or("");
        if !name.is_empty() {
            out.push((name.to_string(), entry.contains("exp_labels")));
        }
    }
    out
}

#[test]
fn every_alert_is_unit_tested_firing_and_silent() {
    let rules = std::fs::read_to_string(promql::rules_path()).unwrap();
    let defined: BTreeSet<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    let expected: BTreeSet<&str> = ALERTS.iter().map(|(a, _)| *a).collect();
    assert_eq!(defined, expected, "the alerts in mpqueue.rules.yml");

    let tests = std::fs::read_to_string(promql::rules_test_path()).unwrap();
    let entries = alert_tests(&tests);
    let mut missing = Vec::new();
    for alert in &defined {
        for (firing, what) in [(true, "firing"), (false, "silent")] {
            if !entries.iter().any(|(a, f)| a == alert && *f == firing) {
                missing.push(format!("{alert} has no test where it is {what}"));
            }
        }
    }
    for (alert, _) in &entries {
        if !defined.contains(alert.as_str()) {
            missing.push(format!("a test names {alert}, which no rule defines"));
        }
    }
    // The unit tests feed the series the exporter publishes, under their real names.
    let known = promql::known_series_names();
    for line in tests.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("- series:") {
            let name = rest
                .trim()
                .trim_matches('\'')
                .split('{')
                .next()
                .unwrap_or("");
            if !known.contains(name) {
                missing.push(format!(
                    "input series {name} is not a metric the exporter publishes"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn prometheus_loads_the_rules_and_they_follow_the_conventions() {
    let rules_path = promql::rules_path().canonicalize().unwrap();
    let prom = Prometheus::with_rules(None, &[&rules_path]);
    // Every rule evaluated at least once (every second), with no error.
    let mut last = Value::Null;
    let rules = wait_for(Duration::from_secs(60), || {
        last = prom.api("/api/v1/rules")?;
        let rules: Vec<Value> = last["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let evaluated = !rules.is_empty()
            && rules.iter().all(|r| {
                !r["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001")
            });
        evaluated.then_some(rules)
    })
    .unwrap_or_else(|| panic!("Prometheus never evaluated the rules; last answer: {last}"));

    let recorded: BTreeSet<String> = rules
        .iter()
        .filter(|r| r["type"] == "recording")
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect();
    assert!(recorded.contains(WAIT_THRESHOLD), "{recorded:?}");
    let known = promql::known_series_names();
    let mut problems = Vec::new();
    let mut alerts = BTreeMap::new();
    for r in &rules {
        let name = r["name"].as_str().unwrap_or("?");
        if r["health"] != "ok" {
            problems.push(format!(
                "{name}: health {} ({})",
                r["health"], r["lastError"]
            ));
        }
        let query = r["query"].as_str().unwrap_or("");
        match promql::selectors(query) {
            Ok(sels) => {
                for Selector { name: metric, .. } in sels {
                    if !known.contains(&metric) && !recorded.contains(&metric) {
                        problems.push(format!(
                            "{name}: {metric:?} is not a metric the exporter publishes: {query}"
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
        if r["type"] != "alerting" {
            continue;
        }
        let severity = r["labels"]["severity"].as_str().unwrap_or("");
        alerts.insert(name.to_string(), severity.to_string());
        if !["critical", "warning", "info"].contains(&severity) {
            problems.push(format!("{name}: severity {severity:?}"));
        }
        let summary = r["annotations"]["summary"].as_str().unwrap_or("");
        let description = r["annotations"]["description"].as_str().unwrap_or("");
        if summary.trim().is_empty() {
            problems.push(format!("{name}: no summary"));
        }
        if !description.contains("{{ $labels.queue }}") {
            problems.push(format!(
                "{name}: the description does not name the queue: {description:?}"
            ));
        }
        if name == "MpqueueWaitHigh" && !query.contains(WAIT_THRESHOLD) {
            problems.push(format!(
                "{name} does not compare with {WAIT_THRESHOLD}: {query}"
            ));
        }
    }
    let expected: BTreeMap<String, String> = ALERTS
        .iter()
        .map(|(a, s)| (a.to_string(), s.to_string()))
        .collect();
    assert_eq!(alerts, expected, "alerts and their severities");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Grafana's variables, with values that make every query valid PromQL.
const VARS: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "5m"),
    ("queue", ".*"),
];

#[test]
fn dashboard_is_well_formed() {
    let d = promql::dashboard();
    let mut problems = Vec::new();
    assert_eq!(d["schemaVersion"], 39);
    let uid = d["uid"].as_str().unwrap_or("");
    assert!((8..=40).contains(&uid.len()), "uid {uid:?}");
    assert!(d["id"].is_null(), "no id: Grafana assigns one on import");

    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    let ds = var("datasource");
    assert_eq!(
        (ds["type"].as_str(), ds["query"].as_str()),
        (Some("datasource"), Some("prometheus"))
    );
    let queue = var("queue");
    assert_eq!(queue["type"], "query");
    assert_eq!(queue["datasource"]["uid"], "${datasource}");
    assert_eq!(
        (queue["multi"].as_bool(), queue["includeAll"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(
        queue["query"]["query"]
            .as_str()
            .is_some_and(|q| q.starts_with("label_values(mpqueue_size, queue)")),
        "{queue}"
    );

    let panels = promql::panels(&d);
    assert!(!panels.is_empty());
    let mut ids = BTreeSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("(untitled)");
        if !ids.insert(p["id"].as_u64()) || p["id"].as_u64().is_none() {
            problems.push(format!("{title}: missing or repeated id {}", p["id"]));
        }
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap_or(99), g["w"].as_u64().unwrap_or(99));
        if x + w > 24 || g["h"].as_u64().is_none_or(|h| h == 0) {
            problems.push(format!("{title}: gridPos {g}"));
        }
        if p["datasource"]["uid"] != "${datasource}" {
            problems.push(format!("{title}: datasource {}", p["datasource"]));
        }
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if !targets
            .iter()
            .any(|t| t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()))
        {
            problems.push(format!("{title}: no target with a query"));
        }
        let mut refs = BTreeSet::new();
        for t in targets {
            if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problems.push(format!("{title}: target {} has an empty expr", t["refId"]));
            }
            if !refs.insert(t["refId"].as_str()) {
                problems.push(format!("{title}: repeated refId {}", t["refId"]));
            }
        }
    }
    // The health panel shows the verdict as a code with a name for each.
    let health = panels
        .iter()
        .find(|p| p["type"] == "state-timeline")
        .expect("a state-timeline panel for health");
    let mappings = &health["fieldConfig"]["defaults"]["mappings"][0]["options"];
    for (code, text) in ["ok", "idle", "lagging", "stalled", "no consumer"]
        .iter()
        .enumerate()
    {
        if mappings[code.to_string()]["text"] != *text {
            problems.push(format!("health: value {code} is not mapped to {text:?}"));
        }
    }
    // What the panels must show.
    let exprs: Vec<String> = promql::targets(&d).into_iter().map(|t| t.expr).collect();
    for needed in [
        "mpqueue_size{",
        "mpqueue_oldest_item_age_seconds{",
        "rate(mpqueue_puts_total{",
        "rate(mpqueue_gets_total{",
        "histogram_quantile(0.5, sum by (queue, le) (rate(mpqueue_item_wait_seconds_bucket{",
        "histogram_quantile(0.99, sum by (queue, le) (rate(mpqueue_item_wait_seconds_bucket{",
        "histogram_quantile(0.99, sum by (queue, le) (rate(mpqueue_put_blocked_seconds_bucket{",
        "histogram_quantile(0.99, sum by (queue, le) (rate(mpqueue_get_blocked_seconds_bucket{",
        "mpqueue_health{",
        "mpqueue_process_buffered_items{",
        "mpqueue_lost_items_total{",
        "mpqueue_lock_recoveries_total{",
    ] {
        if !exprs.iter().any(|e| e.contains(needed)) {
            problems.push(format!("no panel queries {needed}…"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dashboard_queries_name_known_metrics_filtered_by_queue() {
    let known = promql::known_series_names();
    let mut problems = Vec::new();
    for t in promql::targets(&promql::dashboard()) {
        let at = format!("panel {:?} target {}", t.panel, t.ref_id);
        if let Err(e) = promql::substitute(&t.expr, VARS) {
            problems.push(format!("{at}: {e}"));
        }
        match promql::selectors(&t.expr) {
            Ok(sels) if sels.is_empty() => problems.push(format!("{at}: selects no metric")),
            Ok(sels) => {
                for s in sels {
                    if !known.contains(&s.name) {
                        problems.push(format!(
                            "{at}: {:?} is not a metric the exporter publishes",
                            s.name
                        ));
                    }
                    if !s.matchers.contains(r#"queue=~"$queue""#) {
                        problems.push(format!("{at}: {} has no queue=~\"$queue\" filter", s.name));
                    }
                }
            }
            Err(e) => problems.push(format!("{at}: {e}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dashboard_queries_parse_in_promtool() {
    // Every query, its variables substituted, as a recording rule: promtool parses each.
    let targets = promql::targets(&promql::dashboard());
    let rules: Vec<Value> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let expr = promql::substitute(&t.expr, VARS).unwrap_or_else(|e| panic!("{e}"));
            serde_json::json!({"record": format!("dashboard:target_{i}"), "expr": expr})
        })
        .collect();
    let file = tempfile::Builder::new()
        .suffix(".rules.yml")
        .tempfile_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    // JSON is YAML.
    let doc = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(file.path(), doc.to_string()).unwrap();
    let (ok, out) = promtool(&["check", "rules"], file.path());
    let index: Vec<String> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "dashboard:target_{i} = panel {:?} target {}",
                t.panel, t.ref_id
            )
        })
        .collect();
    assert!(
        ok,
        "promtool check rules on the dashboard's queries:\n{out}\n{}",
        index.join("\n")
    );
}

#[test]
fn promql_selectors_are_found_and_the_rest_skipped() {
    let names = |e: &str| -> Vec<String> {
        promql::selectors(e)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{q=~"x|y}"}[5m]))) > on () group_left () b:c offset 5m"#
        ),
        ["a_bucket", "b:c"]
    );
    assert_eq!(
        names(
            "max by (queue) ((h{s=\"ok\"} == 1) * 0 or (h == 1) * 1e-06) unless count_values(\"v\", up) and bool 2"
        ),
        ["h", "h", "up"]
    );
    assert_eq!(
        names("sum without (le) (x) / ignoring (a) y[1h:5m] @ 100"),
        ["x", "y"]
    );
    let s = promql::selectors(r#"m{queue=~"$queue",status="ok"}"#).unwrap();
    assert_eq!(s[0].matchers, r#"queue=~"$queue",status="ok""#);
    assert!(promql::selectors(r#"m{queue="unclosed}"#).is_err());

    let vars = [("queue", "q1"), ("__rate_interval", "4s")];
    assert_eq!(
        promql::substitute(
            r#"rate(m{queue=~"$queue"}[$__rate_interval]) + n{q="${queue:regex}"} + [[queue]]"#,
            &vars
        )
        .unwrap(),
        r#"rate(m{queue=~"q1"}[4s]) + n{q="q1"} + q1"#
    );
    assert!(promql::substitute("rate(m[$__range])", &vars).is_err());
    assert_eq!(
        promql::substitute("m{a=~\"x$\"}", &vars).unwrap(),
        "m{a=~\"x$\"}"
    );
}
