//! The put timeline (stats layout 1.2): how many items had been put at past moments, in the
//! stats header, so that an observer can tell the age of the oldest item without touching
//! the ring.
//!
//! Tier `k` has one point per period of `2^(30 + 4k)` ns (about 1 s, 17 s, 4.6 min and
//! 73 min) in entry `period % 8`, so it remembers its last 8 periods (8.6 s, 2.3 min, 37 min
//! and 9.8 h). The first put of a period writes the point: the time, and how many items
//! had been put before it. Every put checks one word for that (its period's entry in tier 0:
//! a tier-`k` period always starts with a tier-0 one); one put per second does the rest.
//!
//! Items are numbered in put order. The oldest item still queued is number `puts − size`;
//! the newest point written before it was put bounds its put time from below, so its age
//! is at most `now − that point's time`: exact to within the point's period (about 1 s for
//! an item up to 8 s old, 17 s up to 2 min old, and so on). Items that producers put
//! concurrently are numbered in the order their counts landed, which is close to the order
//! consumers get them in.

use crate::layout::{
    TIMELINE_CLAIM, TIMELINE_ENTRIES, TIMELINE_SHIFT, TIMELINE_STEP, TIMELINE_TIERS, Timeline,
    TimelinePoint,
};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// The period of tier `tier` that monotonic time `ns` falls in.
fn period(ns: u64, tier: usize) -> u64 {
    ns >> (TIMELINE_SHIFT + TIMELINE_STEP * tier as u32)
}

/// The entry of tier `tier` that holds the point of the period `ns` falls in.
fn entry(t: &Timeline, ns: u64, tier: usize) -> &TimelinePoint {
    &t.points[tier][(period(ns, tier) % TIMELINE_ENTRIES as u64) as usize]
}

/// Whether the entry's point (or the claim on it) is for the period `ns` falls in.
fn is_current(at_ns: u64, ns: u64, tier: usize) -> bool {
    at_ns != 0 && period(at_ns & !TIMELINE_CLAIM, tier) == period(ns, tier)
}

/// Notes a put at monotonic time `now`: if it is the first of a period, writes that
/// period's point in each tier, with `puts_before()` (queue-wide items put before it).
/// Returns when the next period starts: a process need not call again before then.
pub(crate) fn note_put(t: &Timeline, now: u64, puts_before: impl Fn() -> u64) -> u64 {
    let next = (period(now, 0) + 1) << TIMELINE_SHIFT;
    if is_current(entry(t, now, 0).at_ns.load(Relaxed), now, 0) {
        return next;
    }
    let mut puts = None;
    for tier in 0..TIMELINE_TIERS {
        let e = entry(t, now, tier);
        let at = e.at_ns.load(Relaxed);
        // Written or being written for this period already (a claim of a producer that
        // died while writing names an older period, and is taken over).
        if is_current(at, now, tier) {
            continue;
        }
        if e.at_ns
            .compare_exchange(at, TIMELINE_CLAIM | now, Acquire, Relaxed)
            .is_err()
        {
            continue; // another producer writes it
        }
        let n = *puts.get_or_insert_with(&puts_before);
        e.puts.store(n, Relaxed);
        // Release: a reader that sees the time sees the count.
        e.at_ns.store(now, Release);
    }
    next
}

/// The points of a timeline as read by an observer: `(at_ns, puts_before)` pairs, zero or
/// claimed (being written) ones included; [`head_put_time`] skips them.
pub(crate) type Points = [(u64, u64); TIMELINE_TIERS * TIMELINE_ENTRIES];

/// How well [`head_put_time`] knows the put time of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutTime {
    /// Put at this time or later (within the period of the point found).
    AtOrAfter(u64),
    /// Put before this time: the item is older than every point kept (over 9.8 h).
    Before(u64),
}

