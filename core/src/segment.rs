//! Creating, opening and validating the two shared-memory segments of a queue.
//!
//! Files live in one directory per user ([`queue_dir`]): `q.NAME.data` and `q.NAME.stats` for
//! a named queue, `a.PID.START.N.stats` for an anonymous one (whose data segment is a
//! memory file with no name, inherited by `fork` or handed to another process as a file
//! descriptor: see [`open_handoff`]). Files are created `O_EXCL|O_NOFOLLOW` with
//! mode 0600 (or the builder's mode); openers never follow symlinks and validate everything.

use crate::dir::QueueDir;
pub use crate::dir::{DIR_ENV, queue_dir};
use crate::error::Error;
use crate::header;
use crate::layout::{
    DATA_HEADER_LEN, DATA_LAYOUT_MAJOR, DATA_LAYOUT_VERSION, DATA_MAGIC, DataHeader,
    LAYOUT_VERSION, NAME_MAX, ProcSlot, SLOT_LEN, STATS_HEADER_LEN, STATS_MAGIC, StatsHeader,
    slot_state, stats_len,
};
use crate::sync::Event;
use crate::sys::{self, Mapping};
use nix::errno::Errno;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, Ordering};

/// Checks a queue name: 1 to 100 bytes of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 100 {
        return bad("longer than 100 bytes");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("starts with '.' or '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return bad("only ASCII letters, digits, '_', '.' and '-' are allowed (no '/')");
    }
    Ok(())
}

/// File paths of a named queue.
pub fn named_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("q.{name}.data")),
        dir.join(format!("q.{name}.stats")),
    )
}

/// Everything a new queue is created with.
#[derive(Debug, Clone)]
pub struct CreateParams {
    pub name: Option<String>,
    pub label: String,
    pub maxsize: u64,
    pub ring_capacity: usize,
    pub max_item: u64,
    pub slots: usize,
    pub mode: u32,
    pub dir: PathBuf,
}

/// How much of a data segment an attaching process maps in advance: all of the default
/// ring, and no more than this of a very large one (whose pages come as they are touched).
pub const PREFAULT_MAX: usize = 64 << 20;

/// The mapped segments of one queue.
#[derive(Debug)]
pub struct Segments {
    data: Mapping,
    stats: Mapping,
    /// Files to remove when the last process detaches (data file first for named queues).
    pub paths: Vec<PathBuf>,
    /// The queue name, for error messages.
    pub display_name: String,
    /// An anonymous queue's data segment (a memory file), for [`open_handoff`].
    pub data_file: Option<File>,
}

impl Segments {
    /// The data segment header.
    pub fn data(&self) -> &DataHeader {
        // SAFETY: the mapping is at least DATA_HEADER_LEN bytes (checked at create/open),
        // page-aligned, and DataHeader is repr(C) of atomics and a robust mutex, valid for
        // any bit pattern that the lock calls reject as Broken.
        unsafe { &*(self.data.ptr() as *const DataHeader) }
    }

    /// The ring bytes and their capacity.
    pub fn ring(&self) -> (*mut u8, u64) {
        // SAFETY: DATA_HEADER_LEN < mapping length (validated); the result stays inside it.
        let p = unsafe { self.data.ptr().add(DATA_HEADER_LEN) };
        (p, (self.data.len() - DATA_HEADER_LEN) as u64)
    }

    /// Maps the data segment (up to [`PREFAULT_MAX`] bytes of it) into this process now
    /// (see [`Mapping::prefault`]): a process that attaches to use the queue takes its page
    /// faults here, at once, instead of one item in every page's worth waiting for one
    /// (about 8 µs each here) on the ring's first lap.
    pub(crate) fn prefault(&self) {
        self.data.prefault(PREFAULT_MAX);
    }

