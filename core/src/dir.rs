//! The queue directory: opened without following symlinks, checked on its descriptor to
//! belong to this user and be writable by no one else, and the only way segments are
//! created, opened and removed (relative to that descriptor).

use crate::error::Error;
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Environment variable naming the directory of queue segments.
pub const DIR_ENV: &str = "MPQUEUE_DIR";

/// The segment directory: `$MPQUEUE_DIR`, else `/dev/shm/mpqueue-UID`.
pub fn queue_dir() -> PathBuf {
    match std::env::var_os(DIR_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(format!("/dev/shm/mpqueue-{}", sys::uid())),
    }
}

/// The queue directory, opened without following symlinks and checked on its descriptor:
/// it belongs to this user (the effective uid) and no one else can write it. Files are
/// created and opened relative to the descriptor, so the directory checked is the one used.
pub(crate) struct QueueDir {
    fd: OwnedFd,
    path: PathBuf,
    /// Trust extends to this user's groups (`group_access`).
    group: bool,
}

/// Whether the owner `uid`/`gid` and `mode` of a directory or segment may be trusted.
fn trusted(uid: u32, gid: u32, mode: u32, group: bool) -> bool {
    let mine = uid == nix::unistd::geteuid().as_raw();
    if mode & 0o002 != 0 {
        return false;
    }
    mine || (group && in_my_groups(gid))
}

fn in_my_groups(gid: u32) -> bool {
    nix::unistd::getegid().as_raw() == gid
        || nix::unistd::getgroups().is_ok_and(|g| g.iter().any(|g| g.as_raw() == gid))
}

fn untrusted(path: &Path, st: &nix::sys::stat::FileStat, what: &str) -> Error {
    Error::Untrusted {
        path: path.into(),
        owner: st.st_uid,
        mode: st.st_mode & 0o7777,
        advice: format!(
            "{what} must belong to you (uid {}) and be writable by no one else \
             (group members too, with group_access): another user may have planted it. \
             Remove it, or set {DIR_ENV} to a directory of your own",
            nix::unistd::geteuid()
        ),
    }
}

impl QueueDir {
    /// Opens `path` (creating it 0700, or 0750 for `group`, if `create`) and checks it.
    pub(crate) fn open(path: &Path, create: bool, group: bool) -> Result<Self, Error> {
        if create {
            let mode = Mode::from_bits_truncate(if group { 0o750 } else { 0o700 });
            match nix::unistd::mkdir(path, mode) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(Errno::EACCES | Errno::EPERM) => {
                    return Err(Error::PermissionDenied { path: path.into() });
                }
                Err(e) => return Err(Error::io(format!("creating {}", path.display()), e.into())),
            }
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => Error::Corrupt {
                path: path.into(),
                reason: "not a directory (symlinks are not followed)".into(),
            },
            Errno::EACCES | Errno::EPERM => Error::PermissionDenied { path: path.into() },
            e => Error::io(format!("opening {}", path.display()), e.into()),
        })?;
        let st = nix::sys::stat::fstat(&fd)
            .map_err(|e| Error::io(format!("checking {}", path.display()), e.into()))?;
        if !trusted(st.st_uid, st.st_gid, st.st_mode, group) || st.st_mode & 0o020 != 0 && !group {
            return Err(untrusted(path, &st, "a queue directory"));
        }
        Ok(QueueDir {
            fd,
            path: path.into(),
            group,
        })
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `file` (`O_EXCL`, no symlink) with exactly `mode` and `len` allocated bytes.
    pub(crate) fn create_file(
        &self,
        file: &str,
        name: &str,
        mode: u32,
        len: usize,
    ) -> Result<File, Error> {
        let path = self.path.join(file);
        let flags =
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, file, flags, Mode::from_bits_truncate(mode))
            .map_err(|e| open_error(&path, name, e.into()))?;
        let f = File::from(fd);
        // The umask may have cleared bits the caller asked for: set the mode exactly. The
        // pages are allocated now, so a full /dev/shm fails here instead of killing a
        // process with SIGBUS later.
        let sized = nix::sys::stat::fchmod(&f, Mode::from_bits_truncate(mode))
            .and_then(|()| nix::unistd::ftruncate(&f, len as i64))
            .and_then(|()| nix::fcntl::posix_fallocate(&f, 0, len as i64));
        if let Err(e) = sized {
            let _ = self.remove(file);
            let what = if e == Errno::ENOSPC {
                format!(
                    "no space for the queue's shared memory ({len} bytes) in {}",
                    self.path.display()
                )
            } else {
                format!("sizing {}", path.display())
            };
            return Err(Error::io(what, e.into()));
        }
        Ok(f)
    }

    /// Opens the existing segment `file` (no symlink, regular, at least `min_len` bytes,
    /// owned by this user or, with `group`, by one of its groups). Returns it and its length.
    pub(crate) fn open_file(
        &self,
        file: &str,
        name: &str,
        writable: bool,
        min_len: usize,
    ) -> Result<(File, usize), Error> {
        let path = self.path.join(file);
        let access = if writable {
            OFlag::O_RDWR
        } else {
            OFlag::O_RDONLY
        };
        let flags = access | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, file, flags, Mode::empty())
            .map_err(|e| open_error(&path, name, e.into()))?;
        self.check_segment(File::from(fd), &path, min_len)
    }

    /// Checks an open segment as [`open_file`](Self::open_file) does (`path` names it in
    /// errors): a regular file, trusted like the directory's files, at least `min_len`
    /// bytes. Returns it and its length.
    pub(crate) fn check_segment(
        &self,
        fd: File,
        path: &Path,
        min_len: usize,
    ) -> Result<(File, usize), Error> {
        let st = nix::sys::stat::fstat(&fd)
            .map_err(|e| Error::io(format!("checking {}", path.display()), e.into()))?;
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
            != nix::sys::stat::SFlag::S_IFREG
        {
            return Err(corrupt("not a regular file".into()));
        }
        if !trusted(st.st_uid, st.st_gid, st.st_mode, self.group) {
            return Err(untrusted(path, &st, "a queue segment"));
        }
        let len = usize::try_from(st.st_size).map_err(|_| corrupt("bad length".into()))?;
        if len < min_len {
            return Err(corrupt(format!("{len} bytes is too short")));
        }
        Ok((fd, len))
    }

    /// Removes `file` from the directory.
    pub(crate) fn remove(&self, file: &str) -> nix::Result<()> {
        nix::unistd::unlinkat(&self.fd, file, UnlinkatFlags::NoRemoveDir)
    }
}

/// The error for a segment that could not be opened.
pub(crate) fn open_error(path: &Path, name: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound { name: name.into() },
        io::ErrorKind::AlreadyExists => Error::AlreadyExists { name: name.into() },
        io::ErrorKind::PermissionDenied => Error::PermissionDenied { path: path.into() },
        _ if e.raw_os_error() == Some(Errno::ELOOP as i32) => Error::Corrupt {
            path: path.into(),
            reason: "is a symlink (not followed)".into(),
        },
        _ => Error::io(format!("opening {}", path.display()), e),
    }
}
