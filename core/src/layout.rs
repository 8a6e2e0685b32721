//! The shared-memory layouts: the data segment (locks, ring positions, journals, ring bytes)
//! and the stats segment (capacity accounting, queue-wide events, per-process slots).
//!
//! Every type here is `#[repr(C)]` and holds only atomics, integers, fixed arrays and robust
//! mutexes; positions are offsets, never pointers. The stats layout is documented field by
//! field in `docs/stats-layout.md`; the sizes are pinned at compile time below.

use crate::sys::RobustMutex;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// `"MPQDATA\0"` little-endian: first word of a data segment.
pub const DATA_MAGIC: u64 = u64::from_le_bytes(*b"MPQDATA\0");
/// `"MPQSTAT\0"` little-endian: first word of a stats segment.
pub const STATS_MAGIC: u64 = u64::from_le_bytes(*b"MPQSTAT\0");
/// Layout major version: readers refuse any other.
pub const LAYOUT_MAJOR: u32 = 1;
/// Layout minor version: additions that old readers may ignore.
pub const LAYOUT_MINOR: u32 = 2;
/// `major << 16 | minor`, the value of the stats segment's `version` word.
pub const LAYOUT_VERSION: u32 = (LAYOUT_MAJOR << 16) | LAYOUT_MINOR;
/// Layout major version of the data segment, which only the library itself reads: a
/// process refuses a data segment of any other (2: the journals moved off the lines of
/// `write_pos` and `read_pos`; 3: a reader can park a streamed item, `parked_*`; 4: records
/// may carry a put stamp, [`kind::STAMPED`]).
pub const DATA_LAYOUT_MAJOR: u32 = 4;
/// The value of the data segment's `version` word.
pub const DATA_LAYOUT_VERSION: u32 = DATA_LAYOUT_MAJOR << 16;

/// Bytes before the ring in a data segment.
pub const DATA_HEADER_LEN: usize = 4096;
/// Bytes before slot 0 in a stats segment.
pub const STATS_HEADER_LEN: usize = 1024;
/// Bytes per process slot.
pub const SLOT_LEN: usize = 1024;
/// Most process slots a stats segment can have: `Builder::max_processes` is at most this.
/// Observers refuse files that claim more.
pub(crate) const MAX_SLOTS: usize = 4096;
/// Longest queue name or label, in bytes.
pub const NAME_MAX: usize = 128;
/// Histogram buckets: bucket `i < 27` counts waits up to `2^(10+i)` ns (1.024 µs … 68.7 s);
/// the last one counts longer waits.
pub const HIST_BUCKETS: usize = 28;
/// Upper bound of histogram bucket `i` in nanoseconds (`u64::MAX` for the last).
pub const fn bucket_upper_ns(i: usize) -> u64 {
    if i + 1 >= HIST_BUCKETS {
        u64::MAX
    } else {
        1u64 << (10 + i)
    }
}

/// The bucket a wait of `ns` nanoseconds falls in.
pub fn bucket_of(ns: u64) -> usize {
    if ns <= 1024 {
        return 0;
    }
    // ceil(log2(ns)) - 10, capped at the overflow bucket.
    let log2_ceil = 64 - (ns - 1).leading_zeros() as usize;
    (log2_ceil - 10).min(HIST_BUCKETS - 1)
}

/// Record kinds in the ring.
pub mod kind {
    /// A whole item in one record.
    pub const WHOLE: u32 = 1;
    /// First piece of a streamed item; its data starts with the item's total length (u64).
    pub const FIRST: u32 = 2;
    /// A middle piece of a streamed item.
    pub const MORE: u32 = 3;
    /// The last piece of a streamed item.
    pub const LAST: u32 = 4;
    /// The writer of the streamed item in progress died: drop what was read of it.
    pub const ABORT: u32 = 5;
    /// Flag on a `WHOLE` or `FIRST` record: its data starts with the item's put stamp
    /// (`CLOCK_MONOTONIC` ns, u64), for the time-in-queue histogram.
    pub const STAMPED: u32 = 0x100;
}

/// Bytes of a put stamp at the start of a stamped record's data.
pub const STAMP_LEN: usize = 8;

/// Every this many puts of a process (its 1st, 17th, …) carries a put stamp.
pub const STAMP_EVERY: u64 = 16;

/// Tiers of the put timeline, see [`Timeline`].
pub const TIMELINE_TIERS: usize = 4;
/// Entries per tier.
pub const TIMELINE_ENTRIES: usize = 8;
/// Tier `k`'s period is `2^(TIMELINE_SHIFT + TIMELINE_STEP * k)` ns: 1.07 s, 17.2 s,
/// 4.6 min, 73 min; each tier keeps its last 8 periods (8.6 s, 2.3 min, 37 min, 9.8 h).
pub const TIMELINE_SHIFT: u32 = 30;
/// See [`TIMELINE_SHIFT`].
pub const TIMELINE_STEP: u32 = 4;

