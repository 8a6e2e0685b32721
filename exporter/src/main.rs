//! `mpqueue-exporter`: serves the counters of every mpqueue queue in the Prometheus text
//! format, read fresh from shared memory on each scrape. It never opens a queue's data and
//! never takes a queue's lock.

mod render;
mod server;
mod verdicts;

use anyhow::Context;
use clap::Parser;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use mpqueue::observe::HealthRules;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use verdicts::Verdicts;

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
    /// Connections served at once. At the limit, the oldest connection that has not sent
    /// its request yet is closed to make room; if all are busy, new ones get a 503.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    max_connections: u16,
    /// A queue whose items wait, with a live consumer that has got nothing for this long
    /// (and items as old), is `stalled` in `mpqueue_health`. A number and a unit: 500ms,
    /// 10s, 2m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = mpqueue::observe::parse_stall_after)]
    stall_after: Duration,
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

/// One scrape: every stats segment, read now, and each live queue judged by `verdicts`.
///
/// Their lock is held while the segments are read and judged, so concurrent scrapes add
/// each queue's snapshots to the health window in the order they were taken.
fn scrape(dir: &Path, own: &Own, verdicts: &Mutex<Verdicts>, options: render::Options) -> String {
    let start = Instant::now();
    let mut verdicts = verdicts.lock().unwrap_or_else(PoisonError::into_inner);
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
    let total = snaps.len();
    let live: Vec<render::Judged> = snaps
        .into_iter()
        .filter(|s| s.alive)
        .map(|mut snapshot| render::Judged {
            health: verdicts.judge(&mut snapshot),
            snapshot,
        })
        .collect();
    let ids: Vec<String> = live.iter().map(|q| q.snapshot.id.clone()).collect();
    verdicts.retain(&ids);
    drop(verdicts);
    metrics::gauge!("mpqueue_exporter_queues").set(live.len() as f64);
    metrics::gauge!("mpqueue_exporter_stale_queues").set((total - live.len()) as f64);
    let mut out = String::with_capacity(64 * 1024);
    render::render_with(&mut out, &live, options);
    metrics::histogram!("mpqueue_exporter_scrape_duration_seconds")
        .record(start.elapsed().as_secs_f64());
    own.handle.run_upkeep();
    out.push_str(&own.handle.render());
    out
}

/// Completes on the first SIGINT or SIGTERM.
async fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.dir.unwrap_or_else(mpqueue::queue_dir);
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener
        .set_nonblocking(true)
        .context("setting the listening socket non-blocking")?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    let own = Own::install()?;
    // One thread serves every connection; scrapes run on at most two blocking threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .context("starting the runtime")?;
    let options = render::Options {
        process_metrics: !args.no_process_metrics,
    };
    // Kept across scrapes: `lagging` compares a queue with its earlier snapshots.
    let verdicts = Mutex::new(Verdicts::new(HealthRules {
        stall_after: args.stall_after,
        ..HealthRules::default()
    }));
    let site = Arc::new(server::Site {
        metrics_path: args.path.clone(),
        scrape: {
            let dir = dir.clone();
            Box::new(move || scrape(&dir, &own, &verdicts, options))
        },
    });
    let limits = server::Limits {
        max_connections: usize::from(args.max_connections),
        ..server::Limits::default()
    };
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::from_std(listener).context("registering the socket")?;
        let stop = stop_signal().await?;
        println!(
            "mpqueue-exporter: serving http://{addr}{} for {}",
            args.path,
            dir.display()
        );
        server::serve(listener, site, limits, stop).await;
        anyhow::Ok(())
    })?;
    println!("mpqueue-exporter: stopped");
    Ok(())
}
