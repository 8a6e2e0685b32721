//! The one place for system calls: clocks, futex waits, robust process-shared mutexes,
//! shared mappings, and process identity and control.
//!
//! Everything above this module calls only the wrappers here. They go through [`nix`]
//! wherever it wraps the call (clocks, `mmap`/`munmap`, `fork`, `kill`, `getuid`); `libc` is
//! called directly only for what nix 0.32 does not offer, or offers in a form that loses
//! information:
//! - **futexes**: `syscall(SYS_futex)` with `FUTEX_WAIT_BITSET` (an absolute
//!   `CLOCK_MONOTONIC` deadline) and `FUTEX_WAKE`;
//! - **robust process-shared mutexes**: `pthread_mutexattr_*`, `pthread_mutex_init`,
//!   `_trylock`, `_unlock`, `_consistent`, and `pthread_mutex_clocklock` (declared here: the
//!   `libc` crate lacks it);
//! - **`_exit`** (a forked child must leave without running its parent's exit handlers) and
//!   **`pthread_atfork`** (the registry's fork hooks): nix has neither;
//! - **`waitpid`**: nix's `WaitStatus` names signals with its `Signal` enum, which has no
//!   real-time signals; for a child killed by one, nix reaps the child and then fails with
//!   `EINVAL`, so its status would be lost. `libc::waitpid` reports every signal.
//!
//! Each `unsafe` block says why it holds.

use nix::errno::Errno;
use nix::sys::mman::{self, MapFlags, ProtFlags};
use nix::sys::signal::Signal;
use nix::sys::time::TimeSpec;
use nix::unistd::{ForkResult, Pid};
use std::cell::UnsafeCell;
use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock every deadline in the crate uses.
#[inline]
pub fn mono_now() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Nanoseconds on `CLOCK_MONOTONIC_COARSE` (about 5 ns to read; tick resolution): the
/// last put and get of each process, and the put timeline.
#[inline]
pub fn coarse_now() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// Nanoseconds since the Unix epoch.
pub fn realtime_now() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// The time on `clock` in nanoseconds. `libc` rather than `nix::time::clock_gettime`: every
/// put and get reads a clock, and nix's wrapper (a `Result` and a `TimeSpec`, not inlined
/// across crates) costs 17 instructions per read more, on a path whose whole budget for
/// its clock reads is about 45.
#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write. The call fails only for a clock the kernel
    // lacks (these three exist on every Linux since 2.6.32), leaving it zero.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// `ns` nanoseconds as a timespec (for the futex and `pthread_mutex_clocklock` deadlines).
fn timespec(ns: u64) -> TimeSpec {
    TimeSpec::new(
        (ns / 1_000_000_000).min(i64::MAX as u64) as libc::time_t,
        (ns % 1_000_000_000) as libc::c_long,
    )
}

/// How a futex wait ended. Spurious wake-ups and signals are reported as `Woken`: callers
/// always re-check their condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Woken, interrupted, or the word had already changed.
    Woken,
    /// The absolute monotonic deadline passed.
    TimedOut,
}

/// Sleeps while `*word == expected`, until woken or until `deadline` (monotonic ns).
///
/// Uses `FUTEX_WAIT_BITSET`, whose timeout is an absolute `CLOCK_MONOTONIC` time, so waits
/// that are interrupted and restarted never stretch a deadline. Shared (not private) futex:
/// the word lives in memory mapped by several processes.
pub fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) -> Wait {
    let ts = deadline.map(timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t.as_ref() as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; `ts_ptr` is null or
    // points to a live timespec. The kernel only reads both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
    if rc == -1 && Errno::last() == Errno::ETIMEDOUT {
        Wait::TimedOut
    } else {
        Wait::Woken
    }
}

/// Wakes up to `count` waiters sleeping on `word` in any process.
pub fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: `word` is a valid aligned u32; FUTEX_WAKE does not dereference anything else.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count);
    }
}

