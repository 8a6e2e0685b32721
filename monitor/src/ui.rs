//! Drawing: pure functions of the `App` state. Every string from shared memory goes
//! through `fmt::escape` before it reaches the terminal.

use crate::app::{App, Mode, QueueRow, SortKey};
use crate::fmt::{self, escape};
use crate::theme;
use mpqueue::layout_info::{HIST_BUCKETS, bucket_upper_ns};
use mpqueue::observe::{HistogramSnapshot, Snapshot};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState,
};
use std::time::Duration;
/// Draws the whole screen.
pub fn render(f: &mut Frame, app: &App) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header(f, head, app);
    match app.detail() {
        Some(row) => detail(f, body, row),
        None => list(f, body, app),
    }
    footer(f, foot, app);
    if app.help {
        help(f, f.area());
    }
}

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
    let mut spans = vec![
        Span::styled(" mpqueue-top ", theme::TITLE),
        Span::raw(format!(
            " {} queues: {live} live, {stale} stale{unknown}, {errors} unreadable · {} · every {}",
            rows.len(),
            escape(&app.dir.display().to_string()),
            fmt::duration(app.interval)
        )),
    ];
    if app.paused {
        spans.push(Span::styled("  PAUSED", theme::WARN));
    }
    if let Some(e) = &app.dir_error {
        spans.push(Span::styled(format!("  {}", escape(e)), theme::ERROR));
    }
    f.render_widget(Line::from(spans), area);
}

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
            "   sort: {}{}",
            app.sort.label(),
            if app.descending { " ▼" } else { " ▲" }
        )));
        Line::from(spans)
    };
    f.render_widget(line, area);
}

fn p50_p99(h: &HistogramSnapshot) -> String {
    match (h.quantile(0.5), h.quantile(0.99)) {
        (Some(a), Some(b)) => format!("{}/{}", fmt::duration(a), fmt::duration(b)),
        _ => "-".into(),
    }
}

fn list(f: &mut Frame, area: Rect, app: &App) {
    let titles = [
        ("name", Some(SortKey::Name)),
        ("kind", None),
        ("size/max", Some(SortKey::Size)),
        ("fill", None),
        ("put/s", Some(SortKey::PutRate)),
        ("get/s", Some(SortKey::GetRate)),
        ("bytes/s", Some(SortKey::ByteRate)),
        ("full/s", Some(SortKey::FullRate)),
        ("empty/s", Some(SortKey::EmptyRate)),
        ("put p50/99", Some(SortKey::PutP99)),
        ("get p50/99", Some(SortKey::GetP99)),
        ("P/C", Some(SortKey::Processes)),
        ("state", Some(SortKey::State)),
    ];
    let head = Row::new(titles.iter().map(|(t, k)| {
        let mark = match k {
            Some(k) if *k == app.sort => {
                if app.descending {
                    "▼"
                } else {
                    "▲"
                }
            }
            _ => "",
        };
        Cell::from(format!("{t}{mark}"))
    }))
    .style(theme::HEADER);
    let rows: Vec<Row> = app.visible().into_iter().map(list_row).collect();
    let widths = [
        Constraint::Min(10),
        Constraint::Length(5),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(5),
        Constraint::Length(7),
    ];
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(head)
        .row_highlight_style(theme::SELECTED)
        .block(Block::bordered().title(" queues "));
    let mut state = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, area, &mut state);
    if empty {
        let msg = if app.filter.is_empty() {
            "no queues yet (start some, or run `mpqueue-top --demo`)"
        } else {
            "no queue matches the filter"
        };
        let inner = Rect {
            y: area.y + 2,
            height: 1,
            x: area.x + 2,
            width: area.width.saturating_sub(4),
        };
        f.render_widget(Paragraph::new(msg).style(theme::DIM), inner);
    }
}

fn list_row(r: &QueueRow) -> Row<'static> {
    let name = escape(r.name());
    let Some(s) = &r.snap else {
        // Unreadable: the reason is in the detail view (Enter).
        let mut cells = vec![Cell::from(name), Cell::from("?"), Cell::from("unreadable")];
        cells.extend((0..9).map(|_| Cell::from("")));
        cells.push(Cell::from("error"));
        return Row::new(cells).style(theme::ERROR);
    };
    let max = if s.maxsize == 0 {
        "∞".to_string()
    } else {
        fmt::count(s.maxsize as f64)
    };
    let cells = vec![
        name,
        if s.named { "named" } else { "anon" }.to_string(),
        format!("{}/{max}", fmt::count(s.size as f64)),
        fmt::fill_bar(s.size, s.maxsize, 8),
        fmt::count(r.rates.puts),
        fmt::count(r.rates.gets),
        fmt::bytes(r.rates.bytes_put + r.rates.bytes_got),
        fmt::count(r.rates.full_events),
        fmt::count(r.rates.empty_events),
        p50_p99(&s.put_blocked),
        p50_p99(&s.get_blocked),
        format!("{}/{}", s.producers(), s.consumers()),
        r.state().to_string(),
    ];
    let style = if s.alive {
        Style::default()
    } else {
        theme::DIM
    };
    Row::new(cells.into_iter().map(Cell::from)).style(style)
}

