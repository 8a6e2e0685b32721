//! The detail pane: one queue's counters (a `JoinableQueue`'s tasks too) and health,
//! history sparklines (the oldest item's age among them), the time-in-queue and
//! blocked-time histograms, and the attached processes.

use crate::app::{App, QueueRow};
use crate::fmt::{self, escape};
use crate::theme;
use mpqueue::layout_info::{HIST_BUCKETS, bucket_upper_ns};
use mpqueue::observe::{Health, HistogramSnapshot, ProcessSnapshot, Role, Snapshot};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Paragraph, Row, Sparkline, Table};
use std::time::Duration;

/// Draws the queue `app.detail()` (nothing if there is none), or why it cannot be read.
pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let Some(r) = app.detail() else { return };
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
    let mut lines = info_lines(s);
    lines.push(health_line(r.health, s, app));
    // The lines and the border.
    let info_height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let [info, sparks, hists, procs] = Layout::vertical([
        Constraint::Length(info_height),
        Constraint::Length(5),
        Constraint::Length(10),
        Constraint::Min(4),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        info,
    );
    sparklines(f, sparks, r, s);
    let [hw, hp, hg] = Layout::horizontal([Constraint::Ratio(1, 3); 3]).areas(hists);
    histogram(
        f,
        hw,
        "wait (time in queue)",
        &s.wait,
        "no item measured yet (every 16th is)",
    );
    histogram(f, hp, "put blocked", &s.put_blocked, "no blocked calls yet");
    histogram(f, hg, "get blocked", &s.get_blocked, "no blocked calls yet");
    processes(f, procs, s);
}

/// The verdict in its colour, and what it is judged from: the oldest item's age, the last
/// get and put, the items in feeder buffers, the stall threshold.
fn health_line(health: Option<Health>, s: &Snapshot, app: &App) -> Line<'static> {
    let when = |d: Option<Duration>| d.map_or("never".to_string(), |d| ago(Some(d)));
    let verdict = health.map_or("?", Health::as_str);
    let style = health.map_or(Style::new(), theme::health);
    Line::from(vec![
        Span::raw("health "),
        Span::styled(verdict, style),
        Span::raw(format!(
            "   oldest item {}   last get {}   last put {}   buffered {}   stall after {}",
            s.oldest_age.map_or("-".to_string(), fmt::duration),
            when(s.last_get_age),
            when(s.last_put_age),
            s.buffered_items,
            fmt::duration(app.rules().stall_after),
        )),
    ])
}

/// Kind, id, creator, ring, state, every counter, and a `JoinableQueue`'s tasks.
fn info_lines(s: &Snapshot) -> Vec<Line<'static>> {
    let max = if s.maxsize == 0 {
        "unbounded".to_string()
    } else {
        s.maxsize.to_string()
    };
    let mut lines = vec![
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
    ];
    if let Some(unfinished) = s.unfinished {
        lines.push(Line::from(format!(
            "unfinished {unfinished} · abandoned {}",
            s.tasks_abandoned
        )));
    }
    lines
}

/// Size, puts per second, gets per second and the oldest item's age over the last
/// refreshes, as wide as fits.
fn sparklines(f: &mut Frame, area: Rect, r: &QueueRow, s: &Snapshot) {
    let [a, b, c, d] = Layout::horizontal([Constraint::Ratio(1, 4); 4]).areas(area);
    let oldest = s.oldest_age.map_or("-".to_string(), fmt::duration);
    for (area, label, data, now) in [
        (a, "size", &r.history.size, fmt::count(s.size as f64)),
        (b, "put/s", &r.history.puts, fmt::count(r.rates.puts)),
        (c, "get/s", &r.history.gets, fmt::count(r.rates.gets)),
        (d, "oldest", &r.history.oldest_ms, oldest),
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

/// A histogram as bars under a line with its count and percentiles; `empty` says why
/// there are none.
fn histogram(f: &mut Frame, area: Rect, label: &str, h: &HistogramSnapshot, empty: &str) {
    let q = |p: f64| h.quantile(p).map_or("-".to_string(), fmt::duration);
    let block = Block::bordered().title(format!(" {label} "));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [stats, chart] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let nonzero: Vec<usize> = (0..HIST_BUCKETS).filter(|&i| h.buckets[i] > 0).collect();
    let (Some(&lo), Some(&hi)) = (nonzero.first(), nonzero.last()) else {
        f.render_widget(Paragraph::new(empty).style(theme::DIM), inner);
        return;
    };
    let line = format!(
        "n={} p50={} p90={} p99={}",
        fmt::count(h.count as f64),
        q(0.5),
        q(0.9),
        q(0.99)
    );
    f.render_widget(Paragraph::new(line), stats);
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
    let fit = usize::from(chart.width / 5).max(1);
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
            .bar_style(theme::BAR),
        chart,
    );
}

/// One column of the process table.
struct ProcessColumn {
    header: &'static str,
    width: u16,
    cell: fn(&ProcessSnapshot) -> String,
}

impl ProcessColumn {
    const fn new(header: &'static str, width: u16, cell: fn(&ProcessSnapshot) -> String) -> Self {
        ProcessColumn {
            header,
            width,
            cell,
        }
    }
}

/// The process table's columns, left to right.
const PROCESS_COLUMNS: [ProcessColumn; 12] = [
    ProcessColumn::new("pid", 8, |p| p.pid.to_string()),
    ProcessColumn::new("role", 8, |p| p.role.as_str().to_string()),
    ProcessColumn::new("buffered", 8, |p| p.buffered_items.to_string()),
    ProcessColumn::new("buf bytes", 9, |p| fmt::bytes(p.buffered_bytes as f64)),
    ProcessColumn::new("puts", 10, |p| p.puts.to_string()),
    ProcessColumn::new("gets", 10, |p| p.gets.to_string()),
    ProcessColumn::new("full", 7, |p| p.full_events.to_string()),
    ProcessColumn::new("empty", 7, |p| p.empty_events.to_string()),
    ProcessColumn::new("last put", 9, |p| ago(p.last_put_age)),
    ProcessColumn::new("last get", 9, |p| ago(p.last_get_age)),
    ProcessColumn::new("heartbeat", 9, |p| ago(p.heartbeat_age)),
    ProcessColumn::new("alive", 7, |p| fmt::liveness(p.liveness).to_string()),
];

/// How long ago something happened: `now` (under 5 ms), `12ms ago`; `-` if it never did.
fn ago(age: Option<Duration>) -> String {
    age.map_or("-".into(), |d| {
        if d < Duration::from_millis(5) {
            "now".into()
        } else {
            format!("{} ago", fmt::duration(d))
        }
    })
}

/// The attached processes: working ones first, idle (attached only) last; dead ones dimmed.
fn processes(f: &mut Frame, area: Rect, s: &Snapshot) {
    let head = Row::new(PROCESS_COLUMNS.iter().map(|c| c.header)).style(theme::HEADER);
    let mut procs: Vec<_> = s.processes.iter().collect();
    procs.sort_by_key(|p| (p.role == Role::Idle, !p.alive, p.pid));
    let rows = procs.into_iter().map(|p| {
        let style = if p.alive {
            Style::default()
        } else {
            theme::DIM
        };
        Row::new(PROCESS_COLUMNS.iter().map(|c| (c.cell)(p))).style(style)
    });
    let widths = PROCESS_COLUMNS.iter().map(|c| Constraint::Length(c.width));
    let title = format!(" processes: {} attached ", s.processes.len());
    f.render_widget(
        Table::new(rows, widths)
            .header(head)
            .block(Block::bordered().title(title)),
        area,
    );
}