unsafe extern "C" {
    // glibc >= 2.30; the libc crate does not declare it.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// A `pthread_mutex_t` that lives in shared memory: process-shared and robust, so when its
/// owner dies the next locker is told (`EOWNERDEAD`) instead of waiting for ever.
#[repr(C)]
pub struct RobustMutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a process-shared pthread mutex is designed to be used from many threads and
// processes at once; all access goes through pthread calls.
unsafe impl Sync for RobustMutex {}

/// The outcome of taking a [`RobustMutex`]: a guard either way.
pub enum Locked<'a> {
    /// Taken normally.
    Clean(MutexGuard<'a>),
    /// Taken, but the previous owner died holding it: the protected state must be repaired,
    /// then [`MutexGuard::mark_consistent`] called before the guard drops.
    OwnerDied(MutexGuard<'a>),
}

impl<'a> Locked<'a> {
    /// The guard, and whether the previous owner died.
    pub fn into_parts(self) -> (MutexGuard<'a>, bool) {
        match self {
            Locked::Clean(g) => (g, false),
            Locked::OwnerDied(g) => (g, true),
        }
    }
}

/// Why a [`RobustMutex`] could not be taken.
#[derive(Debug, PartialEq, Eq)]
pub enum LockFailed {
    /// The deadline passed.
    TimedOut,
    /// The mutex is unusable (`ENOTRECOVERABLE`, or a corrupt segment): an errno.
    Broken(i32),
}

/// Holds a [`RobustMutex`]; unlocks it on drop. Only the thread that took the lock may
/// unlock it, so the guard is neither `Send` nor `Sync`.
pub struct MutexGuard<'a> {
    mutex: &'a RobustMutex,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl MutexGuard<'_> {
    /// Declares the state repaired after [`Locked::OwnerDied`].
    pub fn mark_consistent(&self) {
        // SAFETY: the guard proves this thread holds the mutex; an error (not robust, not
        // inconsistent) leaves the mutex as it was.
        unsafe { libc::pthread_mutex_consistent(self.mutex.0.get()) };
    }
}

impl Drop for MutexGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard was made by a successful lock in this thread (it is not Send).
        unsafe { libc::pthread_mutex_unlock(self.mutex.0.get()) };
    }
}

impl RobustMutex {
    /// Initialises the mutex in place as process-shared and robust.
    ///
    /// # Safety
    /// No other thread or process may use the mutex during initialisation (the segment is not
    /// published yet).
    pub unsafe fn init(&self) -> io::Result<()> {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: attr is initialised by pthread_mutexattr_init before any other use, and
        // destroyed at the end; the mutex memory is exclusively ours (caller's duty).
        unsafe {
            check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
            let attr_ptr = attr.as_mut_ptr();
            let rc = (|| {
                check(libc::pthread_mutexattr_setpshared(
                    attr_ptr,
                    libc::PTHREAD_PROCESS_SHARED,
                ))?;
                check(libc::pthread_mutexattr_setrobust(
                    attr_ptr,
                    libc::PTHREAD_MUTEX_ROBUST,
                ))?;
                check(libc::pthread_mutex_init(self.0.get(), attr_ptr))
            })();
            libc::pthread_mutexattr_destroy(attr_ptr);
            rc
        }
    }

    fn guard(&self, rc: libc::c_int) -> Result<Locked<'_>, LockFailed> {
        let g = || MutexGuard {
            mutex: self,
            _not_send: std::marker::PhantomData,
        };
        match rc {
            0 => Ok(Locked::Clean(g())),
            libc::EOWNERDEAD => Ok(Locked::OwnerDied(g())),
            libc::ETIMEDOUT | libc::EBUSY => Err(LockFailed::TimedOut),
            e => Err(LockFailed::Broken(e)),
        }
    }

    /// Takes the mutex, waiting at most until `deadline` (monotonic ns). Signals do not cut
    /// the wait short. (Robust locks are only taken with a deadline: an owner that is alive
    /// but stopped must not wedge the caller.)
    pub fn lock(&self, deadline: u64) -> Result<Locked<'_>, LockFailed> {
        // A free mutex is taken without the deadline's timespec (the common case).
        // SAFETY: see below.
        let rc = unsafe { libc::pthread_mutex_trylock(self.0.get()) };
        if rc != libc::EBUSY && rc != libc::EAGAIN {
            return self.guard(rc);
        }
        let ts = timespec(deadline);
        loop {
            // SAFETY: the mutex was initialised by its creator before the segment was
            // published; pthread calls are the only access; `ts` outlives the call.
            let rc = unsafe {
                pthread_mutex_clocklock(self.0.get(), libc::CLOCK_MONOTONIC, ts.as_ref())
            };
            if rc != libc::EINTR && rc != libc::EAGAIN {
                return self.guard(rc);
            }
        }
    }

    /// Takes the mutex only if it is free now.
    pub fn try_lock(&self) -> Result<Locked<'_>, LockFailed> {
        // SAFETY: see `lock`.
        let rc = unsafe { libc::pthread_mutex_trylock(self.0.get()) };
        self.guard(if rc == libc::EAGAIN { libc::EBUSY } else { rc })
    }
}