/// Bytes of a record header: `u32` data length, `u32` kind.
pub const RECORD_HEADER: u64 = 8;

/// Ring bytes a record with `len` data bytes takes (header + data padded to 8).
pub const fn record_size(len: u64) -> u64 {
    RECORD_HEADER + ((len + 7) & !7)
}

/// Header of the data segment. Cache-line groups keep the writer's and reader's hot words apart.
#[repr(C)]
pub struct DataHeader {
    /// [`DATA_MAGIC`], stored last by the creator (Release).
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`].
    pub version: AtomicU32,
    /// [`DATA_HEADER_LEN`].
    pub header_len: AtomicU32,
    /// Ring capacity in bytes (a power of two).
    pub capacity: AtomicU64,
    /// Total segment length.
    pub total_len: AtomicU64,
    /// Random id of the queue, the same in its stats segment: an opener that maps the data
    /// segment of one queue and the stats segment of another (the name was removed and made
    /// again in between) tells them apart.
    pub queue_id: AtomicU64,
    _pad0: [u64; 3],

    /// Held by one writer for a whole item (all its records).
    pub write_lock: RobustMutex,
    _pad1: [u8; 64 - std::mem::size_of::<RobustMutex>() % 64],
    /// Write journal: 1 while a writer is inside an item.
    pub wj_active: AtomicU64,
    /// Write journal: `write_pos` when the item started.
    pub wj_start: AtomicU64,
    /// Write journal: `write_pos` once the item's final record is published (0 until known).
    pub wj_final: AtomicU64,
    /// Write journal: stats slot of the writing process.
    pub wj_slot: AtomicU64,
    /// Write journal: that slot's `committed` before this item.
    pub wj_committed: AtomicU64,
    /// Write journal: the items the journal's records hold (1, or a batch's count), stored
    /// with `wj_final`.
    pub wj_items: AtomicU64,
    _pad2: [u64; 2],

    // `write_pos` has a line of its own (with the readers' wake-up words): readers poll it,
    // and a journal store on the same line would cost the writer another transfer per item.
    /// Bytes ever published (monotonic); Release-stored after the record's bytes.
    pub write_pos: AtomicU64,
    /// Futex word readers waiting for data sleep on: bit 0 = someone sleeps, the rest
    /// counts wake-ups (see `channel::Event`).
    pub data_seq: AtomicU32,
    _pad2a: [u32; 3],
    _pad2b: [u64; 5],

    /// Held by one reader for a whole item.
    pub read_lock: RobustMutex,
    _pad3: [u8; 64 - std::mem::size_of::<RobustMutex>() % 64],
    /// Read journal: 1 while a reader is inside an item.
    pub rj_active: AtomicU64,
    /// Read journal: `consumed` (stats) when the reader took the lock.
    pub rj_consumed: AtomicU64,
    /// Read journal: `read_pos` after the item's final record (0 until known).
    pub rj_final: AtomicU64,
    /// Read journal: 1 while the reader is between an item's FIRST and LAST record.
    pub rj_in_item: AtomicU64,
    /// 1 when a reader died inside a streamed item: its remaining records are skipped.
    pub skip_item: AtomicU64,
    /// Stats slot of a reader whose `get` timed out inside a live writer's streamed item:
    /// it keeps what it read and resumes the item on its next `get` (0 = none).
    pub parked_slot: AtomicU64,
    /// That reader's pid (with `parked_start`, tells a reused slot from the parker's).
    pub parked_pid: AtomicU64,
    /// That reader's start time.
    pub parked_start: AtomicU64,

    /// Bytes ever consumed (monotonic); Release-stored after the bytes were copied out.
    pub read_pos: AtomicU64,
    /// Futex word writers waiting for space sleep on (as `data_seq`).
    pub space_seq: AtomicU32,
    _pad4a: [u32; 3],
    _pad4b: [u64; 5],
    /// A writer waiting for space sleeps until `read_pos` reaches this.
    pub space_target: AtomicU64,
    _pad5: [u64; 7],

    /// Writers' last view of `read_pos` (a lower bound; under the write lock), so most
    /// writes do not touch the readers' cache line.
    pub writer_read_pos: AtomicU64,
    _pad6: [u64; 7],
    /// Readers' last view of `write_pos` (a lower bound), likewise.
    pub reader_write_pos: AtomicU64,
    _pad7: [u64; 7],
}

/// Header of the stats segment: identity, capacity accounting and queue-wide events.
#[repr(C)]
pub struct StatsHeader {
    /// [`STATS_MAGIC`], stored last by the creator (Release).
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`].
    pub version: AtomicU32,
    /// [`STATS_HEADER_LEN`].
    pub header_len: AtomicU32,
    /// Total segment length.
    pub total_len: AtomicU64,
    /// Number of process slots after the retired slot 0.
    pub slot_count: AtomicU32,
    /// [`SLOT_LEN`].
    pub slot_len: AtomicU32,
    /// Capacity in items; 0 = unbounded.
    pub maxsize: AtomicU64,
    /// Ring capacity in bytes.
    pub ring_capacity: AtomicU64,
    /// Largest accepted item in bytes.
    pub max_item: AtomicU64,
    /// Creator's pid.
    pub creator_pid: AtomicU64,
    /// Creator's start time (clock ticks since boot).
    pub creator_start: AtomicU64,
    /// Creation time, ns since the Unix epoch.
    pub created_unix_ns: AtomicU64,
    /// Bit 0: named queue. Bit 1: unlinked (no new attachments).
    pub flags: AtomicU64,
    /// Bytes used in `name`.
    pub name_len: AtomicU64,
    /// Queue name (named queues) or label/generated id (anonymous), UTF-8.
    pub name: [AtomicU64; NAME_MAX / 8],
    /// Random id of the queue, the same in its data segment (layout 1.1).
    pub queue_id: AtomicU64,
    _pad0: [u64; 3],

    // -- capacity accounting (offset 256) --
    /// Capacity slots taken by `put` on a bounded queue (monotonic).
    pub reserved: AtomicU64,
    _pad1: [u64; 7],
    /// Items taken out of the ring (monotonic; written under the read lock).
    pub consumed: AtomicU64,
    /// Items accepted by a process that died (or was cancelled) before writing them (monotonic).
    pub lost: AtomicU64,
    /// Futex word `put`s waiting for capacity sleep on (as the data segment's `data_seq`).
    pub cap_seq: AtomicU32,
    _pad2a: u32,
    /// Process slots in use (claimed, or reserved for a child being forked).
    pub attached: AtomicU64,
    _pad2: [u64; 4],

    // -- queue-wide events (offset 384) --
    /// Locks taken over from a dead owner.
    pub lock_recoveries: AtomicU64,
    /// Items dropped half-written or half-read by a dead process.
    pub frames_discarded: AtomicU64,
    /// Even when no retirement is in progress; readers retry while odd or changed.
    pub retire_seq: AtomicU64,
    /// Retirement journal: the slot being folded into slot 0 (0 = none).
    pub retire_slot: AtomicU64,
    /// Retirement journal: the index + 1 of the counter word being folded (0 = none).
    pub retire_word: AtomicU64,
    /// Retirement journal: slot 0's value of that word before the fold.
    pub retire_before: AtomicU64,
    /// Retirement journal: the amount being folded.
    pub retire_value: AtomicU64,
    _pad3: [u64; 1],

    /// Serialises slot claims and retirements (robust).
    pub slot_lock: RobustMutex,
    /// Futex word `JoinableQueue::join` sleeps on (as `cap_seq`), woken by `task_done`
    /// (layout 1.2).
    pub tasks_seq: AtomicU32,
    _pad4: [u8; 512 - 448 - 4 - std::mem::size_of::<RobustMutex>()],

    // -- put timeline (offset 512, layout 1.2) --
    /// How many items had been put at past moments, for the age of the oldest item.
    pub timeline: Timeline,
}

