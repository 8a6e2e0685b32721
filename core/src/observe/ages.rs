//! Oldest-item ages as precise as an observer's refresh: [`AgeTracker`] remembers, from
//! each snapshot it is shown, how many items had been put by then, and dates the oldest
//! item by the last snapshot that had not counted it yet.
//!
//! A single snapshot dates its oldest item with the stats header's put timeline, whose
//! points grow coarse with age (about 1 s up to 8 s of age, 17 s up to 2 min, and so on: see
//! [`Snapshot::oldest_age`]). A tool that refreshes every second sees far more points than
//! the header keeps; the tracker keeps them, while they can still date an item, up to
//! [`AgeTracker::POINTS`] per queue.

use super::snapshot::Snapshot;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Per queue: `(taken_ns, puts)` of past snapshots, oldest first, with counts rising; the
/// first point is the newest one that counted no item still queued.
type Points = VecDeque<(u64, u64)>;

/// Dates every queue's oldest item to within one refresh of the truth: what both tools keep
/// between refreshes.
///
/// [`refine`](Self::refine) lowers a snapshot's [`oldest_age`](Snapshot::oldest_age) to what
/// the snapshots it has been shown of that queue allow. The oldest item still queued was put
/// after the last of them that had not counted it among the puts, so its age is at most the
/// time since that snapshot was taken: never younger than the truth (as the put timeline, with
/// the same exceptions), and older by at most the time between that snapshot and the next
/// one, for items put while the tracker watched. With more than [`POINTS`](Self::POINTS)
/// snapshots of new puts since the oldest item was put, the two closest in time are merged,
/// so the bound for the oldest items widens evenly (to about their age / `POINTS`). Items
/// put before the tracker first saw the queue keep the timeline's precision, and items still
/// in feeder buffers their buffer's.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// let q = mpqueue::Queue::<u8>::new(0)?;
/// let r = &mpqueue::observe::list()?[0];
/// let mut ages = mpqueue::observe::AgeTracker::default();
/// let mut before = r.snapshot()?;
/// ages.refine(&mut before);
/// q.put(1)?;
/// q.put(2)?;
/// let mut s = r.snapshot()?;
/// ages.refine(&mut s);
/// // Put after `before` was taken: no older than the time since then.
/// let since = std::time::Duration::from_nanos(s.taken_ns - before.taken_ns);
/// assert!(s.oldest_age.unwrap() <= since);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AgeTracker {
    /// Per queue (id and creation time).
    queues: HashMap<(String, u64), Points>,
}

impl AgeTracker {
    /// Points kept per queue: with one snapshot a second, 17 minutes of puts behind the
    /// oldest item are dated to the second.
    pub const POINTS: usize = 1024;

    /// Notes `s` and lowers its `oldest_age` to the tracker's bound, if that is lower.
    /// Snapshots of one queue must come in the order they were taken.
    ///
    /// # Examples
    /// See [`AgeTracker`].
    pub fn refine(&mut self, s: &mut Snapshot) {
        let points = self
            .queues
            .entry((s.id.clone(), s.created_unix_ns))
            .or_default();
        if points
            .back()
            .is_some_and(|&(at, puts)| puts > s.puts || at > s.taken_ns)
        {
            points.clear(); // counts went back: another segment under the same id
        }
        match points.back_mut() {
            // The same count, seen later: items after it were put later still.
            Some(last) if last.1 == s.puts => last.0 = s.taken_ns,
            _ => points.push_back((s.taken_ns, s.puts)),
        }
        // Only the newest point that counted no queued item can date one.
        while points.len() >= 2 && points[1].1 <= s.left {
            points.pop_front();
        }
        if points.len() > Self::POINTS {
            merge_closest(points);
        }
        if s.size == 0 {
            return;
        }
        // Earlier snapshots only: this one counts every queued item (unless it is made up).
        let tracked = points
            .front()
            .filter(|&&(at, puts)| puts <= s.left && at < s.taken_ns)
            .map(|&(at, _)| Duration::from_nanos(s.taken_ns.saturating_sub(at)));
        let queued = match (s.oldest_age, tracked) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        };
        // A feeder buffer's oldest item may be older than the ring's.
        let buffered = s.processes.iter().filter_map(|p| p.buffered_age).max();
        s.oldest_age = queued.max(buffered);
    }

    /// Forgets every queue not in `live` (ids of the last listing).
    ///
    /// # Examples
    /// ```
    /// let mut ages = mpqueue::observe::AgeTracker::default();
    /// ages.retain(&["q.jobs".to_string()]);
    /// ```
    pub fn retain(&mut self, live: &[String]) {
        self.queues.retain(|(id, _), _| live.contains(id));
    }
}

