//! Health verdicts: whether a queue's consumers keep up, are stuck, or are gone, judged
//! from its snapshots alone.
//!
//! The rules follow Burrow's consumer-lag evaluation (linkedin/Burrow, wiki "Consumer Lag
//! Evaluation Rules"), with a queue's size as the lag, `gets` as the consumer's offset and
//! a get as a commit: the first rule that matches wins.
//!
//! | verdict | when | Burrow |
//! |---|---|---|
//! | [`Health::NoConsumer`] | items wait, and no live attached process has called `get` | STOP |
//! | [`Health::Stalled`] | items wait, a consumer lives, no item was got for [`HealthRules::stall_after`], and the oldest item is at least that old | STALL (the age guard is Burrow's #338: items that just landed on an idle queue are not a stall) |
//! | [`Health::Lagging`] | over a window: items were got, yet the backlog or the oldest item's age grew | WARN |
//! | [`Health::Idle`] | empty, and nothing put or got over the window (one snapshot: for [`HealthRules::idle_after`]) | OK, no traffic |
//! | [`Health::Ok`] | otherwise | OK |
//!
//! A liveness that cannot be known (another pid namespace) counts as alive: a consumer is
//! gone only on evidence.

use super::snapshot::{Role, Snapshot};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// A queue's health, worst first in [`Health::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Health {
    /// Items wait and no live process takes them.
    NoConsumer,
    /// Items wait, a consumer lives, and it has taken nothing for a while.
    Stalled,
    /// Items are taken, but fewer than arrive.
    Lagging,
    /// Empty, and nothing moves.
    Idle,
    /// Items move.
    Ok,
}

impl Health {
    /// Every verdict, worst first (the order `mpqueue-top` sorts by).
    pub const ALL: [Health; 5] = [
        Health::NoConsumer,
        Health::Stalled,
        Health::Lagging,
        Health::Idle,
        Health::Ok,
    ];

    /// `"no_consumer"`, `"stalled"`, `"lagging"`, `"idle"` or `"ok"`: the `status` label of
    /// `mpqueue_health`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(mpqueue::observe::Health::NoConsumer.as_str(), "no_consumer");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Health::NoConsumer => "no_consumer",
            Health::Stalled => "stalled",
            Health::Lagging => "lagging",
            Health::Idle => "idle",
            Health::Ok => "ok",
        }
    }

    /// Whether someone should look: `NoConsumer` and `Stalled`.
    ///
    /// # Examples
    /// ```
    /// use mpqueue::observe::Health;
    /// assert!(Health::Stalled.is_stuck() && !Health::Lagging.is_stuck());
    /// ```
    pub fn is_stuck(self) -> bool {
        matches!(self, Health::NoConsumer | Health::Stalled)
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The thresholds of the verdicts. `mpqueue-top` and `mpqueue-exporter` take
/// `--stall-after`; the rest are these defaults.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let rules = mpqueue::observe::HealthRules {
///     stall_after: Duration::from_secs(30),
///     ..Default::default()
/// };
/// assert_eq!(rules.window, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRules {
    /// A consumer that has got nothing for this long while items as old wait is stalled
    /// (default 10 s).
    pub stall_after: Duration,
    /// An empty queue with no put or get for this long is idle, when only one snapshot is
    /// at hand (default 10 s).
    pub idle_after: Duration,
    /// How far back [`HealthWindow`] compares, for `Lagging` and `Idle` (default 10 s).
    pub window: Duration,
}

impl Default for HealthRules {
    fn default() -> Self {
        HealthRules {
            stall_after: Duration::from_secs(10),
            idle_after: Duration::from_secs(10),
            window: Duration::from_secs(10),
        }
    }
}

/// Whether `age` (unknown: `None`) is at least `limit`; `unknown` says what an unknown
/// age counts as.
fn at_least(age: Option<Duration>, limit: Duration, unknown: bool) -> bool {
    age.map_or(unknown, |a| a >= limit)
}

