//! The stats segment's header, checked: the one validator shared by the queue (opening a
//! segment) and the observers (reading a copy of one), over a bounds-checked view of its
//! 64-bit words.

use crate::error::Error;
use crate::layout::{
    LAYOUT_MAJOR, MAX_SLOTS, NAME_MAX, SLOT_LEN, STATS_HEADER_LEN, STATS_MAGIC, StatsHeader,
    stats_len,
};
use std::mem::offset_of;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Acquire;

/// Bytes of the smallest stats segment (one process slot).
pub(crate) const MIN_LEN: usize = stats_len(1);
/// Bytes of the largest stats segment ([`MAX_SLOTS`] process slots).
pub(crate) const MAX_LEN: usize = stats_len(MAX_SLOTS);

pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Bounds-checked 64-bit words of a stats segment.
pub(crate) trait View {
    /// The word at byte offset `off` (0 outside the segment).
    fn at(&self, off: usize) -> u64;
}

/// The live segment, mapped (this process's own queues, and fuzzing).
pub(crate) struct Live<'a>(pub(crate) &'a [AtomicU64]);

impl View for Live<'_> {
    fn at(&self, off: usize) -> u64 {
        self.0.get(off / 8).map_or(0, |w| w.load(Acquire))
    }
}

/// A copy of the segment read from its file.
pub(crate) struct Copied<'a>(pub(crate) &'a [u8]);

impl View for Copied<'_> {
    fn at(&self, off: usize) -> u64 {
        let mut w = [0u8; 8];
        if let Some(b) = off.checked_add(8).and_then(|end| self.0.get(off..end)) {
            w.copy_from_slice(b);
        }
        u64::from_le_bytes(w)
    }
}

/// What the header says, checked.
pub(crate) struct Shape {
    pub(crate) slots: usize,
    pub(crate) name: String,
}

/// Checks a segment of `len` bytes whose header `v` shows: magic, version, lengths, slot
/// count (at most [`MAX_SLOTS`]) and name.
pub(crate) fn validate(v: &impl View, len: usize, path: &Path) -> Result<Shape, Error> {
    if len < MIN_LEN {
        return Err(corrupt(path, format!("{len} bytes is too short")));
    }
    if v.at(offset_of!(StatsHeader, magic)) != STATS_MAGIC {
        return Err(corrupt(path, "bad magic: not an mpqueue stats segment"));
    }
    let vh = v.at(offset_of!(StatsHeader, version));
    check_version(vh as u32, LAYOUT_MAJOR, path)?;
    let sl = v.at(offset_of!(StatsHeader, slot_count));
    let (slots, slot_len) = ((sl as u32) as usize, (sl >> 32) as usize);
    if (vh >> 32) as usize != STATS_HEADER_LEN || slot_len != SLOT_LEN {
        return Err(corrupt(path, "unexpected header or slot length"));
    }
    if slots == 0 || slots > MAX_SLOTS {
        return Err(corrupt(
            path,
            format!("{slots} process slots (a queue has 1 to {MAX_SLOTS})"),
        ));
    }
    if stats_len(slots) != len || v.at(offset_of!(StatsHeader, total_len)) != len as u64 {
        return Err(corrupt(
            path,
            format!("slot count {slots} does not match the file length {len}"),
        ));
    }
    let name_len = v.at(offset_of!(StatsHeader, name_len)) as usize;
    if name_len > NAME_MAX {
        return Err(corrupt(path, "name too long"));
    }
    let name_bytes: Vec<u8> = (0..NAME_MAX / 8)
        .flat_map(|i| v.at(offset_of!(StatsHeader, name) + 8 * i).to_le_bytes())
        .take(name_len)
        .collect();
    let name = String::from_utf8(name_bytes).map_err(|_| corrupt(path, "name is not UTF-8"))?;
    Ok(Shape { slots, name })
}

/// Checks a segment's `version` word (`major << 16 | minor`) against the major version this
/// build reads for that kind of segment.
pub(crate) fn check_version(version: u32, major: u32, path: &Path) -> Result<(), Error> {
    if version >> 16 != major {
        return Err(Error::Incompatible {
            path: path.into(),
            major: version >> 16,
            minor: version & 0xffff,
            supported: major,
        });
    }
    Ok(())
}