/// Drops the inner point whose neighbours are closest in time, so that the widest bound
/// grows as little as it can. The first point (the one dating the oldest item) and the
/// last (the newest count) stay.
fn merge_closest(points: &mut Points) {
    let gap = |i: usize| points[i + 1].0.saturating_sub(points[i - 1].0);
    if let Some(i) = (1..points.len() - 1).min_by_key(|&i| gap(i)) {
        points.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ProcessSnapshot;

    const SEC: u64 = 1_000_000_000;

    /// A snapshot at `at_s` seconds: `puts` put, `left` got, the timeline's age `timeline_s`.
    fn snap(at_s: u64, puts: u64, left: u64, timeline_s: u64) -> Snapshot {
        let mut s = Snapshot::default();
        s.id = "q.jobs".into();
        s.taken_ns = at_s * SEC;
        s.puts = puts;
        s.left = left;
        s.size = puts - left;
        s.oldest_age = (s.size > 0).then(|| Duration::from_secs(timeline_s));
        s
    }

    fn refined(ages: &mut AgeTracker, mut s: Snapshot) -> Option<Duration> {
        ages.refine(&mut s);
        s.oldest_age
    }

    #[test]
    fn an_old_head_is_dated_by_the_last_snapshot_before_its_put() {
        let mut ages = AgeTracker::default();
        // One put per second from t = 10; nothing got.
        assert_eq!(refined(&mut ages, snap(10, 0, 0, 0)), None);
        for t in 11..100 {
            // The timeline's coarse tiers would say 40 s.
            refined(&mut ages, snap(t, t - 10, 0, 40));
        }
        assert_eq!(
            refined(&mut ages, snap(100, 90, 0, 120)),
            Some(Duration::from_secs(90))
        );
        // Items 0..30 got: item 30 was put in (40, 41].
        assert_eq!(
            refined(&mut ages, snap(101, 91, 30, 120)),
            Some(Duration::from_secs(61))
        );
    }

    #[test]
    fn the_timeline_wins_when_it_knows_better() {
        let mut ages = AgeTracker::default();
        refined(&mut ages, snap(0, 0, 0, 0));
        assert_eq!(
            refined(&mut ages, snap(60, 1, 0, 2)),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn items_put_before_the_first_snapshot_keep_the_timelines_age() {
        let mut ages = AgeTracker::default();
        assert_eq!(
            refined(&mut ages, snap(50, 5, 0, 30)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            refined(&mut ages, snap(51, 6, 0, 31)),
            Some(Duration::from_secs(31))
        );
    }

    #[test]
    fn an_unchanged_count_moves_its_point_later() {
        let mut ages = AgeTracker::default();
        refined(&mut ages, snap(0, 3, 3, 0));
        refined(&mut ages, snap(20, 3, 3, 0));
        assert_eq!(
            refined(&mut ages, snap(21, 4, 3, 9)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn an_older_feeder_buffer_item_is_the_oldest() {
        let mut ages = AgeTracker::default();
        refined(&mut ages, snap(0, 0, 0, 0));
        let mut s = snap(10, 2, 0, 10);
        s.processes.push(ProcessSnapshot {
            buffered_age: Some(Duration::from_secs(15)),
            ..Default::default()
        });
        assert_eq!(refined(&mut ages, s), Some(Duration::from_secs(15)));
    }

    #[test]
    fn a_replaced_queue_starts_over() {
        let mut ages = AgeTracker::default();
        refined(&mut ages, snap(0, 100, 100, 0));
        assert_eq!(
            refined(&mut ages, snap(5, 1, 0, 3)),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn points_are_bounded_and_merged_evenly() {
        let mut ages = AgeTracker::default();
        let n = 3 * AgeTracker::POINTS as u64;
        for t in 0..=n {
            refined(&mut ages, snap(t, t, 0, n));
        }
        let points = ages.queues.values().next().unwrap();
        assert_eq!(points.len(), AgeTracker::POINTS);
        let widest = points
            .iter()
            .zip(points.iter().skip(1))
            .map(|(a, b)| b.0 - a.0)
            .max();
        assert!(widest.unwrap() <= 4 * SEC, "{widest:?}");
        // The oldest item still dates exactly (its point is never merged away).
        assert_eq!(points.front().map(|p| p.0), Some(0));
        assert_eq!(
            refined(&mut ages, snap(n + 1, n + 1, 0, n + 5)),
            Some(Duration::from_secs(n + 1))
        );
    }

    #[test]
    fn forgotten_queues_are_dropped() {
        let mut ages = AgeTracker::default();
        refined(&mut ages, snap(0, 1, 0, 0));
        ages.retain(&[]);
        assert!(ages.queues.is_empty());
    }
}
