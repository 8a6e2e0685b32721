//! Colours and styles of the dashboard.

use mpqueue::observe::Health;
use ratatui::style::{Color, Modifier, Style};

/// The app name in the header.
pub const TITLE: Style = Style::new()
    .fg(Color::Black)
    .bg(Color::Cyan)
    .add_modifier(Modifier::BOLD);
/// Table headers.
pub const HEADER: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
/// The selected row.
pub const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);
/// Stale queues, dead processes, hints.
pub const DIM: Style = Style::new().fg(Color::DarkGray);
/// Unreadable entries and errors.
pub const ERROR: Style = Style::new().fg(Color::Red);
/// Warnings (paused).
pub const WARN: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
/// Key names.
pub const KEY: Style = Style::new().fg(Color::Cyan);
/// Sparklines.
pub const SPARK: Style = Style::new().fg(Color::Green);
/// Histogram bars.
pub const BAR: Style = Style::new().fg(Color::Magenta);
/// A stuck queue's health (`no_consumer`, `stalled`): someone should look.
pub const STUCK: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
/// A lagging queue's health.
pub const LAGGING: Style = Style::new().fg(Color::Yellow);
/// A healthy queue's health.
pub const HEALTHY: Style = Style::new().fg(Color::Green);

/// How a health verdict is coloured: stuck red, lagging yellow, idle dim, ok green.
pub fn health(h: Health) -> Style {
    match h {
        Health::NoConsumer | Health::Stalled => STUCK,
        Health::Lagging => LAGGING,
        Health::Idle => DIM,
        _ => HEALTHY,
    }
}
