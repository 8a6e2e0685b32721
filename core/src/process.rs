//! Forking children that share this process's queues, as Python's `Process` with the `fork`
//! start method does.

use crate::registry::{self, Member};
use crate::segment::SlotIndex;
use crate::sys::{self, ExitStatus};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

/// A number that changes in a child after every `fork` (`mpqueue::process::fork`,
/// `libc::fork`, Python's `os.fork()`), once a queue exists in the process: what a caller
/// cached for this process (a registration, an exit hook) is stale when the number it saw
/// differs. Cheaper than comparing pids (`getpid` is a system call).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let _q = mpqueue::Queue::<u8>::new(0)?;
/// let here = mpqueue::process::generation();
/// let child = mpqueue::process::fork(move || i32::from(mpqueue::process::generation() == here))?;
/// assert_eq!(child.join()?, 0); // the child's number differs
/// assert_eq!(mpqueue::process::generation(), here);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generation() -> u64 {
    registry::generation()
}

/// Exit code of a child whose closure panicked (as for a Rust `main` that panics).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Why [`Child::join`] did not produce an exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// The child was killed by a signal (e.g. 9 for SIGKILL).
    #[error("child {pid} was killed by signal {signal}")]
    Signaled {
        /// The child's pid.
        pid: u32,
        /// The signal number.
        signal: i32,
    },
    /// Waiting failed (e.g. the child was already reaped elsewhere).
    #[error("waiting for child {pid}: {source}")]
    Wait {
        /// The child's pid.
        pid: u32,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A child process started by [`fork`].
#[derive(Debug)]
pub struct Child {
    pid: u32,
    status: Option<ExitStatus>,
}

/// Forks a child process that runs `f`, then flushes every queue of the child (unless
/// [`cancel_join_thread`](crate::Queue::cancel_join_thread) was called on it), detaches
/// from them and exits with the code `f` returned ([`PANIC_EXIT_CODE`] if it panicked).
/// The child never returns into the caller's code and runs no destructors or exit handlers
/// of the parent.
///
/// A stats slot is reserved for the child in every queue of this process (and freed when
/// the child ends, even if it is killed); the child takes it over when it first uses the
/// queue.
///
/// Like any `fork` of a multi-threaded process, only the calling thread exists in the
/// child: `f` should not rely on locks that other threads of the parent may hold (the
/// queues themselves are safe: they reset their per-process state in the child). For the
/// same reason the child does not flush stdout at exit (its lock may be held for ever):
/// output `f` writes without a final newline must be flushed by `f`.
///
/// # Soundness
///
/// `fork(2)` in a multi-threaded process is why `nix::unistd::fork` is `unsafe`: POSIX
/// allows the child only async-signal-safe calls until it execs. This function is safe
/// nonetheless, because nothing the child can do from safe code becomes undefined behaviour:
///
/// - **Only the calling thread runs in the child.** To it, every other thread looks stopped
///   for ever at some instruction, which safe Rust must already survive (a thread can be
///   descheduled anywhere). Data behind a lock another thread held stays behind that lock:
///   the lock stays held in the child, so the child blocks on it (a deadlock, not undefined
///   behaviour) rather than see the data half-updated. Lock-free structures stay consistent
///   because they never depend on a thread finishing its step.
/// - **glibc repairs its own state.** Its `fork` takes and resets the `malloc` arena locks,
///   the stdio (`FILE`) locks and the dynamic loader's lock through its internal fork
///   handlers, so allocating, `dlopen` and C stdio work in the child.
/// - **This crate resets its own state.** The registry's `pthread_atfork` handlers take its
///   lock before the fork and release it in both processes, and bump the fork generation in
///   the child. Each queue then sees that its per-process state (feeder thread, buffers,
///   their mutexes, which the parent's threads may have held) belongs to an older
///   generation: it leaks that state untouched and attaches the child afresh, on the slot
///   reserved for it here. If the handlers cannot be registered the process aborts, so no
///   child ever runs without them.
/// - **The child never returns or unwinds into the parent's frames.** Everything it runs
///   (taking over its slots, `f`, flushing its queues) runs inside `catch_unwind`, and it
///   leaves with `_exit`, so no destructor or exit handler of the parent runs in it. A panic
///   exits with [`PANIC_EXIT_CODE`] (its payload is leaked: dropping it might panic again).
///
/// What the caller must still watch for, since it ends in a child that hangs for ever:
/// locks of Rust or C code other than glibc's and this crate's that other threads held at
/// the fork (a `std::sync::Mutex`, std's `stdout`/`stderr` locks, which a panic message
/// takes too, an allocator other than glibc's without fork handlers, a logger's lock). And
/// memory that other code mapped `MAP_SHARED` is shared with the child, not copied: a type
/// that hands out references to such memory assuming no other process can write it (as
/// the old `memmap` crate's anonymous maps allowed) is broken by any fork.
///
/// # Errors
/// The OS error if `fork` fails (e.g. `EAGAIN` at the process limit).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let child = mpqueue::process::fork(|| 7)?;
/// assert_eq!(child.join()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fork<F: FnOnce() -> i32>(f: F) -> std::io::Result<Child> {
    // Flushed here, in the parent, so the child does not write the parent's output again;
    // the child itself never takes the stdout or stderr lock (another thread of the parent
    // may have held it at the fork, for ever in the child).
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Every queue of this process is inherited: a slot is reserved in each for the child,
    // so the queue stays while the child lives even if everyone else detaches first. The
    // slot is the child's (and freed when it dies) before it runs any code of the caller.
    let queues: Vec<_> = registry::live()
        .into_iter()
        .map(|q| {
            let slot = q.reserve_for_child();
            (q, slot)
        })
        .collect();
    // SAFETY: see "Soundness" above: the child's use of locks other threads may hold can
    // deadlock but not break memory safety, and `run_child` never returns or unwinds.
    let forked = unsafe { sys::fork() };
    match forked {
        Ok(None) => run_child(queues, f),
        Ok(Some(pid)) => {
            for (q, slot) in &queues {
                if let Some(i) = slot {
                    q.assign_child(*i, pid);
                }
            }
            Ok(Child { pid, status: None })
        }
        Err(e) => {
            for (q, slot) in &queues {
                if let Some(i) = slot {
                    q.unreserve(*i);
                }
            }
            Err(e)
        }
    }
}

