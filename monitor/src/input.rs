//! Keys to actions: turns a crossterm key event into an [`Action`], through small predicates.
//!
//! Key releases are dropped (terminals that report them would otherwise act twice); presses
//! and repeats count. Which keys mean what depends on the [`Mode`]: commands, or typing into
//! the name filter. This module knows nothing of the dashboard's state: `app` applies the
//! actions.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `q`, Ctrl-C.
    Quit,
    /// Up arrow, `k`.
    Up,
    /// Down arrow, `j`.
    Down,
    /// Home, `g`.
    Top,
    /// End, `G`.
    Bottom,
    /// Enter: show the selected queue.
    Open,
    /// Esc: back to the list, or close the help.
    Back,
    /// `s`: sort by the next column.
    NextSort,
    /// `S`: reverse the sort.
    ReverseSort,
    /// `/`: edit the name filter.
    StartFilter,
    /// A character typed into the filter.
    FilterChar(char),
    /// Backspace in the filter.
    FilterBackspace,
    /// Enter in the filter: keep it.
    FilterDone,
    /// Esc in the filter: clear it.
    FilterCancel,
    /// `p`: pause or resume refreshing.
    Pause,
    /// `+` (or `=`): refresh twice as often.
    Faster,
    /// `-`: refresh half as often.
    Slower,
    /// `?` (or `h`): toggle the help overlay.
    Help,
}

/// How keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keys are commands.
    Normal,
    /// Keys edit the name filter.
    Filter,
}

/// The action for `key` in `mode`, if any.
pub fn action(key: KeyEvent, mode: Mode) -> Option<Action> {
    if should_ignore(&key) {
        return None;
    }
    if is_interrupt(&key) {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Normal => command(key.code),
        Mode::Filter => filter_edit(key.code),
    }
}

/// Key releases: only presses (and repeats) act.
fn should_ignore(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Release
}

/// Ctrl-C, which quits in every mode.
fn is_interrupt(key: &KeyEvent) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c')
}

/// A key while typing into the filter: the text, or how the editing ends.
fn filter_edit(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Enter => Some(Action::FilterDone),
        KeyCode::Esc => Some(Action::FilterCancel),
        KeyCode::Backspace => Some(Action::FilterBackspace),
        KeyCode::Char(c) if !c.is_control() => Some(Action::FilterChar(c)),
        _ => None,
    }
}

/// A key as a command.
fn command(code: KeyCode) -> Option<Action> {
    Some(match code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Enter => Action::Open,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('s') => Action::NextSort,
        KeyCode::Char('S') => Action::ReverseSort,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('p') => Action::Pause,
        KeyCode::Char('+' | '=') => Action::Faster,
        KeyCode::Char('-') => Action::Slower,
        KeyCode::Char('?' | 'h') => Action::Help,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions() {
        assert_eq!(
            action(key(KeyCode::Char('q')), Mode::Normal),
            Some(Action::Quit)
        );
        assert_eq!(
            action(
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Mode::Filter
            ),
            Some(Action::Quit)
        );
        assert_eq!(
            action(key(KeyCode::Char('q')), Mode::Filter),
            Some(Action::FilterChar('q'))
        );
        assert_eq!(
            action(key(KeyCode::Esc), Mode::Filter),
            Some(Action::FilterCancel)
        );
        assert_eq!(
            action(key(KeyCode::Char('j')), Mode::Normal),
            Some(Action::Down)
        );
        assert_eq!(action(key(KeyCode::Char('x')), Mode::Normal), None);
    }

    #[test]
    fn releases_are_dropped_repeats_are_not() {
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(action(release, Mode::Normal), None);
        let mut repeat = key(KeyCode::Down);
        repeat.kind = KeyEventKind::Repeat;
        assert_eq!(action(repeat, Mode::Normal), Some(Action::Down));
    }
}
