//! `mpqueue-top`: a live terminal dashboard of every mpqueue queue on the machine.
//!
//! It reads the queues' stats segments only (through `mpqueue::observe`): it never opens a
//! queue's data, never takes a queue's lock, and never slows a queue down.
//!
//! This file holds the command line, the terminal's setup and restore, and the event loop.
//! The rest: [`app`] (state), [`view`] (drawing), [`input`] (keys to actions), [`report`]
//! (`--once`, `--json`), [`demo`] (`--demo`'s workload), [`fmt`] and [`theme`].

mod app;
mod demo;
mod fmt;
mod input;
mod report;
mod theme;
mod view;

use anyhow::Context;
use app::App;
use clap::Parser;
use crossterm::event::{self, Event};
use demo::Demo;
use mpqueue::observe::HealthRules;
use ratatui::DefaultTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A live dashboard of every mpqueue queue: health, sizes, rates, time in queue, oldest
/// item's age, Full/Empty events, blocked times, per-process feeder depth and liveness.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Refresh interval, e.g. `500ms`, `1s`, `2.5s`.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// A queue whose items wait while nothing was got for this long (and whose oldest
    /// item is this old) is `stalled`, e.g. `30s`, `500ms`, `2m` (as mpqueue-exporter's).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = mpqueue::observe::parse_stall_after)]
    stall_after: Duration,
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
        return cleanup(&dir);
    }
    let rules = HealthRules {
        stall_after: args.stall_after,
        ..HealthRules::default()
    };
    if args.once || args.json {
        let report = report::Report::collect(&dir, &rules)
            .with_context(|| format!("reading {}", dir.display()))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report.json())?);
        } else {
            print!("{}", report.table());
        }
        return Ok(());
    }
    if args.dir.is_some() && args.demo {
        anyhow::bail!(
            "--demo runs its queues in the default directory; drop --dir (or set MPQUEUE_DIR)"
        );
    }
    // Started before the terminal is set up, so that an error is printed plainly.
    let demo = if args.demo {
        Some(Demo::start().context("starting the demo")?)
    } else {
        None
    };
    run(App::new(dir, args.interval, rules), demo)
}

/// `--cleanup`: removes the stale queues' segments and says which.
fn cleanup(dir: &Path) -> anyhow::Result<()> {
    let removed =
        mpqueue::observe::cleanup_in(dir).with_context(|| format!("cleaning {}", dir.display()))?;
    if removed.is_empty() {
        println!("no stale queue segments in {}", dir.display());
    }
    for path in removed {
        println!("removed {}", fmt::escape(&path.display().to_string()));
    }
    Ok(())
}

/// The dashboard: sets up the terminal, runs the event loop, gives the terminal back. On
/// quit, a demo workload is stopped first, with the dashboard still up and saying so; the
/// terminal is given back once it has stopped.
fn run(app: App, demo: Option<Demo>) -> anyhow::Result<()> {
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, signalled.clone())?;
    }
    let mut dashboard = Dashboard {
        app,
        demo,
        signalled,
        next_refresh: Instant::now(),
        dirty: true,
    };
    // Raw mode, alternate screen, and a panic hook that restores the terminal.
    let result = ratatui::try_init()
        .context("setting up the terminal")
        .and_then(|mut terminal| {
            let result = input_thread().and_then(|keys| dashboard.run(&mut terminal, &keys));
            ratatui::restore();
            result
        });
    // Not stopped in the loop (the terminal went away, or it failed): stop it now.
    if let Some(d) = dashboard.demo {
        d.stop().context("stopping the demo")?;
    }
    result
}

/// Terminal events, read by a thread of their own, so the loop stays responsive even if
/// the terminal hangs up (crossterm then keeps reading end-of-file and never returns an
/// event).
fn input_thread() -> anyhow::Result<Receiver<Event>> {
    let (events, received) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            while let Ok(ev) = event::read() {
                if events.send(ev).is_err() {
                    break;
                }
            }
        })
        .context("starting the input thread")?;
    Ok(received)
}

