//! The real `mpqueue-exporter` and a real Prometheus server, each on a loopback port and
//! killed on drop, and plain HTTP/1.0 requests to them.

use super::bin;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The exporter on a free loopback port; killed on drop.
pub struct Exporter {
    pub child: Child,
    pub port: u16,
}

impl Exporter {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// The exporter with `extra` flags after `--listen` and `--dir`.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(bin("mpqueue-exporter"))
            .args(["--listen", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Exporter { child, port }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET over HTTP/1.0; status 0 if nothing listens yet.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    status_and_body(&resp)
}

/// The status code (0 if there is none) and the body of an HTTP response.
pub fn status_and_body(resp: &str) -> (u16, String) {
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `s` percent-encoded for a URL query string.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query; empty while Prometheus is not ready.
pub fn query(port: u16, q: &str) -> Vec<Value> {
    let (status, body) = http_get(port, &format!("/api/v1/query?query={}", urlencode(q)));
    if status != 200 {
        return Vec::new(); // not ready yet
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The value of the first series an instant query returns.
pub fn scalar(port: u16, q: &str) -> Option<f64> {
    query(port, q).first()?["value"][1].as_str()?.parse().ok()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server on loopback scraping `target` every second; killed on drop.
pub struct Prometheus {
    pub child: Child,
    pub port: u16,
    _data: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: u16) -> Self {
        Self::with_rules(Some(target), &[])
    }

    /// A server that scrapes `target` (if any) every second and evaluates `rule_files`
    /// every second.
    pub fn with_rules(target: Option<u16>, rule_files: &[&Path]) -> Self {
        let data = tempfile::Builder::new()
            .prefix("prometheus-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let config = data.path().join("prometheus.yml");
        let scrape = match target {
            Some(target) => format!(
                "scrape_configs:\n  - job_name: mpqueue\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    \
                 static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
            ),
            None => "scrape_configs: []\n".to_string(),
        };
        // JSON strings are YAML strings: any path is quoted safely.
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| Value::from(p.to_str().expect("a UTF-8 rule file path")).to_string())
            .collect();
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{}]\n{scrape}",
                rules.join(", ")
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package) must be installed; scripts/test.sh installs it");
        Prometheus {
            child,
            port,
            _data: data,
        }
    }

    /// GET `path` of the HTTP API (`/api/v1/rules`, …) and its JSON document; `None` while
    /// the server does not answer 200 with JSON.
    pub fn api(&self, path: &str) -> Option<Value> {
        let (status, body) = http_get(self.port, path);
        if status != 200 {
            return None;
        }
        serde_json::from_str(&body).ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `promtool check metrics` on `page`: its exit code and what it said.
pub fn check_metrics(page: &str) -> (i32, String) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool (Debian package prometheus) must be installed; scripts/test.sh installs it",
        );
    p.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The exporter's metrics page, which must be served.
pub fn page(ex: &Exporter) -> String {
    let (status, body) = ex.get("/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of `family`'s sample for queue `name` (its first label), if there is one.
pub fn value(page: &str, family: &str, name: &str) -> Option<f64> {
    let prefix = format!("{family}{{queue=\"{name}\",");
    page.lines()
        .find(|l| l.starts_with(&prefix))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}