impl Snapshot {
    /// The verdict from this snapshot alone, with the default rules (see [`HealthRules`]).
    /// `Lagging` needs two snapshots: [`health_since`](Self::health_since).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
    /// use mpqueue::observe::Health;
    /// let q = mpqueue::Queue::<u8>::new(0)?;
    /// let r = &mpqueue::observe::list()?[0];
    /// assert_eq!(r.snapshot()?.health(), Health::Idle);
    /// q.put(1)?; // waiting, and nobody has ever called get
    /// assert_eq!(r.snapshot()?.health(), Health::NoConsumer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self) -> Health {
        self.health_with(&HealthRules::default())
    }

    /// The verdict from this snapshot alone, with `rules`.
    ///
    /// # Examples
    /// ```
    /// use mpqueue::observe::{Health, HealthRules, Snapshot};
    /// let s = Snapshot::default(); // empty, never used
    /// assert_eq!(s.health_with(&HealthRules::default()), Health::Idle);
    /// ```
    pub fn health_with(&self, rules: &HealthRules) -> Health {
        if let Some(stuck) = self.stuck(rules) {
            return stuck;
        }
        let quiet = |age: Option<Duration>| at_least(age, rules.idle_after, true);
        if self.size == 0 && quiet(self.last_get_age) && quiet(self.last_put_age) {
            Health::Idle
        } else {
            Health::Ok
        }
    }

    /// The verdict over the time from `earlier` (a snapshot of the same queue) to this one:
    /// as [`health_with`](Self::health_with), and `Lagging` when items were waiting at both,
    /// items were got, and yet the backlog grew by over a tenth (at least 2 items) or the
    /// oldest item's age by over a quarter of the time between the snapshots (at least 1 s); `Idle` when the queue
    /// was empty at both and nothing was put or got in between. If `earlier` is not of the
    /// same queue (its counters are ahead), this is `health_with`.
    ///
    /// # Examples
    /// ```
    /// use mpqueue::observe::{Health, HealthRules, Snapshot};
    /// use std::time::Duration;
    /// let mut before = Snapshot::default();
    /// before.size = 100;
    /// before.gets = 1000;
    /// before.oldest_age = Some(Duration::from_secs(2));
    /// before.last_get_age = Some(Duration::ZERO);
    /// let mut after = before.clone();
    /// after.taken_ns = 10_000_000_000; // 10 s later: 500 more got, 300 more waiting
    /// after.gets = 1500;
    /// after.size = 400;
    /// after.oldest_age = Some(Duration::from_secs(6));
    /// after.processes = before.processes.clone();
    /// let mut consumer = mpqueue::observe::ProcessSnapshot::default();
    /// consumer.role = mpqueue::observe::Role::Consumer;
    /// after.processes.push(consumer);
    /// assert_eq!(after.health_since(&before, &HealthRules::default()), Health::Lagging);
    /// ```
    pub fn health_since(&self, earlier: &Snapshot, rules: &HealthRules) -> Health {
        if earlier.gets > self.gets || earlier.puts > self.puts || earlier.taken_ns > self.taken_ns
        {
            return self.health_with(rules);
        }
        if let Some(stuck) = self.stuck(rules) {
            return stuck;
        }
        let span = Duration::from_nanos(self.taken_ns - earlier.taken_ns);
        let got = self.gets > earlier.gets;
        let backlog_grew = self.size >= earlier.size.saturating_add((earlier.size / 10).max(2));
        let age_grew = match (earlier.oldest_age, self.oldest_age) {
            (Some(a), Some(b)) => a
                .checked_add((span / 4).max(Duration::from_secs(1)))
                .is_some_and(|grown| b >= grown),
            _ => false,
        };
        // A backlog that was empty at the start is not lagging (Burrow: any zero lag in the
        // window is OK).
        if got && earlier.size > 0 && self.size > 0 && (backlog_grew || age_grew) {
            Health::Lagging
        } else if self.size == 0 && earlier.size == 0 && !got && self.puts == earlier.puts {
            Health::Idle
        } else {
            Health::Ok
        }
    }

    /// `NoConsumer` or `Stalled`, if either holds.
    fn stuck(&self, rules: &HealthRules) -> Option<Health> {
        if self.size == 0 {
            return None;
        }
        let consumers = self
            .processes
            .iter()
            .filter(|p| p.alive && matches!(p.role, Role::Consumer | Role::Both))
            .count();
        if consumers == 0 {
            return Some(Health::NoConsumer);
        }
        // Never got: as long ago as can be. An unknown oldest age (a layout 1.1 segment,
        // or producers with the counters off) does not hold a stall back.
        (at_least(self.last_get_age, rules.stall_after, true)
            && at_least(self.oldest_age, rules.stall_after, true))
        .then_some(Health::Stalled)
    }
}

/// Recent snapshots of every queue, to judge each over [`HealthRules::window`]: what both
/// tools keep between refreshes.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir().unwrap(); unsafe { std::env::set_var("MPQUEUE_DIR", dir.path()) };
/// use mpqueue::observe::{Health, HealthRules, HealthWindow};
/// let _q = mpqueue::Queue::<u8>::new(0)?;
/// let mut window = HealthWindow::new(HealthRules::default());
/// let s = mpqueue::observe::list()?[0].snapshot()?;
/// assert_eq!(window.judge(&s), Health::Idle);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct HealthWindow {
    rules: HealthRules,
    /// Per queue (id and creation time): snapshots, oldest first.
    history: HashMap<(String, u64), VecDeque<Snapshot>>,
}

