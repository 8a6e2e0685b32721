//! `mpqueue-exporter`: serves the counters of every mpqueue queue in the Prometheus text
//! format, read fresh from shared memory on each scrape. It never opens a queue's data and
//! never takes a queue's lock.

mod render;

use anyhow::Context;
use clap::Parser;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response, Server};

/// Serves every mpqueue queue's shared-memory counters to Prometheus.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on. Loopback by default; give another address explicitly to
    /// expose the metrics beyond this machine. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// Directory of the stats segments (default: $MPQUEUE_DIR, else /dev/shm/mpqueue-UID).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Path of the metrics page.
    #[arg(long, default_value = "/metrics", value_parser = parse_path)]
    path: String,
    /// Leave out the per-process families (`mpqueue_process_*`, labelled by `pid` and
    /// `role`): each new process makes a new set of series. `mpqueue_processes` stays.
    #[arg(long)]
    no_process_metrics: bool,
}

fn parse_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && !s.contains(char::is_whitespace) && s != "/" {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a path like /metrics"))
    }
}

/// The exporter's own metrics, kept by a `metrics-exporter-prometheus` recorder.
struct Own {
    handle: PrometheusHandle,
}

impl Own {
    fn install() -> anyhow::Result<Self> {
        let handle = PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0])?
            .install_recorder()
            .context("installing the metrics recorder")?;
        metrics::describe_histogram!(
            "mpqueue_exporter_scrape_duration_seconds",
            metrics::Unit::Seconds,
            "Time to read every stats segment and render the metrics."
        );
        metrics::describe_counter!(
            "mpqueue_exporter_scrape_errors_total",
            "Stats segments that could not be read (corrupt, foreign, wrong version, no permission), by reason."
        );
        metrics::describe_gauge!(
            "mpqueue_exporter_queues",
            "Live queues exported by the last scrape."
        );
        metrics::describe_gauge!(
            "mpqueue_exporter_stale_queues",
            "Queues with no live process, left out of the last scrape."
        );
        metrics::counter!("mpqueue_exporter_scrape_errors_total", "reason" => "corrupt")
            .absolute(0);
        Ok(Own { handle })
    }
}

fn error_reason(e: &mpqueue::Error) -> &'static str {
    match e {
        mpqueue::Error::Corrupt { .. } => "corrupt",
        mpqueue::Error::Incompatible { .. } => "incompatible",
        mpqueue::Error::PermissionDenied { .. } => "permission",
        mpqueue::Error::NotFound { .. } => "vanished",
        _ => "io",
    }
}

/// One scrape: every stats segment, read now.
fn scrape(dir: &Path, own: &Own, options: render::Options) -> String {
    let start = Instant::now();
    let mut snaps = Vec::new();
    match mpqueue::observe::list_in(dir) {
        Ok(list) => {
            for q in list {
                match q.snapshot() {
                    Ok(s) => snaps.push(s),
                    Err(mpqueue::Error::NotFound { .. }) => {} // removed while listing
                    Err(e) => metrics::counter!("mpqueue_exporter_scrape_errors_total", "reason" => error_reason(&e)).increment(1),
                }
            }
        }
        Err(e) => {
            metrics::counter!("mpqueue_exporter_scrape_errors_total", "reason" => error_reason(&e))
                .increment(1)
        }
    }
    let live = snaps.iter().filter(|s| s.alive).count();
    metrics::gauge!("mpqueue_exporter_queues").set(live as f64);
    metrics::gauge!("mpqueue_exporter_stale_queues").set((snaps.len() - live) as f64);
    let mut out = String::with_capacity(64 * 1024);
    render::render_with(&mut out, &snaps, options);
    metrics::histogram!("mpqueue_exporter_scrape_duration_seconds")
        .record(start.elapsed().as_secs_f64());
    own.handle.run_upkeep();
    out.push_str(&own.handle.render());
    out
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header")
}

fn respond(req: Request, dir: &Path, own: &Own, metrics_path: &str, options: render::Options) {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    let result = if *req.method() != Method::Get && *req.method() != Method::Head {
        req.respond(Response::from_string("method not allowed\n").with_status_code(405))
    } else if path == metrics_path {
        let body = scrape(dir, own, options);
        req.respond(Response::from_string(body).with_header(header(
            "Content-Type",
            "text/plain; version=0.0.4; charset=utf-8",
        )))
    } else if path == "/" {
        let page = format!(
            "<!doctype html><html><head><title>mpqueue exporter</title></head><body>\
             <h1>mpqueue exporter</h1><p><a href=\"{metrics_path}\">{metrics_path}</a></p></body></html>\n"
        );
        req.respond(
            Response::from_string(page)
                .with_header(header("Content-Type", "text/html; charset=utf-8")),
        )
    } else {
        req.respond(Response::from_string("not found\n").with_status_code(404))
    };
    if let Err(e) = result {
        eprintln!("mpqueue-exporter: writing a response: {e}");
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.dir.unwrap_or_else(mpqueue::queue_dir);
    let server = Server::http(args.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let addr = server
        .server_addr()
        .to_ip()
        .context("the server is not on an IP address")?;
    let own = Own::install()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let options = render::Options {
        process_metrics: !args.no_process_metrics,
    };
    println!(
        "mpqueue-exporter: serving http://{addr}{} for {}",
        args.path,
        dir.display()
    );
    while !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(req)) => respond(req, &dir, &own, &args.path, options),
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("accepting a connection"),
        }
    }
    println!("mpqueue-exporter: stopped");
    Ok(())
}