/// The child's side of [`fork`]: takes over the slots reserved for it, runs `f`, flushes and
/// detaches its queues, and exits with `f`'s code. Nothing unwinds out of it.
fn run_child<F: FnOnce() -> i32>(queues: Vec<(Arc<dyn Member>, Option<SlotIndex>)>, f: F) -> ! {
    let claimed = no_unwind(move || {
        for (q, slot) in &queues {
            if let Some(i) = slot {
                q.hold_claim(*i);
            }
        }
    });
    // A panic in `f` still flushes the queues (what it put before panicking is delivered),
    // as a panic in the crate's own steps does not: that is a bug, and the child just exits.
    let code = claimed.and_then(|()| {
        let code = no_unwind(f).unwrap_or(PANIC_EXIT_CODE);
        no_unwind(|| {
            for q in registry::live() {
                q.shutdown_process();
            }
        })
        .map(|()| code)
    });
    sys::exit_now(code.unwrap_or(PANIC_EXIT_CODE))
}

/// Runs `f`, stopping a panic from unwinding further: `None` if it panicked. The payload is
/// leaked, since its destructor could panic in turn.
fn no_unwind<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(std::mem::forget)
        .ok()
}

impl Child {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn code(&self, status: ExitStatus) -> Result<i32, ChildError> {
        match status {
            ExitStatus::Code(c) => Ok(c),
            ExitStatus::Signal(signal) => Err(ChildError::Signaled {
                pid: self.pid,
                signal,
            }),
        }
    }

    /// Waits for the child to end and returns its exit code.
    ///
    /// # Errors
    /// [`ChildError::Signaled`] if a signal killed it; [`ChildError::Wait`] if waiting failed.
    pub fn join(mut self) -> Result<i32, ChildError> {
        let status = self.wait()?;
        self.code(status)
    }

    /// Waits at most `timeout`; `Ok(None)` if the child is still running.
    ///
    /// # Errors
    /// As for [`join`](Self::join).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<i32>, ChildError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            if let Some(status) = self.try_wait()? {
                return self.code(status).map(Some);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Waits for the child to end.
    ///
    /// # Errors
    /// [`ChildError::Wait`] if waiting failed.
    pub fn wait(&mut self) -> Result<ExitStatus, ChildError> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let s = sys::wait_child(self.pid, false)
            .map_err(|source| ChildError::Wait {
                pid: self.pid,
                source,
            })?
            .ok_or_else(|| ChildError::Wait {
                pid: self.pid,
                source: std::io::Error::other("waitpid returned no status"),
            })?;
        self.status = Some(s);
        Ok(s)
    }

    /// The child's status if it has ended, without waiting.
    ///
    /// # Errors
    /// [`ChildError::Wait`] if waiting failed.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, ChildError> {
        if self.status.is_none() {
            self.status = sys::wait_child(self.pid, true).map_err(|source| ChildError::Wait {
                pid: self.pid,
                source,
            })?;
        }
        Ok(self.status)
    }

    /// Sends `signal` (e.g. `libc::SIGKILL`) to the child.
    ///
    /// # Errors
    /// The OS error (e.g. the child was already reaped); `EINVAL` for a real-time signal
    /// (the `nix` crate, which sends it, names only the standard signals).
    pub fn kill(&self, signal: i32) -> std::io::Result<()> {
        if self.status.is_some() {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        sys::kill(self.pid, signal)
    }
}

pub use crate::sys::ExitStatus as Status;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Queue;

    #[test]
    fn a_child_that_panics_exits_with_101_and_still_flushes() {
        let q: Queue<u32> = Queue::new(0).unwrap();
        let child = fork({
            let q = q.clone();
            move || -> i32 {
                q.put(7).unwrap();
                panic!("in the child, on purpose");
            }
        })
        .unwrap();
        assert_eq!(child.join().unwrap(), PANIC_EXIT_CODE);
        assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 7);
    }
}
