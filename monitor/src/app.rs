//! Dashboard state: the latest snapshot of every queue with its health verdict, short
//! histories for the sparklines, and what the user chose (view, selection, sort, filter,
//! pause).
//!
//! Snapshots come from `mpqueue::observe`; one [`HealthWindow`] kept across refreshes judges
//! them (`Lagging` needs its window), and one [`AgeTracker`] dates their oldest items. [`App::apply`] carries out an [`Action`] (from
//! `input`). No drawing and no styling here: `view` renders an `&App`.

use crate::input::{Action, Mode};
use mpqueue::observe::{self, AgeTracker, Health, HealthRules, HealthWindow, Rates, Snapshot};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

/// Samples kept for the sparklines (at the default 1 s interval: 5 minutes).
pub const HISTORY: usize = 300;

/// Recent values of one queue, one per refresh.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Queue size.
    pub size: VecDeque<u64>,
    /// Puts per second.
    pub puts: VecDeque<u64>,
    /// Gets per second.
    pub gets: VecDeque<u64>,
    /// Age of the oldest item in milliseconds (0 when empty or unknown).
    pub oldest_ms: VecDeque<u64>,
}

impl History {
    fn push(&mut self, s: &Snapshot, rates: &Rates) {
        let oldest = s
            .oldest_age
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        for (v, x) in [
            (&mut self.size, s.size),
            (&mut self.puts, rates.puts.round() as u64),
            (&mut self.gets, rates.gets.round() as u64),
            (&mut self.oldest_ms, oldest),
        ] {
            if v.len() == HISTORY {
                v.pop_front();
            }
            v.push_back(x);
        }
    }
}

/// One queue as the dashboard knows it.
#[derive(Debug, Clone)]
pub struct QueueRow {
    /// Stats file id (unique).
    pub id: String,
    /// Latest snapshot, if the last read worked.
    pub snap: Option<Snapshot>,
    /// Why the last read failed (corrupt, permission, …).
    pub error: Option<String>,
    /// Rates between the last two snapshots.
    pub rates: Rates,
    /// The verdict on the latest snapshot, over the health window; `None` if unreadable.
    pub health: Option<Health>,
    /// Values over the last refreshes.
    pub history: History,
}

impl QueueRow {
    /// The name to show (escaped by the view): the snapshot's name, else the file id.
    pub fn name(&self) -> &str {
        self.snap.as_ref().map_or(&self.id, |s| &s.name)
    }

    /// `live`, `stale` (every attached process is dead), `unknown` (none is known alive,
    /// some cannot be told: another pid namespace, or `/proc` unreadable) or `error`.
    pub fn state(&self) -> &'static str {
        self.snap.as_ref().map_or("error", crate::fmt::queue_state)
    }

    /// Whether its verdict is `NoConsumer` or `Stalled`: such rows come first in every sort.
    pub fn is_stuck(&self) -> bool {
        self.health.is_some_and(Health::is_stuck)
    }
}

/// How bad a verdict is: 0 for `Ok` up to 4 for `NoConsumer` (the reverse of
/// [`Health::ALL`]); -1 for a queue that could not be read.
fn badness(h: Option<Health>) -> f64 {
    h.and_then(|h| Health::ALL.iter().rev().position(|x| *x == h))
        .map_or(-1.0, |i| i as f64)
}

/// What the list can be sorted by: its sortable columns, left to right (the list's column
/// table names the key of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Queue name.
    Name,
    /// Health verdict, worst first when descending.
    Health,
    /// Items in the queue.
    Size,
    /// Age of the oldest item.
    Oldest,
    /// Puts per second.
    PutRate,
    /// Gets per second.
    GetRate,
    /// Bytes per second (in and out).
    ByteRate,
    /// Full events per second.
    FullRate,
    /// Empty events per second.
    EmptyRate,
    /// p99 time in queue.
    WaitP99,
    /// p99 time blocked in put.
    PutP99,
    /// p99 time blocked in get.
    GetP99,
    /// Attached processes.
    Processes,
    /// live / unknown / stale / error.
    State,
}

impl SortKey {
    /// Every key, in the order `s` steps through them (the columns' order).
    pub const ALL: [SortKey; 14] = [
        SortKey::Name,
        SortKey::Health,
        SortKey::Size,
        SortKey::Oldest,
        SortKey::PutRate,
        SortKey::GetRate,
        SortKey::ByteRate,
        SortKey::FullRate,
        SortKey::EmptyRate,
        SortKey::WaitP99,
        SortKey::PutP99,
        SortKey::GetP99,
        SortKey::Processes,
        SortKey::State,
    ];

    fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    /// How the footer names it (`sort: size ▼`).
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Health => "health",
            SortKey::Size => "size",
            SortKey::Oldest => "oldest",
            SortKey::PutRate => "put/s",
            SortKey::GetRate => "get/s",
            SortKey::ByteRate => "bytes/s",
            SortKey::FullRate => "full/s",
            SortKey::EmptyRate => "empty/s",
            SortKey::WaitP99 => "wait p99",
            SortKey::PutP99 => "put p99",
            SortKey::GetP99 => "get p99",
            SortKey::Processes => "procs",
            SortKey::State => "state",
        }
    }

    /// The number rows are ordered by (the name is compared as text instead).
    fn value(self, r: &QueueRow) -> f64 {
        let s = r.snap.as_ref();
        let q = |h: Option<&mpqueue::observe::HistogramSnapshot>| {
            h.and_then(|h| h.quantile(0.99))
                .map_or(0.0, |d| d.as_secs_f64())
        };
        match self {
            SortKey::Name => 0.0,
            SortKey::Health => badness(r.health),
            SortKey::Size => s.map_or(0.0, |s| s.size as f64),
            SortKey::Oldest => s
                .and_then(|s| s.oldest_age)
                .map_or(0.0, |d| d.as_secs_f64()),
            SortKey::PutRate => r.rates.puts,
            SortKey::GetRate => r.rates.gets,
            SortKey::ByteRate => r.rates.bytes_put + r.rates.bytes_got,
            SortKey::FullRate => r.rates.full_events,
            SortKey::EmptyRate => r.rates.empty_events,
            SortKey::WaitP99 => q(s.map(|s| &s.wait)),
            SortKey::PutP99 => q(s.map(|s| &s.put_blocked)),
            SortKey::GetP99 => q(s.map(|s| &s.get_blocked)),
            SortKey::Processes => s.map_or(0.0, |s| s.processes.len() as f64),
            SortKey::State => match r.state() {
                "live" => 0.0,
                "unknown" => 1.0,
                "stale" => 2.0,
                _ => 3.0,
            },
        }
    }
}

/// Where a row goes in every sort: `NoConsumer` (0), then `Stalled` (1), then the rest (2).
fn stuck_rank(r: &QueueRow) -> u8 {
    match r.health {
        Some(Health::NoConsumer) => 0,
        Some(Health::Stalled) => 1,
        _ => 2,
    }
}

/// Which screen is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Every queue, one row each.
    List,
    /// One queue in detail, by id.
    Detail(String),
}

/// The whole dashboard state.
#[derive(Debug)]
pub struct App {
    /// The stats directory watched.
    pub dir: PathBuf,
    /// Time between refreshes.
    pub interval: Duration,
    /// No refreshes while paused.
    pub paused: bool,
    /// Current screen.
    pub view: View,
    /// Sort column.
    pub sort: SortKey,
    /// Sort descending (default for numbers).
    pub descending: bool,
    /// Name filter (substring).
    pub filter: String,
    /// Whether keys are commands or edit the filter.
    pub mode: Mode,
    /// Selected row in the (filtered, sorted) list.
    pub selected: usize,
    /// Help overlay shown.
    pub help: bool,
    /// Error reading the directory itself.
    pub dir_error: Option<String>,
    /// Set by `q` / Ctrl-C.
    pub quit: bool,
    /// What the dashboard is waiting for (shown instead of the key help), e.g. the demo
    /// stopping.
    pub notice: Option<String>,
    rows: BTreeMap<String, QueueRow>,
    /// Recent snapshots of every queue, judged over `HealthRules::window`.
    health: HealthWindow,
    /// Every queue's oldest item, dated by the refreshes so far.
    ages: AgeTracker,
}

impl App {
    /// A dashboard over `dir`, refreshing every `interval`, judging health by `rules`.
    pub fn new(dir: PathBuf, interval: Duration, rules: HealthRules) -> Self {
        App {
            dir,
            interval,
            paused: false,
            view: View::List,
            sort: SortKey::Name,
            descending: false,
            filter: String::new(),
            mode: Mode::Normal,
            selected: 0,
            help: false,
            dir_error: None,
            quit: false,
            notice: None,
            rows: BTreeMap::new(),
            health: HealthWindow::new(rules),
            ages: AgeTracker::default(),
        }
    }

