//! The list pane: every queue, one row each, drawn from one column table ([`COLUMNS`]).

use super::sort_mark;
use crate::app::{App, QueueRow, SortKey};
use crate::fmt::{self, escape};
use crate::theme;
use mpqueue::observe::{Health, HistogramSnapshot, Snapshot};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

/// Cells of the `fill` bar.
const FILL_WIDTH: u16 = 8;

/// One column of the list: its title, width, when it gives way on a narrow terminal, sort
/// key, cell text and colour, in one place.
struct Column {
    /// Title in the header row; the sort mark (▲/▼) follows it when it is sorted.
    header: &'static str,
    /// Width on screen (the name column takes what is left, at least this).
    width: u16,
    /// On a terminal too narrow for every column, columns are left out in this order,
    /// lowest first, until the rest fit; `None`: always shown.
    drop: Option<u8>,
    /// What `s` sorts by when it reaches this column; `None`: not sortable.
    sort: Option<SortKey>,
    /// The cell's text.
    cell: CellText,
    /// The cell's colour, over the row's.
    style: fn(&QueueRow) -> Style,
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
        width: u16,
        drop: Option<u8>,
        sort: Option<SortKey>,
        cell: fn(&QueueRow) -> String,
    ) -> Self {
        Column {
            header,
            width,
            drop,
            sort,
            cell: CellText::Row(cell),
            style: |_| Style::new(),
        }
    }

    const fn snapshot(
        header: &'static str,
        width: u16,
        drop: u8,
        sort: Option<SortKey>,
        unreadable: &'static str,
        cell: fn(&QueueRow, &Snapshot) -> String,
    ) -> Self {
        Column {
            header,
            width,
            drop: Some(drop),
            sort,
            cell: CellText::Snapshot(cell, unreadable),
            style: |_| Style::new(),
        }
    }

    /// The same column, its cells coloured by `style`.
    const fn styled(mut self, style: fn(&QueueRow) -> Style) -> Self {
        self.style = style;
        self
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
/// `unreadable` and `error` (the reason is in the detail view). At 80 columns: name,
/// health, size/max, oldest, put/s, get/s, wait p50/99 and P/C; `unfinished` (a
/// `JoinableQueue`'s items not yet marked done, `-` for other queues) gives way first, and
/// the detail view always shows it.
const COLUMNS: [Column; 17] = [
    Column::row("name", 10, None, Some(SortKey::Name), |r| escape(r.name())),
    // The verdict, coloured (stuck ones red); `?` if unreadable.
    Column::row("health", 11, None, Some(SortKey::Health), |r| {
        r.health.map_or("?", Health::as_str).to_string()
    })
    .styled(|r| r.health.map_or(Style::new(), theme::health)),
    Column::snapshot("kind", 5, 4, None, "?", |_, s| {
        (if s.named { "named" } else { "anon" }).to_string()
    }),
    Column::snapshot(
        "size/max",
        11,
        14,
        Some(SortKey::Size),
        "unreadable",
        |_, s| size_of_max(s),
    ),
    Column::snapshot("fill", FILL_WIDTH, 1, None, "", |_, s| {
        fmt::fill_bar(s.size, s.maxsize, usize::from(FILL_WIDTH))
    }),
    Column::snapshot("unfinished", 10, 0, None, "", |_, s| {
        s.unfinished.map_or("-".into(), |n| fmt::count(n as f64))
    }),
    Column::snapshot("oldest", 7, 13, Some(SortKey::Oldest), "", |_, s| {
        s.oldest_age.map_or("-".into(), fmt::duration)
    }),
    Column::snapshot("put/s", 7, 10, Some(SortKey::PutRate), "", |r, _| {
        fmt::count(r.rates.puts)
    }),
    Column::snapshot("get/s", 7, 11, Some(SortKey::GetRate), "", |r, _| {
        fmt::count(r.rates.gets)
    }),
    Column::snapshot("bytes/s", 8, 2, Some(SortKey::ByteRate), "", |r, _| {
        fmt::bytes(r.rates.bytes_put + r.rates.bytes_got)
    }),
    Column::snapshot("full/s", 6, 5, Some(SortKey::FullRate), "", |r, _| {
        fmt::count(r.rates.full_events)
    }),
    Column::snapshot("empty/s", 7, 3, Some(SortKey::EmptyRate), "", |r, _| {
        fmt::count(r.rates.empty_events)
    }),
    Column::snapshot("wait p50/99", 12, 12, Some(SortKey::WaitP99), "", |_, s| {
        p50_p99(&s.wait)
    }),
    Column::snapshot("put p50/99", 11, 7, Some(SortKey::PutP99), "", |_, s| {
        p50_p99(&s.put_blocked)
    }),
    Column::snapshot("get p50/99", 11, 6, Some(SortKey::GetP99), "", |_, s| {
        p50_p99(&s.get_blocked)
    }),
    Column::snapshot("P/C", 5, 9, Some(SortKey::Processes), "", |_, s| {
        format!("{}/{}", s.producers(), s.consumers())
    }),
    Column::row("state", 7, Some(8), Some(SortKey::State), |r| {
        r.state().to_string()
    }),
];

/// The widest name the list makes room for before it leaves columns out.
const NAME_MAX: u16 = 24;

/// The columns that fit in `width` cells (one space between columns), with `name` cells
/// for the name column (at least its own width): all of them if they can, else without
/// the ones that give way first.
fn fitting(width: u16, name: u16) -> Vec<&'static Column> {
    let mut shown: Vec<&Column> = COLUMNS.iter().collect();
    let need = |cols: &[&Column]| {
        let name = name.saturating_sub(COLUMNS[0].width);
        cols.iter().map(|c| c.width + 1).sum::<u16>() - 1 + name
    };
    while need(&shown) > width {
        let next = shown
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.drop.map(|d| (d, i)))
            .min();
        let Some((_, i)) = next else { break };
        shown.remove(i);
    }
    shown
}

