//! The health verdict of every queue a scrape shows, judged by a
//! [`HealthWindow`] kept across scrapes (so `lagging`, which compares a queue with its
//! earlier snapshots, can show), with a floor on how often a queue's snapshot enters it;
//! and each queue's oldest item dated to within a scrape interval by an [`AgeTracker`].
//!
//! Clients choose how often they scrape. Without the floor, a client scraping in a tight
//! loop would add a snapshot per queue per scrape to the window (10 s of them), and the
//! exporter would grow with the scrape rate; with it, the window holds at most about
//! `window / MIN_STEP` snapshots per queue, and a scrape sooner than [`MIN_STEP`] after the
//! last judged one gets the same verdict.

use mpqueue::observe::{AgeTracker, Health, HealthRules, HealthWindow, Snapshot};
use std::collections::HashMap;
use std::time::Duration;

/// The least time between two snapshots of a queue that enter the window.
pub const MIN_STEP: Duration = Duration::from_millis(250);

/// Verdicts across scrapes: a [`HealthWindow`], each queue's last verdict, and the
/// oldest items' ages.
#[derive(Debug)]
pub struct Verdicts {
    window: HealthWindow,
    ages: AgeTracker,
    /// Per queue (id and creation time): when its last judged snapshot was taken
    /// (monotonic ns) and its verdict.
    last: HashMap<(String, u64), (u64, Health)>,
}

impl Verdicts {
    /// No history yet; verdicts by `rules`.
    pub fn new(rules: HealthRules) -> Self {
        Verdicts {
            window: HealthWindow::new(rules),
            ages: AgeTracker::default(),
            last: HashMap::new(),
        }
    }

    /// Dates the oldest item of `s` by every scrape so far, then gives its verdict: judged
    /// by the window, or the queue's last verdict if that was judged less than [`MIN_STEP`]
    /// before `s` was taken.
    pub fn judge(&mut self, s: &mut Snapshot) -> Health {
        self.ages.refine(s);
        let key = (s.id.clone(), s.created_unix_ns);
        let step = u64::try_from(MIN_STEP.as_nanos()).unwrap_or(u64::MAX);
        if let Some(&(at, verdict)) = self.last.get(&key)
            && s.taken_ns >= at
            && s.taken_ns - at < step
        {
            return verdict;
        }
        let verdict = self.window.judge(s);
        self.last.insert(key, (s.taken_ns, verdict));
        verdict
    }

    /// Forgets every queue whose id is not in `live` (the queues of the last scrape).
    pub fn retain(&mut self, live: &[String]) {
        self.window.retain(live);
        self.ages.retain(live);
        self.last.retain(|(id, _), _| live.contains(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpqueue::observe::Role;

    /// A queue holding `size` items with no consumer, taken at `ms` milliseconds.
    fn at(ms: u64, size: u64) -> Snapshot {
        let mut s = Snapshot::default();
        s.id = "q.jobs".into();
        s.size = size;
        s.puts = size;
        s.taken_ns = ms * 1_000_000;
        let mut producer = mpqueue::observe::ProcessSnapshot::default();
        producer.role = Role::Producer;
        s.processes = vec![producer];
        s
    }

    #[test]
    fn scrapes_closer_than_the_step_share_a_verdict() {
        let mut v = Verdicts::new(HealthRules::default());
        assert_eq!(v.judge(&mut at(1000, 0)), Health::Idle);
        // Items arrive with nobody to take them, but this scrape is 10 ms later: the
        // verdict of the last judged snapshot stands (and nothing enters the window).
        assert_eq!(v.judge(&mut at(1010, 5)), Health::Idle);
        assert_eq!(v.judge(&mut at(1249, 5)), Health::Idle);
        // A step later, it is judged again.
        assert_eq!(v.judge(&mut at(1250, 5)), Health::NoConsumer);
        assert_eq!(v.judge(&mut at(1300, 5)), Health::NoConsumer);
    }

    #[test]
    fn a_recreated_or_forgotten_queue_is_judged_afresh() {
        let mut v = Verdicts::new(HealthRules::default());
        assert_eq!(v.judge(&mut at(1000, 0)), Health::Idle);
        let mut recreated = at(1010, 5);
        recreated.created_unix_ns = 7;
        assert_eq!(v.judge(&mut recreated), Health::NoConsumer);
        v.retain(&[]);
        assert_eq!(v.judge(&mut at(1020, 0)), Health::Idle);
        v.retain(&["q.other".to_string()]);
        assert_eq!(v.judge(&mut at(1030, 5)), Health::NoConsumer);
    }
}