    /// The thresholds of the health verdicts (`--stall-after`).
    pub fn rules(&self) -> &HealthRules {
        self.health.rules()
    }

    /// Reads every queue in the directory now (skipped while paused).
    pub fn refresh(&mut self) {
        if self.paused {
            return;
        }
        match observe::list_in(&self.dir) {
            Ok(list) => {
                self.dir_error = None;
                let results = list
                    .into_iter()
                    .map(|q| {
                        let id = q
                            .path()
                            .file_stem()
                            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                        (id, q.snapshot().map_err(|e| e.to_string()))
                    })
                    .collect();
                self.ingest(results);
            }
            Err(e) => self.dir_error = Some(e.to_string()),
        }
    }

    /// Takes in one round of snapshots (by stats-file id), dating each one's oldest item
    /// and judging it over the health window; queues not in it are gone (and forgotten).
    pub fn ingest(&mut self, results: Vec<(String, Result<Snapshot, String>)>) {
        let mut next = BTreeMap::new();
        for (id, result) in results {
            let mut row = self.rows.remove(&id).unwrap_or_else(|| QueueRow {
                id: id.clone(),
                snap: None,
                error: None,
                rates: Rates::default(),
                health: None,
                history: History::default(),
            });
            match result {
                Ok(mut s) => {
                    self.ages.refine(&mut s);
                    row.rates = row
                        .snap
                        .as_ref()
                        .map_or_else(Rates::default, |prev| s.rate_since(prev));
                    row.history.push(&s, &row.rates);
                    row.health = Some(self.health.judge(&s));
                    row.snap = Some(s);
                    row.error = None;
                }
                Err(e) => {
                    row.snap = None;
                    row.health = None;
                    row.error = Some(e);
                }
            }
            next.insert(id, row);
        }
        // The window knows queues by the id in their snapshot (the stats file's stem).
        let ids: Vec<String> = next
            .values()
            .filter_map(|r: &QueueRow| r.snap.as_ref().map(|s| s.id.clone()))
            .collect();
        self.health.retain(&ids);
        self.ages.retain(&ids);
        self.rows = next;
        self.selected = self.selected.min(self.visible().len().saturating_sub(1));
    }

    /// The rows shown: filtered by name; stuck queues first (`NoConsumer`, then
    /// `Stalled`), whatever the sort; then by the sort key.
    pub fn visible(&self) -> Vec<&QueueRow> {
        let filter = self.filter.to_lowercase();
        let mut v: Vec<&QueueRow> = self
            .rows
            .values()
            .filter(|r| filter.is_empty() || r.name().to_lowercase().contains(&filter))
            .collect();
        let key = self.sort;
        v.sort_by(|a, b| {
            let ord = if key == SortKey::Name {
                a.name().cmp(b.name())
            } else {
                key.value(a).total_cmp(&key.value(b))
            };
            let ord = if self.descending { ord.reverse() } else { ord };
            stuck_rank(a)
                .cmp(&stuck_rank(b))
                .then(ord)
                .then_with(|| a.id.cmp(&b.id))
        });
        v
    }

    /// Processes not known dead attached to the queues whose stats-file id starts with
    /// `id_prefix` (as of the last refresh), each counted once.
    pub fn processes_of(&self, id_prefix: &str) -> usize {
        let mut pids: Vec<u32> = self
            .rows
            .values()
            .filter(|r| r.id.starts_with(id_prefix))
            .filter_map(|r| r.snap.as_ref())
            .flat_map(|s| s.processes.iter().filter(|p| p.alive).map(|p| p.pid))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids.len()
    }

    /// The queue shown in the detail view.
    pub fn detail(&self) -> Option<&QueueRow> {
        match &self.view {
            View::Detail(id) => self.rows.get(id),
            View::List => None,
        }
    }