/// The put time of item number `head` (0-based, in put order) from the timeline's points,
/// or `None` if no point is usable. Points being written (claimed), empty ones, and ones
/// whose count goes against their time (read while being written) are skipped.
pub(crate) fn head_put_time(points: &Points, head: u64) -> Option<PutTime> {
    let mut ps: Vec<(u64, u64)> = points
        .iter()
        .copied()
        .filter(|&(at, _)| at != 0 && at & TIMELINE_CLAIM == 0)
        .collect();
    ps.sort_unstable();
    ps.dedup_by_key(|p| p.0);
    // Counts only grow with time: drop any point that contradicts the ones before it.
    let mut max = 0;
    ps.retain(|&(_, n)| {
        let ok = n >= max;
        max = max.max(n);
        ok
    });
    match ps.iter().rev().find(|&&(_, n)| n <= head) {
        Some(&(at, _)) => Some(PutTime::AtOrAfter(at)),
        None => ps.first().map(|&(at, _)| PutTime::Before(at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::StatsHeader;
    use std::sync::atomic::AtomicU64;

    const SEC: u64 = 1 << TIMELINE_SHIFT;

    fn timeline() -> Box<Timeline> {
        // SAFETY: Timeline is atomics only, for which all-zero bytes are valid (empty points).
        unsafe { Box::new(std::mem::zeroed()) }
    }

    fn points(t: &Timeline) -> Points {
        let mut p = [(0, 0); TIMELINE_TIERS * TIMELINE_ENTRIES];
        for (i, e) in t.points.iter().flatten().enumerate() {
            p[i] = (e.at_ns.load(Relaxed), e.puts.load(Relaxed));
        }
        p
    }

    /// Puts `n` items one every `step` ns from `start`, counting them in `puts`.
    fn put(t: &Timeline, puts: &AtomicU64, start: u64, step: u64, n: u64) {
        for i in 0..n {
            note_put(t, start + i * step, || puts.load(Relaxed));
            puts.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn the_head_is_dated_within_its_period() {
        let t = timeline();
        let puts = AtomicU64::new(0);
        let start = 1000 * SEC;
        put(&t, &puts, start, SEC / 10, 50); // 10 a second for 5 s
        // Item 0 was put at `start` exactly (its put wrote the point).
        assert_eq!(
            head_put_time(&points(&t), 0),
            Some(PutTime::AtOrAfter(start))
        );
        // Item 25 was put 2.5 s in: dated within one period before that.
        let Some(PutTime::AtOrAfter(at)) = head_put_time(&points(&t), 25) else {
            panic!()
        };
        let put_at = start + 25 * SEC / 10;
        assert!(at <= put_at && put_at - at <= SEC, "{at} {put_at}");
    }

    #[test]
    fn an_hour_old_item_is_dated_by_a_coarser_tier() {
        let t = timeline();
        let puts = AtomicU64::new(0);
        let start = 5000 * SEC;
        put(&t, &puts, start, 0, 1); // the item still queued
        put(&t, &puts, start + 10 * SEC, SEC, 3600); // an hour of puts after it
        assert_eq!(
            head_put_time(&points(&t), 0),
            Some(PutTime::AtOrAfter(start))
        );
        // Item 1800 (put half an hour in) is dated within its 4.6-minute tier-2 period.
        let Some(PutTime::AtOrAfter(at)) = head_put_time(&points(&t), 1800) else {
            panic!()
        };
        let put_at = start + 10 * SEC + 1799 * SEC;
        assert!(
            at <= put_at && put_at - at <= SEC << 8,
            "{}",
            (put_at - at) / SEC
        );
    }

    #[test]
    fn claimed_empty_and_contradicting_points_are_skipped() {
        let mut p: Points = [(0, 0); TIMELINE_TIERS * TIMELINE_ENTRIES];
        assert_eq!(head_put_time(&p, 0), None);
        p[0] = (10 * SEC, 5);
        p[1] = (TIMELINE_CLAIM | (11 * SEC), 0);
        p[2] = (12 * SEC, 3); // a count lower than an earlier point's: torn, skipped
        p[3] = (13 * SEC, 9);
        assert_eq!(head_put_time(&p, 6), Some(PutTime::AtOrAfter(10 * SEC)));
        assert_eq!(head_put_time(&p, 9), Some(PutTime::AtOrAfter(13 * SEC)));
        assert_eq!(head_put_time(&p, 2), Some(PutTime::Before(10 * SEC)));
    }

    #[test]
    fn a_claim_left_by_a_dead_producer_is_taken_over_in_a_later_period() {
        let t = timeline();
        let e = entry(&t, 100 * SEC, 0);
        e.at_ns.store(TIMELINE_CLAIM | (100 * SEC), Relaxed); // died while writing
        note_put(&t, 108 * SEC, || 7); // same entry (8 periods later)
        assert_eq!(e.at_ns.load(Relaxed), 108 * SEC);
        assert_eq!(e.puts.load(Relaxed), 7);
    }

    #[test]
    fn the_timeline_sits_in_the_stats_header() {
        assert_eq!(std::mem::offset_of!(StatsHeader, timeline), 512);
        assert_eq!(std::mem::size_of::<Timeline>(), 512);
    }
}
