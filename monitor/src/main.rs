//! `mpqueue-top`: a live terminal dashboard of every mpqueue queue on the machine.
//!
//! It reads the queues' stats segments only (through `mpqueue::observe`): it never opens a
//! queue's data, never takes a queue's lock, and never slows a queue down.

mod app;
mod demo;
mod fmt;
mod input;
mod report;
mod theme;
mod ui;

use anyhow::Context;
use app::App;
use clap::Parser;
use crossterm::event::{self, Event};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A live dashboard of every mpqueue queue: sizes, rates, Full/Empty events, blocked
/// times, per-process feeder depth and liveness.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Refresh interval, e.g. `500ms`, `1s`, `2.5s`.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// Directory of the stats segments (default: $MPQUEUE_DIR, else /dev/shm/mpqueue-UID).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one table of every queue and exit.
    #[arg(long, conflicts_with_all = ["json", "cleanup"])]
    once: bool,
    /// Print one JSON document of every queue and exit (schema in monitor/README.md).
    #[arg(long, conflicts_with = "cleanup")]
    json: bool,
    /// Remove the segments of stale queues (no live process attached), print what was removed.
    #[arg(long)]
    cleanup: bool,
    /// Start a demo workload in child processes and show it; quitting stops it.
    #[arg(long, conflicts_with_all = ["once", "json", "cleanup"])]
    demo: bool,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let secs: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 500ms or 2s)"))?;
    let secs = secs * scale;
    if !(0.05..=3600.0).contains(&secs) {
        return Err(format!("interval {s:?} must be between 50ms and 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.dir.clone().unwrap_or_else(mpqueue::queue_dir);
    if args.cleanup {
        let removed = mpqueue::observe::cleanup_in(&dir)
            .with_context(|| format!("cleaning {}", dir.display()))?;
        if removed.is_empty() {
            println!("no stale queue segments in {}", dir.display());
        }
        for path in removed {
            println!("removed {}", fmt::escape(&path.display().to_string()));
        }
        return Ok(());
    }
    if args.once || args.json {
        let (snaps, errors) =
            report::collect(&dir).with_context(|| format!("reading {}", dir.display()))?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report::json(&dir, &snaps, &errors))?
            );
        } else {
            print!("{}", report::table(&snaps, &errors));
        }
        return Ok(());
    }
    if args.dir.is_some() && args.demo {
        anyhow::bail!(
            "--demo runs its queues in the default directory; drop --dir (or set MPQUEUE_DIR)"
        );
    }
    // Fork the workload before any thread or terminal state exists.
    let demo = if args.demo {
        Some(demo::start().context("starting the demo")?)
    } else {
        None
    };
    run(App::new(dir, args.interval), demo)
}

/// The event loop: draw, wait for a key or the next refresh, repeat. On quit, a demo
/// workload is stopped first, with the dashboard still up and saying so; the terminal is
/// given back once it has stopped.
fn run(mut app: App, mut demo: Option<demo::Demo>) -> anyhow::Result<()> {
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, signalled.clone())?;
    }
    // Raw mode, alternate screen, and a panic hook that restores the terminal.
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    // Keys arrive from a reader thread, so the loop stays responsive even if the terminal
    // hangs up (crossterm then keeps reading end-of-file and never returns an event).
    let (keys, events) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            while let Ok(ev) = event::read() {
                if keys.send(ev).is_err() {
                    break;
                }
            }
        })
        .context("starting the input thread")?;
    let result = (|| -> anyhow::Result<()> {
        app.refresh();
        let mut next = Instant::now() + app.interval;
        let mut dirty = true;
        loop {
            let quitting = app.quit || signalled.load(Ordering::Relaxed);
            if quitting {
                let Some(d) = demo.as_mut() else { break };
                d.begin_stop();
                if d.poll().context("stopping the demo")? {
                    break;
                }
                let left = app.processes_of(&format!("a.{}.", d.pid()));
                let notice =
                    format!("stopping the demo: waiting for {left} of its processes to finish…");
                if app.notice.as_ref() != Some(&notice) {
                    app.notice = Some(notice);
                    dirty = true;
                }
            }
            // The terminal went away (hang-up): nothing left to draw on.
            if crossterm::terminal::size().is_err() {
                break;
            }
            if dirty {
                terminal.draw(|f| ui::render(f, &app))?;
                dirty = false;
            }
            // Wake at the next refresh, and at least every 250 ms to notice signals (every
            // 10 ms while the demo stops).
            let slice = Duration::from_millis(if quitting { 10 } else { 250 });
            let wait = next.saturating_duration_since(Instant::now()).min(slice);
            if let Ok(ev) = events.recv_timeout(wait) {
                match ev {
                    Event::Key(key) => {
                        if let Some(action) = input::action(key, app.mode) {
                            let before = app.interval;
                            app.apply(action);
                            if app.interval != before {
                                next = Instant::now() + app.interval;
                            }
                            dirty = true;
                        }
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
            if Instant::now() >= next {
                if !app.paused {
                    app.refresh();
                    dirty = true;
                }
                // While the demo stops, its processes are seen leaving.
                let every = if quitting {
                    app.interval.min(Duration::from_millis(100))
                } else {
                    app.interval
                };
                next = Instant::now() + every;
            }
        }
        Ok(())
    })();
    ratatui::restore();
    // Not stopped above (the terminal went away, or drawing failed): stop it now.
    if let Some(d) = demo {
        d.stop().context("stopping the demo")?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_interval("fast").is_err());
        assert!(parse_interval("1ms").is_err());
    }
}