fn detail(f: &mut Frame, area: Rect, r: &QueueRow) {
    let title = format!(" {} ", escape(r.name()));
    let Some(s) = &r.snap else {
        let msg = format!(
            "cannot read this queue: {}",
            r.error.as_deref().map(escape).unwrap_or_default()
        );
        f.render_widget(
            Paragraph::new(msg)
                .style(theme::ERROR)
                .block(Block::bordered().title(title)),
            area,
        );
        return;
    };
    let [info, sparks, hists, procs] = Layout::vertical([
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(10),
        Constraint::Min(4),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(info_lines(s)).block(Block::bordered().title(title)),
        info,
    );

    let [a, b, c] = Layout::horizontal([Constraint::Ratio(1, 3); 3]).areas(sparks);
    for (area, label, data, now) in [
        (a, "size", &r.history.size, fmt::count(s.size as f64)),
        (b, "put/s", &r.history.puts, fmt::count(r.rates.puts)),
        (c, "get/s", &r.history.gets, fmt::count(r.rates.gets)),
    ] {
        let width = area.width.saturating_sub(2) as usize;
        let recent: Vec<u64> = data.iter().rev().take(width).rev().copied().collect();
        f.render_widget(
            Sparkline::default()
                .data(&recent)
                .style(theme::SPARK)
                .block(Block::bordered().title(format!(" {label} {now} "))),
            area,
        );
    }

    let [hp, hg] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(hists);
    histogram(f, hp, "put blocked", &s.put_blocked);
    histogram(f, hg, "get blocked", &s.get_blocked);
    processes(f, procs, s);
}

fn info_lines(s: &Snapshot) -> Vec<Line<'static>> {
    let max = if s.maxsize == 0 {
        "unbounded".to_string()
    } else {
        s.maxsize.to_string()
    };
    vec![
        Line::from(format!(
            "{} · id {} · created by pid {} · ring {} · {}",
            if s.named { "named" } else { "anonymous" },
            escape(&s.id),
            s.created_by,
            fmt::bytes(s.ring_capacity as f64),
            match fmt::queue_state(s) {
                "live" => "live",
                "stale" => "stale: every attached process is dead",
                _ => "unknown: no process known alive (another pid namespace, or /proc unreadable)",
            }
        )),
        Line::from(format!(
            "size {} / {max}   puts {}   gets {}   bytes in {}   out {}",
            s.size,
            s.puts,
            s.gets,
            fmt::bytes(s.bytes_put as f64),
            fmt::bytes(s.bytes_got as f64)
        )),
        Line::from(format!(
            "full events {}   empty events {}   timeouts put {} get {}   decode errors {}",
            s.full_events, s.empty_events, s.put_timeouts, s.get_timeouts, s.decode_errors
        )),
        Line::from(format!(
            "lost {}   frames discarded {}   lock recoveries {}",
            s.lost, s.frames_discarded, s.lock_recoveries
        )),
    ]
}

/// Compact label of bucket `i`'s upper bound: `8µ`, `131µ`, `4m`, `17s`, `∞`.
fn bucket_label(i: usize) -> String {
    if i + 1 >= HIST_BUCKETS {
        return "∞".into();
    }
    let ns = bucket_upper_ns(i);
    match ns {
        n if n < 1_000_000 => format!("{}µ", n / 1000),
        n if n < 1_000_000_000 => format!("{}m", n / 1_000_000),
        n => format!("{}s", n / 1_000_000_000),
    }
}

fn histogram(f: &mut Frame, area: Rect, label: &str, h: &HistogramSnapshot) {
    let q = |p: f64| h.quantile(p).map_or("-".to_string(), fmt::duration);
    let title = format!(
        " {label}: n={} p50={} p90={} p99={} ",
        h.count,
        q(0.5),
        q(0.9),
        q(0.99)
    );
    let block = Block::bordered().title(title);
    let nonzero: Vec<usize> = (0..HIST_BUCKETS).filter(|&i| h.buckets[i] > 0).collect();
    let (Some(&lo), Some(&hi)) = (nonzero.first(), nonzero.last()) else {
        f.render_widget(
            Paragraph::new("no blocked calls yet")
                .style(theme::DIM)
                .block(block),
            area,
        );
        return;
    };
    // Show the occupied buckets (at least 8); when they do not fit at 5 columns a bar,
    // merge neighbours so that every count stays visible.
    let (mut start, mut end) = (lo, hi);
    while end - start + 1 < 8 {
        if end + 1 < HIST_BUCKETS {
            end += 1;
        } else if start > 0 {
            start -= 1;
        } else {
            break;
        }
    }
    let fit = usize::from(area.width.saturating_sub(2) / 5).max(1);
    let group = (end - start + 1).div_ceil(fit);
    let bars: Vec<Bar> = (start..=end)
        .step_by(group)
        .map(|i| {
            let last = (i + group - 1).min(end);
            let n: u64 = h.buckets[i..=last].iter().sum();
            Bar::default()
                .value(n)
                .label(bucket_label(last))
                .text_value(fmt::count(n as f64))
        })
        .collect();
    f.render_widget(
        BarChart::default()
            .data(BarGroup::default().bars(&bars))
            .bar_width(4)
            .bar_gap(1)
            .bar_style(theme::BAR)
            .block(block),
        area,
    );
}