/// One point of the put timeline: at monotonic time `at_ns`, `puts` items had been put
/// (queue-wide) before the put that wrote the point.
#[repr(C)]
pub struct TimelinePoint {
    /// `CLOCK_MONOTONIC_COARSE` ns; 0 = empty. While a producer writes the point it holds
    /// [`TIMELINE_CLAIM`]` | period` here.
    pub at_ns: AtomicU64,
    /// Items put before it.
    pub puts: AtomicU64,
}

/// Set in a point's `at_ns` while a producer writes it (with the period it writes for).
pub const TIMELINE_CLAIM: u64 = 1 << 63;

/// The put timeline: tier `k` holds one point per period of `2^(30 + 4k)` ns (about 1 s,
/// 17 s, 4.6 min and 73 min), written by the first put of each period into entry
/// `period % 8`. An observer finds the head item's index (`puts − size`) between two
/// points and so its put time, without touching the ring.
#[repr(C)]
pub struct Timeline {
    /// `[tier][entry]`.
    pub points: [[TimelinePoint; TIMELINE_ENTRIES]; TIMELINE_TIERS],
}

/// A blocked-time histogram: non-cumulative bucket counts plus count and sum.
#[repr(C)]
pub struct Histogram {
    /// Observations.
    pub count: AtomicU64,
    /// Sum of observed waits in ns.
    pub sum_ns: AtomicU64,
    /// Per-bucket counts, see [`bucket_upper_ns`].
    pub buckets: [AtomicU64; HIST_BUCKETS],
}

