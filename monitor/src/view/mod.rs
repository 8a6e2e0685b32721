//! Drawing: the whole screen as a pure function of the [`App`] state.
//!
//! The header and the footer are drawn here; the body is one pane, [`list`] or [`detail`],
//! with [`help`] over it when asked for. Each pane is a `render(frame, area, &App)`. Every
//! string from shared memory goes through [`fmt::escape`] before it reaches the terminal.

mod detail;
mod help;
mod list;

use crate::app::App;
use crate::fmt::{self, escape};
use crate::input::Mode;
use crate::theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

/// Draws the whole screen: header, the list or the detail pane, footer, and the help.
pub fn render(f: &mut Frame, app: &App) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header(f, head, app);
    if app.detail().is_some() {
        detail::render(f, body, app);
    } else {
        list::render(f, body, app);
    }
    footer(f, foot, app);
    if app.help {
        help::render(f, f.area(), app);
    }
}

/// The title, how many queues are stuck (in red, if any), how many are in which state, the
/// directory, the refresh interval.
fn header(f: &mut Frame, area: Rect, app: &App) {
    let rows = app.visible();
    let live = rows.iter().filter(|r| r.state() == "live").count();
    let stale = rows.iter().filter(|r| r.state() == "stale").count();
    let unknown = rows.iter().filter(|r| r.state() == "unknown").count();
    let errors = rows.len() - live - stale - unknown;
    let unknown = if unknown > 0 {
        format!(", {unknown} unknown")
    } else {
        String::new()
    };
    let stuck = rows.iter().filter(|r| r.is_stuck()).count();
    let mut spans = vec![Span::styled(" mpqueue-top ", theme::TITLE)];
    if stuck > 0 {
        spans.push(Span::styled(format!(" {stuck} stuck "), theme::STUCK));
    }
    spans.push(Span::raw(format!(
        " {} queues: {live} live, {stale} stale{unknown}, {errors} unreadable · {} · every {}",
        rows.len(),
        escape(&app.dir.display().to_string()),
        fmt::duration(app.interval)
    )));
    if app.paused {
        spans.push(Span::styled("  PAUSED", theme::WARN));
    }
    if let Some(e) = &app.dir_error {
        spans.push(Span::styled(format!("  {}", escape(e)), theme::ERROR));
    }
    f.render_widget(Line::from(spans), area);
}

/// A notice if there is one, else the filter prompt while it is edited, else the keys of
/// this pane, the filter and the sort.
fn footer(f: &mut Frame, area: Rect, app: &App) {
    let line = if let Some(notice) = &app.notice {
        Line::from(Span::styled(format!(" {notice}"), theme::WARN))
    } else if app.mode == Mode::Filter {
        Line::from(vec![
            Span::styled(" filter: ", theme::KEY),
            Span::raw(format!("{}█", escape(&app.filter))),
        ])
    } else {
        let keys = if app.detail().is_some() {
            " Esc back · p pause · +/- interval · ? help · q quit"
        } else {
            " ↑↓ select · Enter detail · s/S sort · / filter · p pause · +/- interval · ? help · q quit"
        };
        let mut spans = vec![Span::styled(keys, theme::KEY)];
        if !app.filter.is_empty() {
            spans.push(Span::raw(format!("   filter: {}", escape(&app.filter))));
        }
        spans.push(Span::raw(format!(
            "   sort: {} {}",
            app.sort.label(),
            sort_mark(app.descending)
        )));
        Line::from(spans)
    };
    f.render_widget(line, area);
}