fn processes(f: &mut Frame, area: Rect, s: &Snapshot) {
    let head = Row::new([
        "pid",
        "role",
        "buffered",
        "buf bytes",
        "puts",
        "gets",
        "full",
        "empty",
        "heartbeat",
        "alive",
    ])
    .style(theme::HEADER);
    // Working processes first, idle (attached only) last.
    let mut procs: Vec<_> = s.processes.iter().collect();
    procs.sort_by_key(|p| (p.role == mpqueue::observe::Role::Idle, !p.alive, p.pid));
    let rows = procs.into_iter().map(|p| {
        let style = if p.alive {
            Style::default()
        } else {
            theme::DIM
        };
        Row::new([
            p.pid.to_string(),
            p.role.as_str().to_string(),
            p.buffered_items.to_string(),
            fmt::bytes(p.buffered_bytes as f64),
            p.puts.to_string(),
            p.gets.to_string(),
            p.full_events.to_string(),
            p.empty_events.to_string(),
            p.heartbeat_age.map_or("-".into(), |d| {
                if d < Duration::from_millis(5) {
                    "now".into()
                } else {
                    format!("{} ago", fmt::duration(d))
                }
            }),
            fmt::liveness(p.liveness).to_string(),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(11),
        Constraint::Length(7),
    ];
    let title = format!(" processes: {} attached ", s.processes.len());
    f.render_widget(
        Table::new(rows, widths)
            .header(head)
            .block(Block::bordered().title(title)),
        area,
    );
}

const HELP: &[(&str, &str)] = &[
    ("↑/k ↓/j", "select a queue"),
    ("g / G", "first / last queue"),
    ("Enter", "queue detail: history, histograms, processes"),
    ("Esc", "back to the list / close this help"),
    ("s / S", "sort by the next column / reverse the order"),
    ("/", "filter by name (Enter keeps it, Esc clears it)"),
    ("p", "pause or resume refreshing"),
    ("+ / -", "refresh twice as often / half as often"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
];

fn help(f: &mut Frame, area: Rect) {
    let w = 62.min(area.width);
    let h = (HELP.len() as u16 + 4).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!(" {k:<11}"), theme::KEY),
                Span::raw(*v),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(" Stale queues (no live process) are dimmed.").style(theme::DIM));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" help ")),
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Action;
    use mpqueue::observe::{Liveness, ProcessSnapshot, Role};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use std::path::PathBuf;

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

    fn fixture() -> App {
        let mut app = App::new(
            PathBuf::from("/dev/shm/mpqueue-test"),
            Duration::from_secs(1),
        );
        let round = |t: u64, k: u64| {
            vec![
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
        app.apply(Action::NextSort); // size, descending
        assert_eq!(app.visible()[0].name(), "jobs");
        app.apply(Action::StartFilter);
        for c in "re".chars() {
            app.apply(Action::FilterChar(c));
        }
        app.apply(Action::FilterDone);
        assert_eq!(app.visible().len(), 1);
        insta::assert_snapshot!(draw(&app, 130, 8).backend());
    }

    #[test]
    fn detail_view() {
        let mut app = fixture();
        app.apply(Action::Open); // first row by name: "bad"? no: sorted by name → "bad" row id q.bad
        app.view = crate::app::View::Detail("q.jobs".into());
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
        let t = draw(&fixture(), 130, 12);
        let text: String = t
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(!text.contains('\x1b'));
        assert!(text.contains("evil\\u{1b}[2J\\u{a}name"));
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
            list.contains("3 live, 1 stale, 1 unknown, 1 unreadable"),
            "{list}"
        );
        app.view = crate::app::View::Detail("q.elsewhere".into());
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
            app.view = crate::app::View::Detail("q.jobs".into());
            draw(&app, w, h);
            app.help = true;
            draw(&app, w, h);
            app.view = crate::app::View::List;
        }
    }
}