    /// The futex event `put`s waiting for capacity sleep on (`cap_seq`).
    pub(crate) fn capacity_event(&self) -> Event<'_> {
        Event {
            seq: &self.stats().cap_seq,
        }
    }

    /// The stats segment header.
    pub fn stats(&self) -> &StatsHeader {
        // SAFETY: as for `data`; the stats mapping is at least STATS_HEADER_LEN bytes.
        unsafe { &*(self.stats.ptr() as *const StatsHeader) }
    }

    /// The stats segment as 64-bit words (what the observers parse).
    #[cfg(feature = "metrics")]
    pub fn stats_words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is a multiple of 8 bytes long (STATS_HEADER_LEN and SLOT_LEN
        // are), page-aligned, and AtomicU64 is valid for any bit pattern.
        unsafe {
            std::slice::from_raw_parts(self.stats.ptr() as *const AtomicU64, self.stats.len() / 8)
        }
    }

    /// The stats file (the last path).
    #[cfg(feature = "metrics")]
    pub fn stats_path(&self) -> &Path {
        self.paths.last().map_or(Path::new(""), PathBuf::as_path)
    }

    /// Number of process slots (slot 0, the retired totals, not included).
    pub fn slot_count(&self) -> usize {
        (self.stats.len() - STATS_HEADER_LEN) / SLOT_LEN - 1
    }

    /// The process slot `i`, if this segment has it (1..=slot_count): how an index read
    /// from shared memory (a journal, a parker) becomes usable.
    pub(crate) fn slot_index(&self, i: usize) -> Option<SlotIndex> {
        (1..=self.slot_count()).contains(&i).then_some(SlotIndex(i))
    }

    /// Every process slot's index.
    pub(crate) fn slot_indices(&self) -> impl Iterator<Item = SlotIndex> + use<> {
        (1..=self.slot_count()).map(SlotIndex)
    }

    /// Process slot `i`.
    pub(crate) fn slot(&self, i: SlotIndex) -> &ProcSlot {
        slot_in(&self.stats, i.0)
    }

    /// Slot 0: the retired totals of processes that detached or died.
    pub(crate) fn retired(&self) -> &ProcSlot {
        slot_in(&self.stats, 0)
    }
}

/// The index of a process slot (1..=slot count), checked when it was made: by
/// [`Segments::slot_index`], [`Segments::slot_indices`], or [`CREATOR_SLOT`] (every
/// segment has at least one process slot). There is no clamping: an index that does not
/// fit is `None` where it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotIndex(usize);

impl SlotIndex {
    /// The index as a number (what journals and claims store).
    pub(crate) fn get(self) -> usize {
        self.0
    }
}

/// Slot `i` of a validated stats mapping; `i` is at most the slot count (a [`SlotIndex`],
/// or 0 for the retired totals).
fn slot_in(stats: &Mapping, i: usize) -> &ProcSlot {
    let off = STATS_HEADER_LEN + i * SLOT_LEN;
    assert!(off + SLOT_LEN <= stats.len(), "slot index out of range");
    // SAFETY: the offset and length are inside the mapping (asserted); ProcSlot is repr(C)
    // of atomics, valid for any bit pattern, and SLOT_LEN-aligned offsets keep it aligned.
    unsafe { &*(stats.ptr().add(off) as *const ProcSlot) }
}

/// Waits (bounded) for the creator to publish `magic`, then checks magic and version.
fn await_published(magic: &AtomicU64, want: u64, path: &Path) -> Result<(), Error> {
    let deadline = sys::mono_now() + 2_000_000_000;
    loop {
        match magic.load(Acquire) {
            0 if sys::mono_now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            0 => {
                return Err(Error::Corrupt {
                    path: path.into(),
                    reason: "never initialised (creator died while creating it?)".into(),
                });
            }
            m if m == want => break,
            _ => {
                return Err(Error::Corrupt {
                    path: path.into(),
                    reason: "bad magic: not an mpqueue segment".into(),
                });
            }
        }
    }
    Ok(())
}

/// The name written by [`write_name`] (a named queue's name, an anonymous one's label).
fn read_name(h: &StatsHeader) -> String {
    let len = (h.name_len.load(Relaxed) as usize).min(NAME_MAX);
    let bytes: Vec<u8> = h
        .name
        .iter()
        .flat_map(|w| w.load(Relaxed).to_le_bytes())
        .take(len)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn write_name(h: &StatsHeader, name: &str) {
    let bytes = &name.as_bytes()[..name.len().min(NAME_MAX)];
    for (word, chunk) in h.name.iter().zip(bytes.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        word.store(u64::from_le_bytes(b), Relaxed);
    }
    h.name_len.store(bytes.len() as u64, Relaxed);
}

/// A queue id that no other queue made on this machine shares (time, pid and a counter).
fn queue_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Relaxed);
    sys::realtime_now().wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(sys::pid()) << 40) ^ n
}

/// File names of a named queue's data and stats segments.
fn named_files(name: &str) -> (String, String) {
    (format!("q.{name}.data"), format!("q.{name}.stats"))
}