/// `▼` for a descending sort, `▲` for an ascending one.
fn sort_mark(descending: bool) -> &'static str {
    if descending { "▼" } else { "▲" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::View;
    use crate::input::Action;
    use mpqueue::layout_info::bucket_upper_ns;
    use mpqueue::observe::{
        Health, HealthRules, HistogramSnapshot, Liveness, ProcessSnapshot, Role, Snapshot,
    };
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;
    use std::path::PathBuf;
    use std::time::Duration;

    fn hist(buckets: &[(usize, u64)]) -> HistogramSnapshot {
        let mut h = HistogramSnapshot::default();
        for &(i, n) in buckets {
            h.buckets[i] = n;
            h.count += n;
            h.sum_ns += n * bucket_upper_ns(i) / 2;
        }
        h
    }

    fn proc_(
        pid: u32,
        role: Role,
        puts: u64,
        gets: u64,
        buffered: u64,
        alive: bool,
    ) -> ProcessSnapshot {
        let mut p = ProcessSnapshot::default();
        p.pid = pid;
        p.start_time = 1000 + u64::from(pid);
        p.alive = alive;
        p.liveness = if alive {
            Liveness::Alive
        } else {
            Liveness::Dead
        };
        p.role = role;
        p.heartbeat_age = Some(Duration::from_millis(u64::from(pid % 7) * 100));
        if puts > 0 {
            p.last_put_age = p.heartbeat_age;
        }
        if gets > 0 {
            p.last_get_age = p.heartbeat_age;
        }
        p.buffered_items = buffered;
        p.buffered_bytes = buffered * 72;
        p.puts = puts;
        p.gets = gets;
        p.full_events = 3;
        p.empty_events = 1;
        p
    }

    fn snap(
        name: &str,
        named: bool,
        maxsize: u64,
        puts: u64,
        gets: u64,
        t: u64,
        alive: bool,
    ) -> Snapshot {
        let mut s = Snapshot::default();
        s.name = name.into();
        s.id = if named {
            format!("q.{name}")
        } else {
            format!("a.100.5.{}", name.len())
        };
        s.named = named;
        s.maxsize = maxsize;
        s.size = puts - gets;
        s.puts = puts;
        s.gets = gets;
        s.bytes_put = puts * 72;
        s.bytes_got = gets * 72;
        s.full_events = puts / 100;
        s.empty_events = gets / 1000;
        s.get_timeouts = 2;
        s.lock_recoveries = 1;
        s.put_blocked = hist(&[(3, 40), (10, 5), (17, 1)]);
        s.get_blocked = hist(&[(0, 900), (5, 90), (12, 10)]);
        s.wait = hist(&[(15, 30), (18, 60), (19, 9), (21, 1)]);
        s.oldest_age = (s.size > 0).then(|| Duration::from_millis(1200));
        s.last_get_age = (gets > 0).then(|| Duration::from_millis(20));
        s.last_put_age = (puts > 0).then(|| Duration::from_millis(3));
        s.buffered_items = 12;
        s.processes = vec![
            proc_(4242, Role::Producer, puts, 0, 12, alive),
            proc_(4243, Role::Consumer, 0, gets, 0, alive),
            proc_(4250, Role::Idle, 0, 0, 0, false),
        ];
        s.created_by = 4242;
        s.ring_capacity = 1 << 20;
        s.alive = alive;
        s.taken_ns = t;
        s
    }

    /// A queue whose consumer is alive and has got nothing for 25 s: stalled.
    fn stuck(t: u64) -> Snapshot {
        let mut s = snap("stuck", true, 0, 500, 400, t, true);
        s.last_get_age = Some(Duration::from_secs(25));
        s.oldest_age = Some(Duration::from_secs(31));
        s
    }

    /// A queue whose only consumer died: no consumer.
    fn orphans(t: u64, k: u64) -> Snapshot {
        let mut s = snap("orphans", true, 1000, 300 * k, 200, t, true);
        s.processes[1].alive = false;
        s.processes[1].liveness = Liveness::Dead;
        s.oldest_age = Some(Duration::from_secs(9));
        s.last_get_age = Some(Duration::from_secs(8));
        s
    }

    fn fixture() -> App {
        let mut app = App::new(
            PathBuf::from("/dev/shm/mpqueue-test"),
            Duration::from_secs(1),
            HealthRules::default(),
        );
        let round = |t: u64, k: u64| {
            vec![
                ("q.stuck".to_string(), Ok(stuck(t))),
                ("q.orphans".to_string(), Ok(orphans(t, k))),
                (
                    "q.jobs".to_string(),
                    Ok(snap("jobs", true, 100, 1000 * k + 90, 1000 * k, t, true)),
                ),
                (
                    "a.100.5.7".to_string(),
                    Ok(snap("results", false, 0, 5000 * k, 4990 * k, t, true)),
                ),
                (
                    "q.old".to_string(),
                    Ok(snap("old", true, 10, 7, 7, t, false)),
                ),
                (
                    "q.bad".to_string(),
                    Err("corrupt or foreign segment /x/q.bad.stats: bad magic".to_string()),
                ),
                (
                    "q.evil".to_string(),
                    Ok(snap("evil\x1b[2J\nname", true, 0, 1, 0, t, true)),
                ),
            ]
        };
        app.ingest(round(1_000_000_000, 1));
        app.ingest(round(2_000_000_000, 2));
        app
    }

    fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| render(f, app)).unwrap();
        t
    }

    #[test]
    fn list_view() {
        insta::assert_snapshot!(draw(&fixture(), 130, 12).backend());
    }

    #[test]
    fn list_sorted_and_filtered() {
        let mut app = fixture();
        app.apply(Action::NextSort); // health, worst first
        app.apply(Action::NextSort); // size, descending
        let names: Vec<&str> = app.visible().iter().map(|r| r.name()).collect();
        // The stuck ones first, whatever the sort.
        assert_eq!(names[..3], ["orphans", "stuck", "jobs"]);
        app.apply(Action::StartFilter);
        for c in "re".chars() {
            app.apply(Action::FilterChar(c));
        }
        app.apply(Action::FilterDone);
        assert_eq!(app.visible().len(), 1);
        insta::assert_snapshot!(draw(&app, 130, 8).backend());
    }

    #[test]
    fn list_at_80_columns() {
        insta::assert_snapshot!(draw(&fixture(), 80, 12).backend());
    }

    /// The text of row `y` of the screen.
    fn line(t: &Terminal<TestBackend>, y: u16) -> String {
        let b = t.backend().buffer();
        (0..b.area.width).map(|x| b[(x, y)].symbol()).collect()
    }

    #[test]
    fn health_is_coloured_and_stuck_queues_come_first() {
        let app = fixture();
        let t = draw(&app, 130, 12);
        let b = t.backend().buffer();
        // The header counts the stuck queues, in red.
        let head = line(&t, 0);
        let at = head.find("2 stuck").unwrap();
        let x = head[..at].chars().count() as u16;
        assert_eq!(b[(x, 0)].fg, ratatui::style::Color::Red, "{head}");
        // Rows 3 and 4 (under the border and the column titles): the stuck queues, their
        // verdict in red; then the rest by name, ok in green, idle dimmed.
        let health_x = line(&t, 2).find("health").unwrap() as u16 - 2; // `│` is 3 bytes
        for (y, name, verdict, colour) in [
            (3, "orphans", "no_consumer", Color::Red),
            (4, "stuck", "stalled", Color::Red),
            (5, "evil", "ok", Color::Green),
            (7, "old", "idle", Color::DarkGray),
        ] {
            let l = line(&t, y);
            assert!(l[3..].starts_with(name), "{l}");
            assert!(l.contains(verdict), "{l}");
            assert_eq!(b[(health_x, y)].fg, colour, "{name}: {l}");
        }
        let verdicts: Vec<_> = app.visible().iter().map(|r| r.health).collect();
        assert_eq!(
            verdicts,
            [
                Some(Health::NoConsumer),
                Some(Health::Stalled),
                Some(Health::Ok),
                Some(Health::Ok),
                Some(Health::Idle),
                None,
                Some(Health::Ok),
            ]
        );
    }

    #[test]
    fn the_detail_view_says_why_a_queue_is_stuck() {
        let mut app = fixture();
        app.view = View::Detail("q.stuck".into());
        let t = draw(&app, 120, 36);
        let screen: String = (0..36).map(|y| line(&t, y) + "\n").collect();
        assert!(
            screen.contains(
                "health stalled   oldest item 31.0s   last get 25.0s ago   last put now   \
                 buffered 12   stall after 10.0s"
            ),
            "{screen}"
        );
        assert!(screen.contains("┌ oldest 31.0s"), "{screen}");
        assert!(screen.contains("┌ wait (time in queue)"), "{screen}");
    }

    /// A `JoinableQueue`'s detail has a line of its tasks, above the health; other
    /// queues' have none.
    #[test]
    fn the_detail_view_shows_a_joinable_queues_tasks() {
        let mut app = fixture();
        let mut pool = snap("pool", true, 0, 40, 28, 3_000_000_000, true);
        pool.unfinished = Some(12);
        pool.tasks_abandoned = 0;
        let mut round: Vec<_> = app
            .visible()
            .iter()
            .map(|r| (r.id.clone(), r.snap.clone().ok_or_else(String::new)))
            .collect();
        round.push(("q.pool".into(), Ok(pool)));
        app.ingest(round);
        app.view = View::Detail("q.pool".into());
        let t = draw(&app, 120, 36);
        let screen: Vec<String> = (0..36).map(|y| line(&t, y)).collect();
        let at = screen
            .iter()
            .position(|l| l.contains("unfinished 12 · abandoned 0"))
            .unwrap_or_else(|| panic!("{}", screen.join("\n")));
        assert!(screen[at - 1].contains("lost 0"), "{}", screen.join("\n"));
        assert!(screen[at + 1].contains("health "), "{}", screen.join("\n"));
        app.view = View::Detail("q.jobs".into());
        let t = draw(&app, 120, 36);
        assert!(
            (0..36).all(|y| !line(&t, y).contains("unfinished")),
            "a plain queue has no tasks"
        );
    }

    #[test]
    fn detail_view() {
        let mut app = fixture();
        app.view = View::Detail("q.jobs".into());
        insta::assert_snapshot!(draw(&app, 120, 36).backend());
    }

    #[test]
    fn help_overlay() {
        let mut app = fixture();
        app.apply(Action::Help);
        insta::assert_snapshot!(draw(&app, 100, 20).backend());
    }

    #[test]
    fn hostile_names_never_reach_the_terminal_raw() {
        // Wide enough for every column and the whole escaped name.
        let t = draw(&fixture(), 170, 12);
        let text: String = t
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(!text.contains('\x1b'));
        assert!(text.contains("evil\\u{1b}[2J\\u{a}name"), "{text}");
    }

    #[test]
    fn processes_that_cannot_be_told_are_unknown_not_dead() {
        let mut app = fixture();
        let mut s = snap("elsewhere", true, 0, 5, 5, 3_000_000_000, true);
        for p in &mut s.processes {
            p.liveness = Liveness::Unknown;
        }
        let mut round: Vec<_> = app
            .visible()
            .iter()
            .map(|r| (r.id.clone(), r.snap.clone().ok_or_else(String::new)))
            .collect();
        round.push(("q.elsewhere".into(), Ok(s)));
        app.ingest(round);
        let screen = |app: &App| -> String {
            draw(app, 130, 40)
                .backend()
                .buffer()
                .content()
                .iter()
                .map(|c| c.symbol())
                .collect()
        };
        let list = screen(&app);
        assert!(
            list.contains("5 live, 1 stale, 1 unknown, 1 unreadable"),
            "{list}"
        );
        app.view = View::Detail("q.elsewhere".into());
        let detail = screen(&app);
        assert!(
            detail.contains("unknown: no process known alive"),
            "{detail}"
        );
        assert!(
            detail.contains("unknown") && !detail.contains("dead"),
            "{detail}"
        );
    }

    #[test]
    fn a_notice_replaces_the_key_help() {
        let mut app = fixture();
        app.notice = Some("stopping the demo: waiting for 3 of its processes to finish…".into());
        let t = draw(&app, 130, 12);
        let bottom: String = (0..130)
            .map(|x| t.backend().buffer()[(x, 11)].symbol().to_string())
            .collect();
        assert!(
            bottom.starts_with(" stopping the demo: waiting for 3 of its processes"),
            "{bottom}"
        );
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let mut app = fixture();
        for (w, h) in [(1, 1), (10, 3), (40, 10)] {
            draw(&app, w, h);
            app.view = View::Detail("q.jobs".into());
            draw(&app, w, h);
            app.help = true;
            draw(&app, w, h);
            app.view = View::List;
        }
    }
}