/// What the event loop works on.
struct Dashboard {
    app: App,
    demo: Option<Demo>,
    /// Set by SIGTERM, SIGINT and SIGHUP.
    signalled: Arc<AtomicBool>,
    next_refresh: Instant,
    /// The screen no longer shows the state.
    dirty: bool,
}

impl Dashboard {
    /// Draws when something changed, waits for an event or the next refresh, repeats until
    /// the user quits (or a signal comes, or the terminal goes away) and the demo, if any,
    /// has stopped.
    fn run(
        &mut self,
        terminal: &mut DefaultTerminal,
        events: &Receiver<Event>,
    ) -> anyhow::Result<()> {
        self.app.refresh();
        self.next_refresh = Instant::now() + self.app.interval;
        loop {
            // Relaxed: the flag carries no data; it is looked at again every pass.
            let quitting = self.app.quit || self.signalled.load(Ordering::Relaxed);
            if quitting && self.demo_stopped()? {
                return Ok(());
            }
            // The terminal went away (hang-up): nothing left to draw on.
            if crossterm::terminal::size().is_err() {
                return Ok(());
            }
            if self.dirty {
                terminal.draw(|f| view::render(f, &self.app))?;
                self.dirty = false;
            }
            // Wake at the next refresh, and at least every 250 ms to notice signals (every
            // 10 ms while the demo stops).
            let slice = Duration::from_millis(if quitting { 10 } else { 250 });
            let wait = self
                .next_refresh
                .saturating_duration_since(Instant::now())
                .min(slice);
            match events.recv_timeout(wait) {
                Ok(ev) => self.on_event(ev),
                Err(RecvTimeoutError::Timeout) => {}
                // No more input (the reader ended): wait for signals and refreshes only.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
            if Instant::now() >= self.next_refresh {
                self.on_tick(quitting);
            }
        }
    }

    /// While quitting: stops the demo (true once it has stopped, or if there is none), and
    /// says on screen what the dashboard waits for.
    fn demo_stopped(&mut self) -> anyhow::Result<bool> {
        let Some(d) = self.demo.as_mut() else {
            return Ok(true);
        };
        d.begin_stop();
        if d.poll().context("stopping the demo")? {
            return Ok(true);
        }
        let left = self.app.processes_of(&format!("a.{}.", d.pid()));
        let notice = format!("stopping the demo: waiting for {left} of its processes to finish…");
        if self.app.notice.as_ref() != Some(&notice) {
            self.app.notice = Some(notice);
            self.dirty = true;
        }
        Ok(false)
    }

    /// A key becomes an action on the state; a resize redraws.
    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Key(key) => {
                if let Some(action) = input::action(key, self.app.mode) {
                    let before = self.app.interval;
                    self.app.apply(action);
                    if self.app.interval != before {
                        self.next_refresh = Instant::now() + self.app.interval;
                    }
                    self.dirty = true;
                }
            }
            Event::Resize(..) => self.dirty = true,
            _ => {}
        }
    }

    /// Time to refresh: new snapshots (unless paused), and when the next refresh is.
    fn on_tick(&mut self, quitting: bool) {
        if !self.app.paused {
            self.app.refresh();
            self.dirty = true;
        }
        // While the demo stops, its processes are seen leaving.
        let every = if quitting {
            self.app.interval.min(Duration::from_millis(100))
        } else {
            self.app.interval
        };
        self.next_refresh = Instant::now() + every;
    }
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

    #[test]
    fn stall_after_takes_the_shared_syntax_and_refuses_zero() {
        use mpqueue::observe::parse_stall_after;
        assert_eq!(parse_stall_after("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_stall_after("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_stall_after("10").unwrap_err().contains("no unit"));
        assert!(
            mpqueue::observe::parse_stall_after("0s")
                .unwrap_err()
                .contains("zero")
        );
        let args = Args::try_parse_from(["mpqueue-top", "--once"]).unwrap();
        assert_eq!(args.stall_after, Duration::from_secs(10));
    }

    #[test]
    fn the_arguments_are_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
