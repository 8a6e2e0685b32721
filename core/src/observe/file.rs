//! Reading a stats file safely: only a regular file of a stats segment's size is opened
//! (no symlink, FIFO or device), and it is read with `pread` into buffers of our own.

use super::parse::{finish, read_raw};
use super::snapshot::Snapshot;
use crate::error::Error;
use crate::header::{Copied, MAX_LEN, MIN_LEN, corrupt, validate};
use crate::layout::{MAX_SLOTS, STATS_HEADER_LEN, StatsHeader};
use crate::sync::RETRY_NS;
use crate::sys::{self};
use nix::fcntl::OFlag;
use std::fs::File;
use std::mem::offset_of;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How old a never-initialised stats file (or a queue no process ever attached to) must be
/// before [`cleanup`](super::cleanup) takes it for a crashed creator's leftovers.
pub(super) const GRACE: Duration = Duration::from_secs(60);

/// A stats file opened for reading: a regular file of a stats segment's size range, never
/// a symlink, FIFO or device. Observers only ever `pread` it into buffers of their own: a
/// file that shrinks meanwhile gives a short read (an error), never a `SIGBUS`.
pub(super) struct StatsFile {
    file: File,
    len: usize,
    modified: Option<std::time::SystemTime>,
    path: PathBuf,
}

impl StatsFile {
    /// Opens `path` (the stats file of queue `id`): `lstat` first, so nothing but a regular
    /// file is even opened; then `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY` (a FIFO or device
    /// swapped in meanwhile neither blocks the open nor becomes a terminal) and `fstat` of
    /// the descriptor, which is what is read.
    pub(super) fn open(path: &Path, id: &str) -> Result<Self, Error> {
        let os_error = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                name: id.strip_prefix("q.").unwrap_or(id).into(),
            },
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied { path: path.into() },
            _ if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
                corrupt(path, "is a symlink (not followed)")
            }
            _ => Error::io(format!("opening {}", path.display()), e),
        };
        let kind = |t: std::fs::FileType| {
            if t.is_symlink() {
                Err(corrupt(path, "is a symlink (not followed)"))
            } else if !t.is_file() {
                Err(corrupt(path, "not a regular file"))
            } else {
                Ok(())
            }
        };
        kind(
            std::fs::symlink_metadata(path)
                .map_err(os_error)?
                .file_type(),
        )?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(
                (OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).bits(),
            )
            .open(path)
            .map_err(os_error)?;
        let md = file
            .metadata()
            .map_err(|e| Error::io(format!("checking {}", path.display()), e))?;
        kind(md.file_type())?;
        let len = usize::try_from(md.len()).unwrap_or(usize::MAX);
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(corrupt(
                path,
                format!(
                    "length {len} is not a stats segment's ({MIN_LEN} to {MAX_LEN} bytes: 1 to \
                     {MAX_SLOTS} process slots)"
                ),
            ));
        }
        Ok(StatsFile {
            file,
            len,
            modified: md.modified().ok(),
            path: path.into(),
        })
    }

    /// Fills `buf` from the start of the file.
    pub(super) fn read_into(&self, buf: &mut [u8]) -> Result<(), Error> {
        self.file.read_exact_at(buf, 0).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(&self.path, "the file shrank while it was read")
            } else {
                Error::io(format!("reading {}", self.path.display()), e)
            }
        })
    }

    /// The word at byte `off`.
    pub(super) fn word(&self, off: usize) -> Result<u64, Error> {
        let mut b = [0u8; 8];
        self.file
            .read_exact_at(&mut b, off as u64)
            .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
        Ok(u64::from_le_bytes(b))
    }

    /// A consistent snapshot from copies of the file.
    ///
    /// Each attempt reads `retire_seq`, copies the file twice, and reads `retire_seq` again;
    /// it counts if the sequence was even and did not move. `gets` comes from the first copy
    /// and `puts` from the second, so that every item counted as got was counted as put
    /// (`gets <= puts`), as the counters' store order promises; `size` takes the puts of the
    /// first copy and `consumed` of the second, so it never shows more than the queue held. Attempts go on for at most [`RETRY_NS`], after which the last copies are
    /// used as they are (see [`crate::sync::RETRY_NS`]).
    pub(super) fn snapshot(&self, id: &str) -> Result<Snapshot, Error> {
        let mut head = [0u8; STATS_HEADER_LEN];
        self.read_into(&mut head)?;
        // A foreign or broken file is refused at once, before any retry.
        validate(&Copied(&head), self.len, &self.path)?;
        let (mut early, mut late) = (vec![0u8; self.len], vec![0u8; self.len]);
        let seq_at = offset_of!(StatsHeader, retire_seq);
        let deadline = sys::mono_now().saturating_add(RETRY_NS);
        loop {
            let before = self.word(seq_at)?;
            let out_of_time = sys::mono_now() >= deadline;
            if !before.is_multiple_of(2) && !out_of_time {
                std::thread::yield_now();
                continue;
            }
            self.read_into(&mut early)?;
            self.read_into(&mut late)?;
            let after = self.word(seq_at)?;
            if (after == before && before.is_multiple_of(2))
                || out_of_time
                || sys::mono_now() >= deadline
            {
                break;
            }
        }
        let shape = validate(&Copied(&late), self.len, &self.path)?;
        let raw = read_raw(&Copied(&early), &Copied(&late), &shape, &self.path)?;
        Ok(finish(raw, shape, id))
    }

    /// Whether the creator never published the file (its magic is still zero) and it is
    /// older than [`GRACE`]: a creator that crashed while making it.
    pub(super) fn unpublished_and_old(&self) -> bool {
        let old = self
            .modified
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > GRACE);
        old && self.word(offset_of!(StatsHeader, magic)).ok() == Some(0)
    }
}