/// Slot states.
pub mod slot_state {
    /// Unused.
    pub const FREE: u64 = 0;
    /// Taken for a child being forked; the child's pid is not known yet.
    pub const RESERVED: u64 = 1;
    /// In use by a live (or not yet reaped) process.
    pub const ACTIVE: u64 = 2;
}

/// Role bits in [`ProcSlot::role`].
pub mod role {
    /// The process has put.
    pub const PRODUCER: u64 = 1;
    /// The process has got.
    pub const CONSUMER: u64 = 2;
}

/// Per-process counters, written only by the owning process (slot 0: retired totals).
#[repr(C)]
pub struct ProcSlot {
    /// [`slot_state`].
    pub state: AtomicU64,
    /// Owner pid.
    pub pid: AtomicU64,
    /// Owner start time (clock ticks since boot).
    pub start_time: AtomicU64,
    /// [`role`] bits.
    pub role: AtomicU64,
    /// When it attached, monotonic (coarse) ns. Its heartbeat (its last sign of life) is the
    /// latest of this, `last_put_ns` and `last_get_ns`: put and get write only those.
    pub heartbeat_ns: AtomicU64,
    /// When the slot was claimed, ns since the Unix epoch.
    pub attached_unix_ns: AtomicU64,
    /// The pid namespace `pid` is valid in (inode of `/proc/PID/ns/pid`; 0 = not known).
    /// A process in another namespace cannot tell whether the owner lives (layout 1.1).
    pub pid_ns: AtomicU64,
    /// Put time (`CLOCK_MONOTONIC_COARSE` ns) of the oldest item in this process's feeder
    /// buffer; 0 = none buffered (layout 1.2).
    pub buffered_since_ns: AtomicU64,

    // -- producer (offset 64) --
    /// Items accepted by `put` (monotonic).
    pub puts: AtomicU64,
    /// Encoded bytes accepted by `put`.
    pub bytes_put: AtomicU64,
    /// Items written into the ring (monotonic; written under the write lock).
    pub committed: AtomicU64,
    /// Bytes written into the ring.
    pub committed_bytes: AtomicU64,
    /// Items dropped unwritten at exit after `cancel_join_thread`.
    pub dropped: AtomicU64,
    /// Bytes of those.
    pub dropped_bytes: AtomicU64,
    /// `put`s between taking capacity and counting the item (a gauge).
    pub reserving: AtomicU64,
    /// `put` calls that found the queue full.
    pub full_events: AtomicU64,

    // -- consumer (offset 128) --
    /// Items returned by `get` (monotonic).
    pub gets: AtomicU64,
    /// Encoded bytes returned by `get`.
    pub bytes_got: AtomicU64,
    /// `get` calls that found the queue empty.
    pub empty_events: AtomicU64,
    /// `put` calls that timed out.
    pub put_timeouts: AtomicU64,
    /// `get` calls that timed out.
    pub get_timeouts: AtomicU64,
    /// Items that could not be decoded.
    pub decode_errors: AtomicU64,
    /// When it last put, monotonic (coarse) ns; 0 = never (layout 1.2).
    pub last_put_ns: AtomicU64,
    /// When its `get` last returned an item, monotonic (coarse) ns; 0 = never (layout 1.2).
    pub last_get_ns: AtomicU64,

    /// Time blocked in `put` (offset 192).
    pub put_blocked: Histogram,
    /// Time blocked in `get` (offset 432).
    pub get_blocked: Histogram,
    /// Time in queue of the stamped items it got, from `put` to `get` (offset 672, layout
    /// 1.2).
    pub wait: Histogram,
    /// `JoinableQueue::task_done` calls (offset 912, layout 1.2).
    pub tasks_done: AtomicU64,
    /// Items it got and never marked done before it detached or died: counted done, so
    /// that `join` does not wait for them (layout 1.2).
    pub tasks_abandoned: AtomicU64,
    _pad2: [u64; 12],
}