/// Creates both segments of a new queue.
pub fn create(p: &CreateParams) -> Result<Segments, Error> {
    let dir = QueueDir::open(&p.dir, true, p.mode & 0o070 != 0)?;
    let display_name = p.name.clone().unwrap_or_else(|| p.label.clone());
    let data_len = DATA_HEADER_LEN + p.ring_capacity;
    let s_len = stats_len(p.slots);
    let (stats_file, data_file) = match &p.name {
        Some(n) => {
            let (d, s) = named_files(n);
            (s, Some(d))
        }
        None => {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let pid = sys::pid();
            let start = sys::process_start_time(pid).unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            (format!("a.{pid}.{start}.{n}.stats"), None)
        }
    };

    // The data file (named) is created first: its O_EXCL is what makes creation exclusive.
    let (data, memory) = match &data_file {
        Some(file) => {
            let f = dir.create_file(file, &display_name, p.mode, data_len)?;
            (Mapping::file(&f, data_len, true), None)
        }
        None => match sys::memory_file(data_len) {
            Ok(f) => (Mapping::file(&f, data_len, true), Some(f)),
            Err(e) => (Err(e), None),
        },
    };
    let cleanup = |e: Error| {
        if let Some(d) = &data_file {
            let _ = dir.remove(d);
        }
        e
    };
    let data = data.map_err(|e| cleanup(Error::io("mapping the data segment", e)))?;
    let sfile = dir
        .create_file(&stats_file, &display_name, p.mode, s_len)
        .map_err(cleanup)?;
    let stats = Mapping::file(&sfile, s_len, true).map_err(|e| {
        let _ = dir.remove(&stats_file);
        cleanup(Error::io("mapping the stats segment", e))
    })?;
    let mut paths: Vec<PathBuf> = data_file.iter().map(|f| dir.path().join(f)).collect();
    paths.push(dir.path().join(&stats_file));
    let seg = Segments {
        data,
        stats,
        paths,
        display_name,
        data_file: memory,
    };
    if let Err(e) = init(&seg, p) {
        for path in &seg.paths {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    Ok(seg)
}

fn init(seg: &Segments, p: &CreateParams) -> Result<(), Error> {
    let h = seg.stats();
    h.header_len.store(STATS_HEADER_LEN as u32, Relaxed);
    h.total_len.store(stats_len(p.slots) as u64, Relaxed);
    h.slot_count.store(p.slots as u32, Relaxed);
    h.slot_len.store(SLOT_LEN as u32, Relaxed);
    h.maxsize.store(p.maxsize, Relaxed);
    h.ring_capacity.store(p.ring_capacity as u64, Relaxed);
    h.max_item.store(p.max_item, Relaxed);
    let pid = sys::pid();
    let start = sys::process_start_time(pid).unwrap_or(0);
    h.creator_pid.store(pid as u64, Relaxed);
    h.creator_start.store(start, Relaxed);
    // Slot 1 is reserved for the creator before anyone can see the queue, so the queue
    // counts as attached from the start: a process that opens and leaves it before the
    // creator attaches does not remove it (the creator takes the slot over).
    let first = seg.slot(CREATOR_SLOT);
    first.pid.store(u64::from(pid), Relaxed);
    first.start_time.store(start, Relaxed);
    first.pid_ns.store(sys::pid_namespace(), Relaxed);
    first.state.store(slot_state::RESERVED, Relaxed);
    h.attached.store(1, Relaxed);
    h.created_unix_ns.store(sys::realtime_now(), Relaxed);
    h.flags.store(u64::from(p.name.is_some()), Relaxed);
    let id = queue_id();
    h.queue_id.store(id, Relaxed);
    seg.data().queue_id.store(id, Relaxed);
    write_name(h, p.name.as_deref().unwrap_or(&p.label));
    // SAFETY: the segment is not published yet (magic is 0), so nobody else uses the mutex.
    unsafe { h.slot_lock.init() }.map_err(|e| Error::io("initialising the slot lock", e))?;

    let d = seg.data();
    d.header_len.store(DATA_HEADER_LEN as u32, Relaxed);
    d.capacity.store(p.ring_capacity as u64, Relaxed);
    d.total_len
        .store((DATA_HEADER_LEN + p.ring_capacity) as u64, Relaxed);
    // SAFETY: unpublished segment, as above.
    unsafe {
        d.write_lock
            .init()
            .map_err(|e| Error::io("initialising the write lock", e))?;
        d.read_lock
            .init()
            .map_err(|e| Error::io("initialising the read lock", e))?;
    }
    // Publish: version, then magic with Release (pairs with the Acquire in the openers).
    h.version.store(LAYOUT_VERSION, Relaxed);
    d.version.store(DATA_LAYOUT_VERSION, Relaxed);
    h.magic.store(STATS_MAGIC, Release);
    d.magic.store(DATA_MAGIC, Release);
    Ok(())
}

/// Opens both segments of the named queue `name` in `dir`; `group` extends trust to this
/// user's groups (`group_access`).
pub fn open(dir: &Path, name: &str, group: bool) -> Result<Segments, Error> {
    validate_name(name)?;
    let qdir = open_dir(dir, name, group)?;
    let (data_file, stats_file) = named_files(name);
    let (data_path, _) = named_paths(dir, name);
    let (dfile, dlen) = qdir.open_file(&data_file, name, true, DATA_HEADER_LEN + 4096)?;
    let seg = open_pair(&qdir, (&dfile, dlen, data_path.clone()), &stats_file, name)?;
    Ok(Segments {
        paths: vec![data_path, seg.paths[0].clone()],
        display_name: name.into(),
        ..seg
    })
}

/// Opens the anonymous queue whose stats file in `dir` is `stats_file` (`a.PID.START.N.stats`)
/// and whose data segment is `data` (a copy of the creator's memory file descriptor: see
/// `Queue::handoff`). `Error::Removed` if `data` is not that queue's (it was removed, and
/// another took its file name).
pub fn open_handoff(
    dir: &Path,
    stats_file: &str,
    data: File,
    group: bool,
) -> Result<Segments, Error> {
    validate_anonymous_file(stats_file)?;
    sys::close_on_exec(&data).map_err(|e| Error::io("marking the memory file close-on-exec", e))?;
    let qdir = open_dir(dir, stats_file, group)?;
    let data_path = PathBuf::from(format!("(memory file of {stats_file})"));
    let (dfile, dlen) = qdir.check_segment(data, &data_path, DATA_HEADER_LEN + 4096)?;
    let seg = open_pair(&qdir, (&dfile, dlen, data_path), stats_file, stats_file)?;
    let display_name = read_name(seg.stats());
    Ok(Segments {
        display_name,
        data_file: Some(dfile),
        ..seg
    })
}

/// `a.PID.START.N.stats`, the stats file of an anonymous queue, and nothing else.
fn validate_anonymous_file(file: &str) -> Result<(), Error> {
    let digits = file
        .strip_prefix("a.")
        .and_then(|f| f.strip_suffix(".stats"))
        .map(|mid| mid.split('.').collect::<Vec<_>>());
    match digits {
        Some(parts)
            if parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Ok(())
        }
        _ => Err(Error::InvalidName {
            name: file.into(),
            reason: "not an anonymous queue's stats file (a.PID.START.N.stats)",
        }),
    }
}

/// The queue directory, for opening `what` in it (`NotFound` if there is none).
fn open_dir(dir: &Path, what: &str, group: bool) -> Result<QueueDir, Error> {
    match QueueDir::open(dir, false, group) {
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Err(Error::NotFound { name: what.into() })
        }
        other => other,
    }
}

