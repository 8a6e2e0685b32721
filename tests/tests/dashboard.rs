//! The Grafana dashboard against real data: a named queue with a producer and a slow
//! consumer in child processes, the real `mpqueue-exporter`, and a real Prometheus scraping
//! it every second and evaluating the alerting rules. Every panel query of
//! `exporter/dashboards/mpqueue.json`, its variables substituted as Grafana would, must
//! answer with at least one series holding a number; the queue variable's values must hold
//! the queue; every rule must evaluate without error on the real series.
//!
//! Nothing here skips: `prometheus` (Debian package) must be installed.

mod support;
use mpqueue::{Child, Queue, process};
use serde_json::Value;
use std::time::Duration;
use support::prom::{Exporter, Prometheus, query, scalar, urlencode};
use support::promql;
use support::{die_with_parent, queue_dir, wait_for};

const QUEUE: &str = "dash-e2e";

/// Grafana's variables for a 1 s scrape interval. `$__rate_interval` is wider than Grafana's
/// 4 × scrape so that the sampled item-wait histogram has observations in every window.
fn vars(queue: &str) -> Vec<(&'static str, String)> {
    vec![
        ("queue", promql::regex_escape(queue)),
        ("__rate_interval", "30s".to_string()),
        ("__interval", "1s".to_string()),
        ("__range", "5m".to_string()),
    ]
}

/// Forked workload processes, killed and reaped on drop (also when an assert fails).
struct Workload(Vec<Child>);

impl Drop for Workload {
    fn drop(&mut self) {
        for c in self.0.drain(..) {
            let _ = c.kill(libc::SIGKILL);
            let _ = c.join();
        }
    }
}

/// A producer that puts bursts of 40 items into a queue of 20 (so its puts block) every
/// 200 ms, and a consumer that takes an item every 5 ms (so it drains each burst and then
/// waits in get): the size, ages, waits and both blocked-time histograms all move.
fn workload(q: &Queue<u64>) -> Workload {
    let producer = process::fork(|| {
        die_with_parent();
        let mut i = 0u64;
        loop {
            for _ in 0..40 {
                q.put(i).unwrap();
                i += 1;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .unwrap();
    let consumer = process::fork(|| {
        die_with_parent();
        loop {
            if q.get_timeout(Duration::from_secs(5)).is_ok() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    })
    .unwrap();
    Workload(vec![producer, consumer])
}

/// What is wrong with the answer to `expr`, if anything: an error, no series, or no series
/// with a number (histogram_quantile is NaN without observations).
fn check(port: u16, expr: &str) -> Option<String> {
    let (status, body) =
        support::prom::http_get(port, &format!("/api/v1/query?query={}", urlencode(expr)));
    let v: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => return Some(format!("HTTP {status}: {body}")),
    };
    if v["status"] != "success" {
        return Some(format!("{}: {}", v["errorType"], v["error"]));
    }
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    if result.is_empty() {
        return Some("no series".to_string());
    }
    let finite = result.iter().any(|s| {
        s["value"][1]
            .as_str()
            .and_then(|x| x.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    });
    (!finite).then(|| format!("no series with a number: {}", Value::Array(result)))
}

#[test]
fn every_panel_query_answers_with_data_from_a_real_workload() {
    let dir = queue_dir();
    let q: Queue<u64> = Queue::builder()
        .name(QUEUE)
        .dir(dir.path())
        .maxsize(20)
        .create()
        .unwrap();
    let _workload = workload(&q);

    let ex = Exporter::start(dir.path());
    let rules = promql::rules_path().canonicalize().unwrap();
    let prom = Prometheus::with_rules(Some(ex.port), &[&rules]);
    let up = wait_for(Duration::from_secs(60), || {
        scalar(prom.port, "up").filter(|v| *v == 1.0)
    });
    assert!(up.is_some(), "Prometheus never scraped the exporter");
    let size = format!(r#"mpqueue_gets_total{{queue="{QUEUE}"}} > 0"#);
    assert!(
        wait_for(Duration::from_secs(30), || scalar(prom.port, &size)).is_some(),
        "Prometheus never saw a get from {QUEUE}"
    );

    // The $queue variable: label_values(mpqueue_size, queue), as Grafana asks for it.
    let d = promql::dashboard();
    let var = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "queue")
        .expect("a queue variable");
    let def = var["query"]["query"].as_str().unwrap();
    let inner = def
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not label_values(metric, label): {def}"));
    let (metric, label) = inner.split_once(',').unwrap();
    let values = prom
        .api(&format!(
            "/api/v1/label/{}/values?match[]={}",
            label.trim(),
            urlencode(metric.trim())
        ))
        .expect("label values");
    assert!(
        values["data"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == QUEUE)),
        "{def} does not list {QUEUE}: {values}"
    );

    // Every panel query, until all answer with data or the deadline passes.
    let vars = vars(QUEUE);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let targets = promql::targets(&d);
    assert!(!targets.is_empty());
    let mut failures = Vec::new();
    let all_answer = wait_for(Duration::from_secs(60), || {
        failures = targets
            .iter()
            .filter_map(|t| {
                let at = format!("panel {:?} target {}", t.panel, t.ref_id);
                match promql::substitute(&t.expr, &vars) {
                    Err(e) => Some(format!("{at}: {e}")),
                    Ok(expr) => check(prom.port, &expr).map(|e| format!("{at}: {e}\n    {expr}")),
                }
            })
            .collect();
        failures.is_empty().then_some(())
    });
    assert!(
        all_answer.is_some(),
        "panel queries without data after 60 s of traffic:\n{}",
        failures.join("\n")
    );

    // The rules, evaluated every second on the same series: none errs (a many-to-many
    // match or a bad label set shows only with real data).
    let mut last = Value::Null;
    let evaluated = wait_for(Duration::from_secs(30), || {
        last = prom.api("/api/v1/rules")?;
        let rules: Vec<Value> = last["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        (!rules.is_empty()
            && rules.iter().all(|r| {
                !r["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001")
            }))
        .then_some(rules)
    })
    .unwrap_or_else(|| panic!("Prometheus never evaluated the rules: {last}"));
    let broken: Vec<String> = evaluated
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    // The queue is busy and drains: none of the alerts fires for it.
    let firing = query(
        prom.port,
        &format!(r#"ALERTS{{alertstate="firing",queue="{QUEUE}"}}"#),
    );
    assert!(
        firing.is_empty(),
        "alerts firing for a healthy queue: {firing:?}"
    );
}
