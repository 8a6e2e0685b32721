//! The list pane: every queue, one row each, drawn from one column table ([`COLUMNS`]).

use super::sort_mark;
use crate::app::{App, QueueRow, SortKey};
use crate::fmt::{self, escape};
use crate::theme;
use mpqueue::observe::{HistogramSnapshot, Snapshot};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

/// Cells of the `fill` bar.
const FILL_WIDTH: u16 = 8;

/// One column of the list: its title, width, sort key and cell text, in one place.
struct Column {
    /// Title in the header row; the sort mark (▲/▼) follows it when it is sorted.
    header: &'static str,
    /// Width on screen.
    width: Constraint,
    /// What `s` sorts by when it reaches this column; `None`: not sortable.
    sort: Option<SortKey>,
    /// The cell's text.
    cell: CellText,
}

/// How a column gets a row's text.
enum CellText {
    /// From the row, whether or not its queue could be read.
    Row(fn(&QueueRow) -> String),
    /// From the queue's snapshot; a row that could not be read shows the fixed text.
    Snapshot(fn(&QueueRow, &Snapshot) -> String, &'static str),
}

impl Column {
    const fn row(
        header: &'static str,
        width: Constraint,
        sort: Option<SortKey>,
        cell: fn(&QueueRow) -> String,
    ) -> Self {
        Column {
            header,
            width,
            sort,
            cell: CellText::Row(cell),
        }
    }

    const fn snapshot(
        header: &'static str,
        width: Constraint,
        sort: Option<SortKey>,
        unreadable: &'static str,
        cell: fn(&QueueRow, &Snapshot) -> String,
    ) -> Self {
        Column {
            header,
            width,
            sort,
            cell: CellText::Snapshot(cell, unreadable),
        }
    }

    fn text(&self, r: &QueueRow) -> String {
        match (&self.cell, &r.snap) {
            (CellText::Row(f), _) => f(r),
            (CellText::Snapshot(f, _), Some(s)) => f(r, s),
            (CellText::Snapshot(_, unreadable), None) => (*unreadable).to_string(),
        }
    }
}

/// The list's columns, left to right. An unreadable queue shows its name, `?`,
/// `unreadable` and `error` (the reason is in the detail view).
const COLUMNS: [Column; 13] = [
    Column::row("name", Constraint::Min(10), Some(SortKey::Name), |r| {
        escape(r.name())
    }),
    Column::snapshot("kind", Constraint::Length(5), None, "?", |_, s| {
        (if s.named { "named" } else { "anon" }).to_string()
    }),
    Column::snapshot(
        "size/max",
        Constraint::Length(11),
        Some(SortKey::Size),
        "unreadable",
        |_, s| size_of_max(s),
    ),
    Column::snapshot("fill", Constraint::Length(FILL_WIDTH), None, "", |_, s| {
        fmt::fill_bar(s.size, s.maxsize, usize::from(FILL_WIDTH))
    }),
    Column::snapshot(
        "put/s",
        Constraint::Length(7),
        Some(SortKey::PutRate),
        "",
        |r, _| fmt::count(r.rates.puts),
    ),
    Column::snapshot(
        "get/s",
        Constraint::Length(7),
        Some(SortKey::GetRate),
        "",
        |r, _| fmt::count(r.rates.gets),
    ),
    Column::snapshot(
        "bytes/s",
        Constraint::Length(8),
        Some(SortKey::ByteRate),
        "",
        |r, _| fmt::bytes(r.rates.bytes_put + r.rates.bytes_got),
    ),
    Column::snapshot(
        "full/s",
        Constraint::Length(6),
        Some(SortKey::FullRate),
        "",
        |r, _| fmt::count(r.rates.full_events),
    ),
    Column::snapshot(
        "empty/s",
        Constraint::Length(7),
        Some(SortKey::EmptyRate),
        "",
        |r, _| fmt::count(r.rates.empty_events),
    ),
    Column::snapshot(
        "put p50/99",
        Constraint::Length(11),
        Some(SortKey::PutP99),
        "",
        |_, s| p50_p99(&s.put_blocked),
    ),
    Column::snapshot(
        "get p50/99",
        Constraint::Length(11),
        Some(SortKey::GetP99),
        "",
        |_, s| p50_p99(&s.get_blocked),
    ),
    Column::snapshot(
        "P/C",
        Constraint::Length(5),
        Some(SortKey::Processes),
        "",
        |_, s| format!("{}/{}", s.producers(), s.consumers()),
    ),
    Column::row("state", Constraint::Length(7), Some(SortKey::State), |r| {
        r.state().to_string()
    }),
];

/// Draws the queues table, with the selection, or says why it is empty.
pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let head = Row::new(COLUMNS.iter().map(|c| {
        let mark = if c.sort == Some(app.sort) {
            sort_mark(app.descending)
        } else {
            ""
        };
        Cell::from(format!("{}{mark}", c.header))
    }))
    .style(theme::HEADER);
    let rows: Vec<Row> = app.visible().into_iter().map(row).collect();
    let empty = rows.is_empty();
    let table = Table::new(rows, COLUMNS.iter().map(|c| c.width))
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

/// One queue's row: red if unreadable, dimmed if no attached process is alive.
fn row(r: &QueueRow) -> Row<'static> {
    let style = match &r.snap {
        None => theme::ERROR,
        Some(s) if s.alive => Style::default(),
        Some(_) => theme::DIM,
    };
    Row::new(COLUMNS.iter().map(|c| Cell::from(c.text(r)))).style(style)
}

/// `size/max`, with `∞` for an unbounded queue.
fn size_of_max(s: &Snapshot) -> String {
    let max = if s.maxsize == 0 {
        "∞".to_string()
    } else {
        fmt::count(s.maxsize as f64)
    };
    format!("{}/{max}", fmt::count(s.size as f64))
}

/// `p50/p99` of a blocked-time histogram, `-` if nothing blocked.
fn p50_p99(h: &HistogramSnapshot) -> String {
    match (h.quantile(0.5), h.quantile(0.99)) {
        (Some(a), Some(b)) => format!("{}/{}", fmt::duration(a), fmt::duration(b)),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_columns_follow_the_sort_order() {
        let keys: Vec<SortKey> = COLUMNS.iter().filter_map(|c| c.sort).collect();
        assert_eq!(keys, SortKey::ALL);
    }
}