/// Maps and validates a data segment (`data`: the open file, its length and the path that
/// names it in errors) and the stats file `stats_file` of the same queue (`name`, for
/// errors). The result's `paths` holds the stats file only.
fn open_pair(
    qdir: &QueueDir,
    data: (&File, usize, PathBuf),
    stats_file: &str,
    name: &str,
) -> Result<Segments, Error> {
    let (dfile, dlen, data_path) = data;
    let stats_path = qdir.path().join(stats_file);
    let data = Mapping::file(dfile, dlen, true)
        .map_err(|e| Error::io(format!("mapping {}", data_path.display()), e))?;
    // SAFETY: the mapping is at least DATA_HEADER_LEN bytes (checked by the caller).
    let dh = unsafe { &*(data.ptr() as *const DataHeader) };
    await_published(&dh.magic, DATA_MAGIC, &data_path)?;
    header::check_version(dh.version.load(Relaxed), DATA_LAYOUT_MAJOR, &data_path)?;
    let cap = dh.capacity.load(Relaxed);
    if !cap.is_power_of_two()
        || cap < 4096
        || dh.header_len.load(Relaxed) as usize != DATA_HEADER_LEN
        || cap + DATA_HEADER_LEN as u64 != dlen as u64
        || dh.total_len.load(Relaxed) != dlen as u64
    {
        return Err(Error::Corrupt {
            path: data_path,
            reason: "ring capacity does not match the file".into(),
        });
    }
    let (sfile, slen) = qdir.open_file(stats_file, name, true, STATS_HEADER_LEN + 2 * SLOT_LEN)?;
    let stats = Mapping::file(&sfile, slen, true)
        .map_err(|e| Error::io(format!("mapping {}", stats_path.display()), e))?;
    // SAFETY: at least STATS_HEADER_LEN bytes (checked by open_file).
    let sh = unsafe { &*(stats.ptr() as *const StatsHeader) };
    await_published(&sh.magic, STATS_MAGIC, &stats_path)?;
    // SAFETY: the mapping is `slen` bytes, page-aligned; AtomicU64 is valid for any bits,
    // and the slice ends within the mapping (`slen / 8` whole words).
    let words = unsafe { std::slice::from_raw_parts(stats.ptr() as *const AtomicU64, slen / 8) };
    header::validate(&header::Live(words), slen, &stats_path)?;
    if sh.queue_id.load(Relaxed) != dh.queue_id.load(Relaxed) {
        // The name was removed and made again while we opened its two files.
        return Err(Error::Removed { name: name.into() });
    }
    if sh.ring_capacity.load(Relaxed) != cap {
        return Err(Error::Corrupt {
            path: stats_path,
            reason: "ring capacity differs from the data segment".into(),
        });
    }
    Ok(Segments {
        data,
        stats,
        paths: vec![stats_path],
        display_name: name.into(),
        data_file: None,
    })
}