/// Draws the queues table, with the selection, or says why it is empty.
pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let visible = app.visible();
    let longest = visible.iter().map(|r| escape(r.name()).chars().count());
    let name = u16::try_from(longest.max().unwrap_or(0)).map_or(NAME_MAX, |n| n.min(NAME_MAX));
    let columns = fitting(area.width.saturating_sub(2), name);
    let head = Row::new(columns.iter().map(|c| {
        let mark = if c.sort == Some(app.sort) {
            sort_mark(app.descending)
        } else {
            ""
        };
        Cell::from(format!("{}{mark}", c.header))
    }))
    .style(theme::HEADER);
    let rows: Vec<Row> = visible.into_iter().map(|r| row(&columns, r)).collect();
    let empty = rows.is_empty();
    let widths = columns.iter().enumerate().map(|(i, c)| {
        if i == 0 {
            Constraint::Min(c.width)
        } else {
            Constraint::Length(c.width)
        }
    });
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

/// One queue's row: red if unreadable, dimmed if no attached process is alive; its health
/// in its own colour.
fn row(columns: &[&Column], r: &QueueRow) -> Row<'static> {
    let style = match &r.snap {
        None => theme::ERROR,
        Some(s) if s.alive => Style::default(),
        Some(_) => theme::DIM,
    };
    Row::new(
        columns
            .iter()
            .map(|c| Cell::from(c.text(r)).style((c.style)(r))),
    )
    .style(style)
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

/// `p50/p99` of a histogram, `-` if it is empty.
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

    fn headers(width: u16) -> Vec<&'static str> {
        fitting(width, 10).iter().map(|c| c.header).collect()
    }

    #[test]
    fn narrow_terminals_keep_the_health_and_the_ages() {
        assert_eq!(headers(500).len(), COLUMNS.len());
        // 80 columns, less the borders.
        assert_eq!(
            headers(78),
            [
                "name",
                "health",
                "size/max",
                "oldest",
                "put/s",
                "get/s",
                "wait p50/99",
                "P/C"
            ]
        );
        assert_eq!(headers(20), ["name", "health"]);
        // The unfinished tasks give way first: one cell short of every column.
        let all = COLUMNS.iter().map(|c| c.width + 1).sum::<u16>() - 1;
        let but_one = headers(all - 1);
        assert!(!but_one.contains(&"unfinished"), "{but_one:?}");
        assert_eq!(but_one.len(), COLUMNS.len() - 1);
        assert_eq!(headers(0), ["name", "health"]);
        // Longer names take the place of the least needed columns.
        assert_eq!(fitting(78, 13).len(), fitting(78, 10).len() - 1);
        assert_eq!(fitting(500, 300).len(), COLUMNS.len());
        // Each column gives way in its own turn.
        let mut order: Vec<u8> = COLUMNS.iter().filter_map(|c| c.drop).collect();
        order.sort_unstable();
        order.dedup();
        assert_eq!(order.len(), COLUMNS.len() - 2);
    }
}
