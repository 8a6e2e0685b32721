//! `--demo`: starts, watches and stops the demo workload, a program of its own.
//!
//! The workload is `mpqueue-demo` (`examples/src/bin/mpqueue-demo.rs`): queues with
//! producer and consumer processes, run until SIGTERM. It is looked for next to this
//! binary (`cargo build` puts both in `target/<profile>/`), or wherever
//! `$MPQUEUE_TOP_DEMO` says. The dashboard itself never opens a queue.
//!
//! The program runs in a process group of its own, so a terminal that hangs up (or a
//! Ctrl-C outside the dashboard's raw mode) signals the dashboard alone, which then stops
//! the workload in order; and it gets SIGTERM from the kernel if the dashboard dies without
//! stopping it. Stopping sends it SIGTERM; it stops its workers and is gone in a fraction
//! of a second, leaving nothing in shared memory.

use anyhow::Context;
use mpqueue::observe;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workload program's file name.
pub const PROGRAM: &str = "mpqueue-demo";
/// The environment variable that names the workload program instead.
pub const PROGRAM_ENV: &str = "MPQUEUE_TOP_DEMO";
/// How long the dashboard gives the workload to stop before it kills it and removes the
/// demo's queues itself.
const DEMO_STOPS_WITHIN: Duration = Duration::from_secs(5);

/// The running workload.
pub struct Demo {
    supervisor: Child,
    stopping_since: Option<Instant>,
    done: bool,
}

/// The workload program: `$MPQUEUE_TOP_DEMO`, else `mpqueue-demo` next to this binary.
///
/// # Errors
/// It is not there (with how to build it).
pub fn program() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(PROGRAM_ENV) {
        return Ok(p.into());
    }
    let exe = std::env::current_exe().context("finding this program's path")?;
    let p = exe.with_file_name(PROGRAM);
    anyhow::ensure!(
        p.is_file(),
        "the demo workload {} is not built: run `bash scripts/demo.sh`, or build it with \
         `cargo build -p mpqueue-examples --bin {PROGRAM}` (with the same --release as \
         mpqueue-top), or set {PROGRAM_ENV} to its path",
        p.display()
    );
    Ok(p)
}

impl Demo {
    /// Starts the workload (before the terminal is set up, so an error is printed plainly).
    ///
    /// # Errors
    /// The program is missing or cannot be started.
    pub fn start() -> anyhow::Result<Demo> {
        let program = program()?;
        let dashboard = std::process::id();
        let mut cmd = Command::new(&program);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and makes only
        // async-signal-safe system calls (prctl, getppid); it allocates nothing (the error
        // is a constant OS error code).
        unsafe {
            cmd.pre_exec(move || {
                // SIGTERM to the workload when this (main) thread of the dashboard ends.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The dashboard died before the line above: nobody would stop the workload.
                if libc::getppid() as u32 != dashboard {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            })
        };
        let supervisor = cmd
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Demo {
            supervisor,
            stopping_since: None,
            done: false,
        })
    }

    /// The workload's pid: the demo's queues are `a.PID.*`.
    pub fn pid(&self) -> u32 {
        self.supervisor.id()
    }

    /// Asks the workload to stop; [`poll`](Self::poll) says when it has.
    pub fn begin_stop(&mut self) {
        if self.stopping_since.is_none() && !self.done {
            self.stopping_since = Some(Instant::now());
            self.signal(libc::SIGTERM);
        }
    }

    /// Whether the workload has stopped (after [`begin_stop`](Self::begin_stop)). One that
    /// is still there after [`DEMO_STOPS_WITHIN`] is killed, and the demo's queues that no
    /// live process holds any more are removed.
    ///
    /// # Errors
    /// Waiting for the workload failed.
    pub fn poll(&mut self) -> anyhow::Result<bool> {
        if self.done {
            return Ok(true);
        }
        if self.supervisor.try_wait()?.is_some() {
            self.done = true;
        } else if self
            .stopping_since
            .is_some_and(|t| t.elapsed() >= DEMO_STOPS_WITHIN)
        {
            let _ = self.supervisor.kill();
            self.supervisor.wait()?;
            self.done = true;
        }
        if self.done {
            self.remove_leftovers();
        }
        Ok(self.done)
    }

    /// Stops the workload and waits for it (bounded, see [`poll`](Self::poll)).
    ///
    /// # Errors
    /// As for [`poll`](Self::poll).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.begin_stop();
        while !self.poll()? {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Sends `signal` to the workload's supervisor (not yet reaped, so its pid is still
    /// its own).
    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) has no memory effects; the pid is our unreaped child's.
        unsafe { libc::kill(self.supervisor.id() as libc::pid_t, signal) };
    }

    /// Removes what the demo's processes could not (only after a kill): its queues whose
    /// processes are all known dead.
    fn remove_leftovers(&self) {
        let prefix = format!("a.{}.", self.pid());
        if let Ok(list) = observe::list() {
            for q in list {
                let id = q
                    .path()
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned());
                if id.is_some_and(|id| id.starts_with(&prefix)) {
                    q.remove_if_stale();
                }
            }
        }
    }
}