    /// Applies one user action.
    pub fn apply(&mut self, action: Action) {
        let len = self.visible().len();
        match action {
            Action::Quit => self.quit = true,
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(len.saturating_sub(1)),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = len.saturating_sub(1),
            Action::Open => {
                if let Some(r) = self.visible().get(self.selected) {
                    self.view = View::Detail(r.id.clone());
                }
            }
            Action::Back => {
                if self.help {
                    self.help = false;
                } else {
                    self.view = View::List;
                }
            }
            Action::NextSort => {
                self.sort = self.sort.next();
                self.descending = self.sort != SortKey::Name;
            }
            Action::ReverseSort => self.descending = !self.descending,
            Action::StartFilter => self.mode = Mode::Filter,
            Action::FilterChar(c) => {
                self.filter.push(c);
                self.selected = 0;
            }
            Action::FilterBackspace => {
                self.filter.pop();
            }
            Action::FilterDone => self.mode = Mode::Normal,
            Action::FilterCancel => {
                self.filter.clear();
                self.mode = Mode::Normal;
            }
            Action::Pause => self.paused = !self.paused,
            Action::Faster => {
                self.interval = (self.interval / 2).max(Duration::from_millis(100));
            }
            Action::Slower => {
                self.interval = (self.interval * 2).min(Duration::from_secs(10));
            }
            Action::Help => self.help = !self.help,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpqueue::observe::{ProcessSnapshot, Role};

    fn new_app() -> App {
        App::new(
            PathBuf::from("/nowhere"),
            Duration::from_secs(1),
            HealthRules::default(),
        )
    }

    /// A queue of this name and size with a live consumer that got an item just now.
    fn served(name: &str, size: u64) -> Snapshot {
        let mut consumer = ProcessSnapshot::default();
        consumer.role = Role::Consumer;
        let mut s = Snapshot::default();
        s.name = name.into();
        s.id = format!("q.{name}");
        s.size = size;
        s.last_get_age = Some(Duration::ZERO);
        s.processes = vec![consumer];
        s
    }

    /// A dashboard over queues of these names and sizes, read twice.
    fn app_with(queues: &[(&str, u64)]) -> App {
        let mut app = new_app();
        let round = || {
            queues
                .iter()
                .map(|&(name, size)| (format!("q.{name}"), Ok(served(name, size))))
                .collect()
        };
        app.ingest(round());
        app.ingest(round());
        app
    }

    fn names(app: &App) -> Vec<&str> {
        app.visible().into_iter().map(QueueRow::name).collect()
    }

    #[test]
    fn sort_steps_through_every_key_and_numbers_start_descending() {
        let mut app = app_with(&[("a", 1), ("b", 3), ("c", 2)]);
        assert_eq!(names(&app), ["a", "b", "c"]);
        app.apply(Action::NextSort);
        assert_eq!((app.sort, app.descending), (SortKey::Health, true));
        app.apply(Action::NextSort);
        assert_eq!((app.sort, app.descending), (SortKey::Size, true));
        assert_eq!(names(&app), ["b", "c", "a"]);
        app.apply(Action::ReverseSort);
        assert_eq!(names(&app), ["a", "c", "b"]);
        for _ in 2..SortKey::ALL.len() {
            app.apply(Action::NextSort);
        }
        assert_eq!((app.sort, app.descending), (SortKey::Name, false));
    }

    #[test]
    fn the_filter_narrows_the_list_and_cancelling_clears_it() {
        let mut app = app_with(&[("jobs", 0), ("results", 0), ("Jobs2", 0)]);
        app.apply(Action::Bottom);
        app.apply(Action::StartFilter);
        assert_eq!(app.mode, Mode::Filter);
        for c in "job".chars() {
            app.apply(Action::FilterChar(c));
        }
        assert_eq!(app.selected, 0);
        assert_eq!(names(&app), ["Jobs2", "jobs"]);
        app.apply(Action::FilterCancel);
        assert_eq!((app.mode, app.filter.as_str()), (Mode::Normal, ""));
        assert_eq!(names(&app).len(), 3);
    }

    #[test]
    fn the_selection_stays_on_the_list() {
        let mut app = app_with(&[("a", 0), ("b", 0), ("c", 0)]);
        app.apply(Action::Up);
        assert_eq!(app.selected, 0);
        app.apply(Action::Bottom);
        app.apply(Action::Down);
        assert_eq!(app.selected, 2);
        // Queues go away: the selection follows the shorter list.
        app.ingest(vec![("q.a".into(), Ok(served("a", 0)))]);
        assert_eq!(app.selected, 0);
    }

    #[test]
    fn esc_closes_the_help_before_leaving_the_detail() {
        let mut app = app_with(&[("a", 0)]);
        app.apply(Action::Open);
        assert_eq!(app.detail().map(|r| r.id.as_str()), Some("q.a"));
        app.apply(Action::Help);
        app.apply(Action::Back);
        assert!(!app.help && app.detail().is_some());
        app.apply(Action::Back);
        assert_eq!(app.view, View::List);
    }

    #[test]
    fn stuck_queues_come_first_in_every_sort() {
        let mut app = new_app();
        let mut stalled = served("b-stalled", 5);
        stalled.last_get_age = Some(Duration::from_secs(60));
        stalled.oldest_age = Some(Duration::from_secs(60));
        let mut orphaned = served("c-orphaned", 1);
        orphaned.processes.clear();
        let round = vec![
            ("q.a-big".to_string(), Ok(served("a-big", 100))),
            ("q.b-stalled".to_string(), Ok(stalled)),
            ("q.c-orphaned".to_string(), Ok(orphaned)),
            ("q.d-empty".to_string(), Ok(served("d-empty", 0))),
            ("q.e-bad".to_string(), Err("bad magic".to_string())),
        ];
        app.ingest(round);
        let health: Vec<_> = app.visible().iter().map(|r| r.health).collect();
        assert_eq!(
            health,
            [
                Some(Health::NoConsumer),
                Some(Health::Stalled),
                Some(Health::Ok),
                Some(Health::Ok),
                None
            ]
        );
        assert_eq!(
            names(&app),
            ["c-orphaned", "b-stalled", "a-big", "d-empty", "q.e-bad"]
        );
        // By size, largest first, and reversed: the stuck ones stay on top.
        app.apply(Action::NextSort);
        app.apply(Action::NextSort);
        assert_eq!(app.sort, SortKey::Size);
        assert_eq!(
            names(&app),
            ["c-orphaned", "b-stalled", "a-big", "d-empty", "q.e-bad"]
        );
        app.apply(Action::ReverseSort);
        assert_eq!(
            names(&app),
            ["c-orphaned", "b-stalled", "d-empty", "q.e-bad", "a-big"]
        );
        assert!(app.visible()[1].is_stuck() && !app.visible()[2].is_stuck());
    }

    #[test]
    fn one_window_across_refreshes_sees_a_queue_lag() {
        let mut app = new_app();
        // Every second 100 items got and 20 more waiting, the oldest a second older.
        for t in 0..8u64 {
            let mut s = served("lag", 100 + 20 * t);
            s.gets = 1000 + 100 * t;
            s.puts = s.gets + s.size;
            s.oldest_age = Some(Duration::from_secs(2 + t));
            s.taken_ns = (t + 1) * 1_000_000_000;
            app.ingest(vec![("q.lag".into(), Ok(s))]);
        }
        let row = app.visible()[0];
        assert_eq!(row.health, Some(Health::Lagging));
        assert_eq!(row.history.oldest_ms.back(), Some(&9000));
        assert_eq!(row.history.oldest_ms.len(), 8);
        // The queue goes away, and comes back as a new one: judged afresh.
        app.ingest(vec![]);
        app.ingest(vec![("q.lag".into(), Ok(served("lag", 0)))]);
        assert_eq!(app.visible()[0].health, Some(Health::Ok));
    }

    #[test]
    fn refreshes_date_an_old_item_finer_than_the_timeline() {
        let mut app = new_app();
        // Item 5 is put between the first two refreshes, and one more each second after;
        // the stats header's timeline only knows it is at most 40 s old.
        for t in 0..20u64 {
            let mut s = served("old", t);
            s.left = 5;
            s.puts = 5 + t;
            s.oldest_age = (t > 0).then_some(Duration::from_secs(40));
            s.taken_ns = t * 1_000_000_000;
            app.ingest(vec![("q.old".into(), Ok(s))]);
        }
        let row = app.visible()[0];
        let age = row.snap.as_ref().and_then(|s| s.oldest_age);
        assert_eq!(age, Some(Duration::from_secs(19)));
        assert_eq!(row.history.oldest_ms.back(), Some(&19000));
    }

    #[test]
    fn the_interval_stays_between_100ms_and_10s() {
        let mut app = app_with(&[]);
        for _ in 0..10 {
            app.apply(Action::Faster);
        }
        assert_eq!(app.interval, Duration::from_millis(100));
        for _ in 0..10 {
            app.apply(Action::Slower);
        }
        assert_eq!(app.interval, Duration::from_secs(10));
    }
}