impl HealthWindow {
    /// An empty window judging by `rules`.
    ///
    /// # Examples
    /// ```
    /// let w = mpqueue::observe::HealthWindow::new(Default::default());
    /// assert_eq!(w.rules().stall_after, std::time::Duration::from_secs(10));
    /// ```
    pub fn new(rules: HealthRules) -> Self {
        HealthWindow {
            rules,
            history: HashMap::new(),
        }
    }

    /// The rules it judges by.
    ///
    /// # Examples
    /// ```
    /// let w = mpqueue::observe::HealthWindow::default();
    /// assert_eq!(w.rules().window, std::time::Duration::from_secs(10));
    /// ```
    pub fn rules(&self) -> &HealthRules {
        &self.rules
    }

    /// Adds `s` and judges its queue against the oldest snapshot kept within the window
    /// (from `s` alone if there is none yet).
    ///
    /// # Examples
    /// See [`HealthWindow`].
    pub fn judge(&mut self, s: &Snapshot) -> Health {
        let window = u64::try_from(self.rules.window.as_nanos()).unwrap_or(u64::MAX);
        let h = self
            .history
            .entry((s.id.clone(), s.created_unix_ns))
            .or_default();
        // Keep the newest snapshot at least a window old, and everything after it.
        while h.len() >= 2 && s.taken_ns.saturating_sub(h[1].taken_ns) >= window {
            h.pop_front();
        }
        let verdict = match h.front() {
            // Lagging needs half a window, and growth at every step (Burrow's "lag never
            // decreases"): a backlog that wobbles around a level is not lagging.
            Some(first) => match s.health_since(first, &self.rules) {
                Health::Lagging
                    if s.taken_ns - first.taken_ns < window / 2 || !grows_throughout(h, s) =>
                {
                    s.health_with(&self.rules)
                }
                v => v,
            },
            None => s.health_with(&self.rules),
        };
        h.push_back(s.clone());
        verdict
    }

    /// Forgets every queue not in `live` (ids of the last listing), so that the window
    /// does not grow with queues that are gone.
    ///
    /// # Examples
    /// ```
    /// let mut w = mpqueue::observe::HealthWindow::default();
    /// w.retain(&["q.jobs".to_string()]);
    /// ```
    pub fn retain(&mut self, live: &[String]) {
        self.history.retain(|(id, _), _| live.contains(id));
    }
}

/// Whether the queue held items at every snapshot, through `h` and then `last`, and its size
/// or its oldest item's age never went down from one to the next.
fn grows_throughout(h: &VecDeque<Snapshot>, last: &Snapshot) -> bool {
    let all: Vec<&Snapshot> = h.iter().chain(std::iter::once(last)).collect();
    if all.iter().any(|s| s.size == 0) {
        return false;
    }
    let pairs = || all.windows(2).map(|w| (w[0], w[1]));
    pairs().all(|(a, b)| b.size >= a.size) || pairs().all(|(a, b)| b.oldest_age >= a.oldest_age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(at_s: u64, size: u64, gets: u64) -> Snapshot {
        let consumer = super::super::snapshot::ProcessSnapshot {
            role: Role::Consumer,
            ..Default::default()
        };
        Snapshot {
            id: "q.t".into(),
            taken_ns: at_s * 1_000_000_000,
            size,
            gets,
            puts: gets + size,
            last_get_age: Some(Duration::ZERO),
            processes: vec![consumer],
            ..Default::default()
        }
    }

    #[test]
    fn a_busy_queue_seen_empty_then_with_a_backlog_once_is_not_lagging() {
        let mut w = HealthWindow::new(HealthRules::default());
        for t in 0..10 {
            assert_eq!(w.judge(&snap(t, 0, 1000 * t)), Health::Ok, "{t}");
        }
        assert_eq!(w.judge(&snap(10, 159, 10_000)), Health::Ok);
    }

    #[test]
    fn a_backlog_growing_at_every_look_while_items_are_got_is_lagging() {
        let mut w = HealthWindow::new(HealthRules::default());
        let verdicts: Vec<Health> = (0..12)
            .map(|t| w.judge(&snap(t, 10 + 50 * t, 100 * t)))
            .collect();
        assert_eq!(verdicts[0], Health::Ok);
        assert_eq!(verdicts.last(), Some(&Health::Lagging), "{verdicts:?}");
    }
}