/// Removes the files of the named queue `name` (processes attached keep working; nobody new
/// can attach). Returns whether anything was removed.
pub fn unlink(dir: &Path, name: &str) -> Result<bool, Error> {
    validate_name(name)?;
    let qdir = match QueueDir::open(dir, false, false) {
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(false);
        }
        other => other?,
    };
    let (data_file, stats_file) = named_files(name);
    // Mark it unlinked so a racing `open` that already mapped it refuses to attach.
    if let Ok((f, len)) = qdir.open_file(&stats_file, name, true, STATS_HEADER_LEN + 2 * SLOT_LEN)
        && let Ok(m) = Mapping::file(&f, len, true)
    {
        // SAFETY: at least STATS_HEADER_LEN bytes (checked by open_file).
        let sh = unsafe { &*(m.ptr() as *const StatsHeader) };
        if sh.magic.load(Acquire) == STATS_MAGIC {
            sh.flags.fetch_or(FLAG_UNLINKED, Relaxed);
        }
    }
    let mut removed = false;
    for file in [data_file, stats_file] {
        match qdir.remove(&file) {
            Ok(()) => removed = true,
            Err(Errno::ENOENT) => {}
            Err(Errno::EACCES | Errno::EPERM) => {
                return Err(Error::PermissionDenied {
                    path: dir.join(file),
                });
            }
            Err(e) => {
                return Err(Error::io(
                    format!("removing {}", dir.join(file).display()),
                    e.into(),
                ));
            }
        }
    }
    Ok(removed)
}

/// The slot reserved for the creator of a new queue (see `create`).
pub(crate) const CREATOR_SLOT: SlotIndex = SlotIndex(1);

/// Flag bit: the queue is named.
pub const FLAG_NAMED: u64 = 1;
/// Flag bit: the queue's files were removed; no new process may attach.
pub const FLAG_UNLINKED: u64 = 2;
/// Flag bit: a `JoinableQueue` (its unfinished count means something).
pub const FLAG_JOINABLE: u64 = 4;

/// An anonymous queue's segments in `dir` for unit tests: a 4 KiB ring, 4 slots.
#[cfg(test)]
pub(crate) fn scratch(dir: &Path) -> Segments {
    create(&CreateParams {
        name: None,
        label: "unit-test".into(),
        maxsize: 0,
        ring_capacity: 4096,
        max_item: 1 << 20,
        slots: 4,
        mode: 0o600,
        dir: dir.into(),
    })
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["jobs", "a-b_c.d", "Q1"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "..",
            "a b",
            "é",
            &"x".repeat(101),
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }
}