/// A pthread return code (0, or an error number) as a result.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(rc).into())
    }
}

/// A shared memory mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access to its contents goes through atomics,
// robust mutexes, or copies guarded by the ring's publication protocol.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

/// A new `len`-byte shared-memory file with no name (`memfd_create`, close-on-exec): the
/// data segment of an anonymous queue. Its pages are allocated as they are first touched.
/// A process that was not forked from one using the queue maps it through a copy of its
/// descriptor (`Queue::handoff`).
pub fn memory_file(len: usize) -> io::Result<File> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let fd = memfd_create(
        c"mpqueue-data",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let f = File::from(fd);
    // memfds are made 0777: only the owner may use this one, like the queue's files.
    nix::sys::stat::fchmod(&f, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    f.set_len(len as u64)?;
    // Its size is final: a process holding it cannot shrink it under another's mapping
    // (which would fault there), nor grow it, nor lift the seals.
    let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
    fcntl(&f, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(f)
}

/// Marks `fd` close-on-exec, so that a program this process starts does not inherit it.
pub fn close_on_exec(fd: impl AsFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

impl Mapping {
    /// Maps the first `len` bytes of `file` shared, read-write or read-only.
    pub fn file(file: &File, len: usize, writable: bool) -> io::Result<Self> {
        let prot = if writable {
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
        } else {
            ProtFlags::PROT_READ
        };
        // SAFETY: no address hint and no MAP_FIXED: the mapping lands on fresh pages, so it
        // replaces nothing and aliases no Rust object; the fd is borrowed for
        // the call only, and the kernel checks the length against the file's access mode.
        let p = unsafe { mman::mmap(None, nonzero(len)?, prot, MapFlags::MAP_SHARED, file, 0) }?;
        Ok(Self { ptr: p.cast(), len })
    }

    /// Allocates and maps the first `max` bytes of a writable mapping now, as writes to
    /// them would, without touching them (`MADV_POPULATE_WRITE`), so that no later access
    /// there waits for a page fault. Best effort: on a kernel without it, or without memory
    /// for the pages, the pages come as they are touched, as before.
    pub fn prefault(&self, max: usize) {
        // SAFETY: the range starts at this mapping's own page-aligned start and ends inside
        // it; the advice allocates and maps pages and changes no byte of them. libc: nix
        // 0.32 lacks this advice.
        let _ = unsafe {
            libc::madvise(
                self.ptr().cast(),
                self.len.min(max),
                libc::MADV_POPULATE_WRITE,
            )
        };
    }

    /// Start of the mapping.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// A mapping length: 0 is `EINVAL`, as `mmap` itself says.
fn nonzero(len: usize) -> io::Result<NonZeroUsize> {
    NonZeroUsize::new(len).ok_or_else(|| Errno::EINVAL.into())
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this value owns; nothing borrows it past drop.
        // munmap of a live mapping cannot fail.
        let _ = unsafe { mman::munmap(self.ptr.cast(), self.len) };
    }
}

/// This process's id.
pub fn pid() -> u32 {
    std::process::id()
}

/// Start time of process `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`), or
/// `None` if it cannot be read or is a zombie. Together with the pid it names a process
/// uniquely, since pids are reused.
pub fn process_start_time(pid: u32) -> Option<u64> {
    match proc_stat(pid) {
        ProcStat::Running(start) => Some(start),
        _ => None,
    }
}

/// What `/proc/PID/stat` says about a process.
enum ProcStat {
    /// Running (or stopped), started at this many clock ticks after boot.
    Running(u64),
    /// A zombie, or gone (`ENOENT`/`ESRCH`).
    Gone,
    /// The file could not be read or parsed (no descriptor left, hidden `/proc`, ...).
    Unreadable,
}

fn proc_stat(pid: u32) -> ProcStat {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => {
            return ProcStat::Gone;
        }
        Err(_) => return ProcStat::Unreadable,
    };
    // The command name is in parentheses and may itself contain ") ": split at the last one.
    let Some(close) = stat.rfind(')') else {
        return ProcStat::Unreadable;
    };
    let mut fields = stat[close + 1..].split_ascii_whitespace();
    match fields.next() {
        Some("Z" | "X") => ProcStat::Gone,
        // The fields after the name start at field 3 (state); start time is field 22.
        Some(_) => fields
            .nth(18)
            .and_then(|f| f.parse().ok())
            .map_or(ProcStat::Unreadable, ProcStat::Running),
        None => ProcStat::Unreadable,
    }
}

/// Whether a process recorded in a segment is running, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The process with that pid and start time runs.
    Alive,
    /// It is gone for certain: no such pid in its pid namespace, a zombie, or the pid now
    /// belongs to a process that started at another time.
    Dead,
    /// This process cannot tell: the process was recorded in another pid namespace (a
    /// container sharing `/dev/shm`), `/proc` is not this namespace's, or `/proc` could not be
    /// read. Never treated as dead: nothing is reaped or removed on uncertainty.
    Unknown,
}

/// The pid namespace this process's pids are valid in (the inode of `/proc/self/ns/pid`),
/// or 0 if it cannot be told: no `/proc`, or a `/proc` mounted for another pid namespace
/// (where `/proc/self` is not `getpid()`). Recorded in each stats slot with the pid.
pub fn pid_namespace() -> u64 {
    // Cached per process: a process never changes pid namespace (unshare affects children).
    static CACHE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let me = u64::from(pid());
    let cached = CACHE.load(std::sync::atomic::Ordering::Relaxed);
    if cached != 0 && cached >> 32 == me {
        return cached & 0xffff_ffff;
    }
    let ns = read_pid_namespace().unwrap_or(0);
    if ns != 0 && ns <= 0xffff_ffff {
        CACHE.store(me << 32 | ns, std::sync::atomic::Ordering::Relaxed);
    }
    ns
}

fn read_pid_namespace() -> Option<u64> {
    // `/proc/self` names this process only in a /proc mounted for our pid namespace.
    let own = std::fs::read_link("/proc/self").ok()?;
    if own.to_str()?.parse::<u32>().ok()? != pid() {
        return None;
    }
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Whether the process `pid` that started at `start_time`, recorded in pid namespace
/// `pid_ns` ([`pid_namespace`]; 0 = not known), still runs. Only evidence from this pid
/// namespace can prove a process dead: `kill(pid, 0)` failing with `ESRCH`, or
/// `/proc/PID/stat` showing a zombie or a different start time.
pub fn liveness(pid: u32, start_time: u64, pid_ns: u64) -> Liveness {
    let here = pid_namespace();
    if pid == 0 || pid > i32::MAX as u32 || pid_ns == 0 || here == 0 || pid_ns != here {
        return Liveness::Unknown;
    }
    match nix::sys::signal::kill(Pid::from_raw(pid as i32), None) {
        Err(Errno::ESRCH) => return Liveness::Dead,
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return Liveness::Unknown,
    }
    match proc_stat(pid) {
        ProcStat::Running(t) if t == start_time => Liveness::Alive,
        ProcStat::Running(_) if start_time == 0 => Liveness::Unknown,
        ProcStat::Running(_) | ProcStat::Gone => Liveness::Dead,
        ProcStat::Unreadable => Liveness::Unknown,
    }
}

/// Whether the process `pid` that started at `start_time` is still running in this pid
/// namespace (a quick check for processes this process itself made or saw).
#[cfg(test)]
pub fn process_alive(pid: u32, start_time: u64) -> bool {
    pid != 0 && process_start_time(pid) == Some(start_time)
}

/// Forks the process. `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
///
/// # Safety
/// In a multi-threaded process only the calling thread exists in the child, and locks that
/// other threads held at the fork stay held there. The caller must make sure the child uses
/// nothing that depends on such a lock in a way that breaks memory safety (blocking on it is
/// a deadlock, not undefined behaviour), and must end the child with [`exit_now`] rather than
/// return or unwind into frames of the parent. [`crate::process::fork`] is the one caller and
/// argues why its child meets this.
pub unsafe fn fork() -> io::Result<Option<u32>> {
    // SAFETY: the caller upholds the fork contract above.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => Ok(None),
        // A child's pid is positive.
        ForkResult::Parent { child } => Ok(Some(child.as_raw() as u32)),
    }
}

/// `pid` as a `Pid` naming exactly one process: 0 and values above `i32::MAX` (which would
/// become 0 or negative and name a process group) are `EINVAL`.
fn one_process(pid: u32) -> io::Result<Pid> {
    match i32::try_from(pid) {
        Ok(p) if p > 0 => Ok(Pid::from_raw(p)),
        _ => Err(Errno::EINVAL.into()),
    }
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// Waits for child `pid`; `nohang` returns `Ok(None)` if it is still running. Retries `EINTR`.
///
/// On `libc`, not nix: see the module doc (real-time signals).
pub fn wait_child(pid: u32, nohang: bool) -> io::Result<Option<ExitStatus>> {
    let pid = one_process(pid)?;
    let mut status = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let rc = unsafe { libc::waitpid(pid.as_raw(), &mut status, flags) };
        if rc == -1 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e.into()),
            }
        }
        return Ok((rc != 0).then(|| {
            if libc::WIFSIGNALED(status) {
                ExitStatus::Signal(libc::WTERMSIG(status))
            } else {
                ExitStatus::Code(libc::WEXITSTATUS(status))
            }
        }));
    }
}