/// A write journal whose records were all published, by a holder that stopped before
/// counting them: the `committed` count of stats slot `slot` goes from `before` to
/// `before + items`.
pub(crate) struct PublishedWrite {
    pub slot: u64,
    pub before: u64,
    pub items: u64,
}

impl DataHeader {
    /// The open write journal, if its records were published in full.
    pub(crate) fn published_write(&self) -> Option<PublishedWrite> {
        let fin = self.wj_final.load(Relaxed);
        if self.wj_active.load(Relaxed) == 0 || fin == 0 || self.write_pos.load(Relaxed) < fin {
            return None;
        }
        // Each item takes at least a record header: a scribbled count is cut to what the
        // records could hold.
        let most = fin.wrapping_sub(self.wj_start.load(Relaxed)) / RECORD_HEADER;
        Some(PublishedWrite {
            slot: self.wj_slot.load(Relaxed),
            before: self.wj_committed.load(Relaxed),
            items: self.wj_items.load(Relaxed).min(most),
        })
    }
}

impl PublishedWrite {
    /// Counts the items in `committed` (the slot's count): a compare-and-swap from
    /// `before`, so that of the next writer's repair and a retirement only one counts them.
    pub(crate) fn count(&self, committed: &AtomicU64) {
        let after = self.before.saturating_add(self.items);
        let _ = committed.compare_exchange(self.before, after, Relaxed, Relaxed);
    }
}

const _: () = assert!(std::mem::size_of::<DataHeader>() <= DATA_HEADER_LEN);
// The hot words of each side start cache lines of their own.
const _: () = assert!(std::mem::offset_of!(DataHeader, wj_active) % 64 == 0);
const _: () = assert!(std::mem::offset_of!(DataHeader, write_pos) == 192); // hostile.rs

const _: () = assert!(std::mem::offset_of!(DataHeader, rj_active) % 64 == 0);
const _: () = assert!(std::mem::offset_of!(DataHeader, read_pos) % 64 == 0);
const _: () = assert!(std::mem::offset_of!(DataHeader, space_target) % 64 == 0);
const _: () = assert!(std::mem::size_of::<StatsHeader>() <= STATS_HEADER_LEN);
const _: () = assert!(std::mem::offset_of!(StatsHeader, reserved) == 256);
const _: () = assert!(std::mem::offset_of!(StatsHeader, consumed) == 320);
const _: () = assert!(std::mem::offset_of!(StatsHeader, lock_recoveries) == 384);
const _: () = assert!(std::mem::offset_of!(StatsHeader, slot_lock) == 448);
const _: () = assert!(std::mem::offset_of!(StatsHeader, timeline) == 512);
const _: () = assert!(std::mem::size_of::<ProcSlot>() == SLOT_LEN);
const _: () = assert!(std::mem::offset_of!(ProcSlot, pid_ns) == 48);
const _: () = assert!(std::mem::offset_of!(ProcSlot, puts) == 64);
const _: () = assert!(std::mem::offset_of!(ProcSlot, gets) == 128);
const _: () = assert!(std::mem::offset_of!(ProcSlot, put_blocked) == 192);
const _: () = assert!(std::mem::offset_of!(ProcSlot, get_blocked) == 432);
const _: () = assert!(std::mem::offset_of!(ProcSlot, buffered_since_ns) == 56);
const _: () = assert!(std::mem::offset_of!(ProcSlot, last_put_ns) == 176);
const _: () = assert!(std::mem::offset_of!(ProcSlot, wait) == 672);
const _: () = assert!(std::mem::offset_of!(ProcSlot, tasks_done) == 912);
const _: () = assert!(std::mem::offset_of!(StatsHeader, tasks_seq) == 488);
const _: () = assert!(std::mem::size_of::<Histogram>() == 240);

/// Bytes of a stats segment with `slots` process slots.
pub const fn stats_len(slots: usize) -> usize {
    STATS_HEADER_LEN + (slots + 1) * SLOT_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_from_1us() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1024), 0);
        assert_eq!(bucket_of(1025), 1);
        assert_eq!(bucket_of(2048), 1);
        assert_eq!(bucket_of(100_000_000), 17); // 100 ms <= 2^27 ns (134 ms)
        assert!(100_000_000 <= bucket_upper_ns(17) && 100_000_000 > bucket_upper_ns(16));
        assert_eq!(bucket_of(u64::MAX), HIST_BUCKETS - 1);
        assert_eq!(bucket_upper_ns(26), 1 << 36);
    }

    #[test]
    fn record_sizes_are_padded() {
        assert_eq!(record_size(0), 8);
        assert_eq!(record_size(1), 16);
        assert_eq!(record_size(8), 16);
        assert_eq!(record_size(9), 24);
    }
}
