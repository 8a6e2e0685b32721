//! The help overlay: the keys and the health verdicts, in a box over the middle of the
//! screen.

use crate::app::App;
use crate::{fmt, theme};
use mpqueue::observe::Health;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

/// Each key and what it does.
const KEYS: &[(&str, &str)] = &[
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

/// What each health verdict means, worst first (as in `Health::ALL`).
fn verdict(h: Health, app: &App) -> String {
    match h {
        Health::NoConsumer => "items wait, no live process takes them".into(),
        Health::Stalled => format!(
            "items wait, nothing got for {} (--stall-after)",
            fmt::duration(app.rules().stall_after)
        ),
        Health::Lagging => "items got, but the backlog or oldest age grows".into(),
        Health::Idle => "empty, nothing moving".into(),
        _ => "items move".into(),
    }
}

/// Draws the help box centred in `area`: the keys, and what the health column says.
pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let w = 66.min(area.width);
    let h = (KEYS.len() as u16 + Health::ALL.len() as u16 + 4).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!(" {k:<11}"), theme::KEY),
                Span::raw(*v),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.extend(Health::ALL.iter().map(|&h| {
        Line::from(vec![
            Span::styled(format!(" {:<12}", h.as_str()), theme::health(h)),
            Span::raw(verdict(h, app)),
        ])
    }));
    lines.push(
        Line::from(" Stuck queues come first in every sort; stale ones are dimmed.")
            .style(theme::DIM),
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" help ")),
        r,
    );
}