/// Sends `signal` to `pid` (0 only checks that it may be signalled). Real-time signals are
/// refused with `EINVAL` (nix's `Signal` has none), as are pid 0 and pids above `i32::MAX`.
pub fn kill(pid: u32, signal: i32) -> io::Result<()> {
    let signal = match signal {
        0 => None,
        s => Some(Signal::try_from(s)?),
    };
    Ok(nix::sys::signal::kill(one_process(pid)?, signal)?)
}

/// Ends the process at once with `code`, running no destructors or atexit handlers (what a
/// forked child must do so it never runs its parent's cleanup). On `libc`: nix has no `_exit`.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Registers handlers run around every `fork()` in this process: `prepare` in the parent
/// before, `parent` and `child` in each process after. On `libc`: nix has no
/// `pthread_atfork`.
///
/// Aborts the process if registration fails (only for want of memory, where Rust aborts
/// too): a child forked without the handlers would take over its parent's per-process
/// queue state, so carrying on would not be safe.
pub fn at_fork(
    prepare: unsafe extern "C" fn(),
    parent: unsafe extern "C" fn(),
    child: unsafe extern "C" fn(),
) {
    // SAFETY: the handlers are plain functions valid for the whole program.
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if rc != 0 {
        std::process::abort();
    }
}

/// The real user id.
pub fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn futex_wait_times_out_on_deadline() {
        let w = AtomicU32::new(0);
        let start = mono_now();
        assert_eq!(futex_wait(&w, 0, Some(start + 20_000_000)), Wait::TimedOut);
        assert!(mono_now() >= start + 20_000_000);
    }

    #[test]
    fn futex_wait_returns_when_value_differs() {
        let w = AtomicU32::new(1);
        assert_eq!(futex_wait(&w, 0, None), Wait::Woken);
        w.store(2, Ordering::Relaxed);
    }

    #[test]
    fn liveness_is_unknown_outside_our_pid_namespace() {
        let (me, st, ns) = (pid(), process_start_time(pid()).unwrap(), pid_namespace());
        assert_ne!(ns, 0, "this test needs /proc of its own pid namespace");
        assert_eq!(liveness(me, st, ns), Liveness::Alive);
        assert_eq!(
            liveness(me, st, ns + 1),
            Liveness::Unknown,
            "another namespace"
        );
        assert_eq!(
            liveness(me, st, 0),
            Liveness::Unknown,
            "namespace not recorded"
        );
        assert_eq!(liveness(me, st + 1, ns), Liveness::Dead, "pid reused");
        assert_eq!(liveness(0, st, ns), Liveness::Unknown);
    }

    #[test]
    fn an_exited_process_is_dead_and_unreadable_proc_is_unknown() {
        // SAFETY: the child only calls _exit, which is async-signal-safe.
        let Some(child) = (unsafe { fork() }).unwrap() else {
            exit_now(0)
        };
        assert_eq!(wait_child(child, false).unwrap(), Some(ExitStatus::Code(0)));
        assert_eq!(liveness(child, 1, pid_namespace()), Liveness::Dead);
        // With no descriptor left, /proc cannot be read: unknown, never dead. (A low limit
        // keeps the test cheap; nextest runs each test in a process of its own.)
        let (me, st, ns) = (pid(), process_start_time(pid()).unwrap(), pid_namespace());
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid rlimit pointers; lowering the soft limit has no memory effects.
        unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = limit.rlim_cur.min(256);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut fds = Vec::new();
                while let Ok(f) = std::fs::File::open("/dev/null") {
                    fds.push(f);
                }
                let seen = liveness(me, st + 1, ns);
                drop(fds);
                assert_eq!(seen, Liveness::Unknown);
            });
        });
    }

    #[test]
    fn wait_child_reports_real_time_signals() {
        // SAFETY: the child only calls raise and _exit, which are async-signal-safe.
        let Some(child) = (unsafe { fork() }).unwrap() else {
            // SAFETY: raise has no memory preconditions; SIGRTMIN's default action ends us.
            unsafe { libc::raise(libc::SIGRTMIN()) };
            exit_now(0)
        };
        assert_eq!(
            wait_child(child, false).unwrap(),
            Some(ExitStatus::Signal(libc::SIGRTMIN()))
        );
    }

    #[test]
    fn kill_names_one_process_and_a_known_signal() {
        let einval = |r: io::Result<()>| r.unwrap_err().raw_os_error() == Some(libc::EINVAL);
        assert!(einval(kill(0, libc::SIGTERM)), "pid 0 is the process group");
        assert!(einval(kill(u32::MAX, libc::SIGTERM)), "-1 is every process");
        assert!(einval(kill(pid(), libc::SIGRTMIN())));
        assert!(einval(wait_child(0, true).map(drop)));
        kill(pid(), 0).unwrap();
    }

    #[test]
    fn empty_mapping_is_einval() {
        let e = Mapping::file(&memory_file(0).unwrap(), 0, true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn own_start_time_is_readable_and_alive() {
        let st = process_start_time(pid()).expect("own stat");
        assert!(process_alive(pid(), st));
        assert!(!process_alive(pid(), st + 1));
        assert!(!process_alive(0, st));
    }

    #[test]
    fn robust_mutex_reports_dead_owner() {
        let map = Mapping::file(&memory_file(4096).unwrap(), 4096, true).unwrap();
        // SAFETY: the mapping is fresh and large enough for a mutex; nothing else uses it.
        let m = unsafe { &*(map.ptr() as *const RobustMutex) };
        // SAFETY: no other user yet.
        unsafe { m.init().unwrap() };
        let soon = || mono_now() + 1_000_000_000;
        // A thread that exits holding the lock counts as a dead owner.
        std::thread::scope(|s| {
            s.spawn(|| std::mem::forget(m.lock(soon())));
        });
        let (g, died) = m.lock(soon()).unwrap().into_parts();
        assert!(died);
        g.mark_consistent();
        drop(g);
        let (g, died) = m.try_lock().unwrap().into_parts();
        assert!(!died);
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(
                    m.lock(mono_now() + 10_000_000).map(|_| ()),
                    Err(LockFailed::TimedOut)
                )
            });
        });
        drop(g);
    }
}
