//! The unfinished tasks of a `JoinableQueue`, from the counters alone: every item put, less
//! those dropped (accepted and never written), marked done, abandoned by a process that got
//! them and went, or taken out of the ring by a reader that died before its `get` returned
//! them. (Dropped items, not the queue's `lost`: `lost` also holds capacity units a dead
//! process had taken for items it never counted as put.)

use crate::layout::ProcSlot;
use crate::segment::Segments;
use crate::sync;
use std::sync::atomic::Ordering::Acquire;

/// The per-slot counts the count needs, summed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskCounts {
    /// Items put.
    pub(crate) puts: u64,
    /// Items `get` returned.
    pub(crate) gets: u64,
    /// Items accepted and never written (dead producers, dropped flushes), and capacity
    /// units of processes that died before counting their item (`returned`).
    pub(crate) dropped: u64,
    /// Those capacity units: slot 0's `reserving`.
    pub(crate) returned: u64,
    /// `task_done` calls.
    pub(crate) done: u64,
    /// Items got and never marked done by processes that went.
    pub(crate) abandoned: u64,
}

impl TaskCounts {
    fn add(mut self, s: &ProcSlot) -> Self {
        self.puts = self.puts.wrapping_add(s.puts.load(Acquire));
        self.gets = self.gets.wrapping_add(s.gets.load(Acquire));
        self.dropped = self.dropped.wrapping_add(s.dropped.load(Acquire));
        self.done = self.done.wrapping_add(s.tasks_done.load(Acquire));
        self.abandoned = self.abandoned.wrapping_add(s.tasks_abandoned.load(Acquire));
        self
    }

    /// The unfinished count, given the queue's `consumed`. Items out of the ring that no
    /// `get` returned (`consumed − gets`) were taken by a reader that died: they will never
    /// be marked done.
    pub(crate) fn unfinished(&self, consumed: u64) -> u64 {
        let discarded = consumed.saturating_sub(self.gets);
        self.puts
            .saturating_sub(self.dropped.saturating_sub(self.returned))
            .saturating_sub(self.done)
            .saturating_sub(self.abandoned)
            .saturating_sub(discarded)
    }
}

/// The unfinished tasks of the queue in `seg`, read without any lock: a reader between
/// taking items out of the ring and counting their `get`s makes it low by those items (one,
/// or a batch's run) for that moment
/// (`JoinableQueue::join` confirms a zero under the read lock).
pub(crate) fn unfinished(seg: &Segments) -> u64 {
    sync::read_consistent(&seg.stats().retire_seq, || {
        let first = TaskCounts {
            returned: seg.retired().reserving.load(Acquire),
            ..TaskCounts::default()
        };
        let counts = seg
            .slot_indices()
            .map(|i| seg.slot(i))
            .fold(first.add(seg.retired()), TaskCounts::add);
        let h = seg.stats();
        counts.unfinished(h.consumed.load(Acquire))
    })
}
