//! The help overlay: the keys, in a box over the middle of the screen.

use crate::app::App;
use crate::theme;
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

/// Draws the help box centred in `area` (the same whatever the state).
pub fn render(f: &mut Frame, area: Rect, _app: &App) {
    let w = 62.min(area.width);
    let h = (KEYS.len() as u16 + 4).min(area.height);
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
    lines.push(Line::from(" Stale queues (no live process) are dimmed.").style(theme::DIM));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" help ")),
        r,
    );
}
