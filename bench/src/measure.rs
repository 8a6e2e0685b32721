//! Figures from repeated runs: median, min and max (and percentiles of samples), how they
//! print in a table cell, and the runner that measures them (a table in rounds, one figure,
//! or a median/p99 pair).

/// Median and p99 of nanosecond samples, in µs.
pub fn percentiles(v: &mut [u64]) -> (f64, f64) {
    v.sort_unstable();
    if v.is_empty() {
        return (0.0, 0.0);
    }
    (
        v[v.len() / 2] as f64 / 1e3,
        v[(v.len() * 99 / 100).min(v.len() - 1)] as f64 / 1e3,
    )
}

/// A figure: median, min, max over the runs (and the runs in the order they ran), or why
/// it is missing.
#[derive(Clone)]
pub enum Fig {
    Val {
        med: f64,
        min: f64,
        max: f64,
        runs: Vec<f64>,
    },
    Missing(String),
}

impl Fig {
    pub fn of(runs: anyhow::Result<Vec<f64>>) -> Fig {
        match runs {
            Ok(runs) if !runs.is_empty() => {
                let mut v = runs.clone();
                v.sort_by(f64::total_cmp);
                Fig::Val {
                    med: v[v.len() / 2],
                    min: v[0],
                    max: v[v.len() - 1],
                    runs,
                }
            }
            Ok(_) => Fig::Missing("no runs".into()),
            Err(e) => Fig::Missing(e.to_string()),
        }
    }

    pub fn med(&self) -> Option<f64> {
        match self {
            Fig::Val { med, .. } => Some(*med),
            Fig::Missing(_) => None,
        }
    }

    pub fn cell(&self) -> String {
        match self {
            Fig::Val { med, min, max, .. } => {
                format!("{} [{}–{}]", human(*med), human(*min), human(*max))
            }
            Fig::Missing(why) => format!("n/a ({})", why.replace('|', "/")),
        }
    }
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Measures figures, each from `reps` runs.
pub struct Runner {
    pub reps: usize,
}

/// One cell of a table: a run giving a figure, or why there is none.
pub type Cell = Result<Box<dyn Fn() -> anyhow::Result<f64>>, &'static str>;

/// A measured table: each row's label and its figures, column by column.
pub type Rows = Vec<(String, Vec<Fig>)>;

impl Runner {
    pub fn fig(&self, label: &str, f: impl Fn() -> anyhow::Result<f64>) -> Fig {
        eprint!("  {label} ...");
        let fig = Fig::of((0..self.reps).map(|_| f()).collect());
        eprintln!(" {}", fig.cell());
        fig
    }

    /// Every cell's figure, measured in rounds: each round runs every cell of the table
    /// once, so that a change in the machine's state while the table is measured (on this
    /// VM the two vCPUs move between host cores, and a cross-core transfer then costs up to
    /// four times as much) hits every cell alike, and the ratios within the table (between
    /// peers, and between scenarios) stay fair.
    pub fn table(&self, table: &[(String, Vec<Cell>)]) -> Rows {
        let mut runs: Vec<Vec<Vec<f64>>> = table
            .iter()
            .map(|(_, cells)| cells.iter().map(|_| Vec::new()).collect())
            .collect();
        let mut failed: Vec<Vec<Option<String>>> = table
            .iter()
            .map(|(_, cells)| cells.iter().map(|_| None).collect())
            .collect();
        for round in 0..self.reps {
            eprintln!(" round {} of {}", round + 1, self.reps);
            for (r, (label, cells)) in table.iter().enumerate() {
                for (c, cell) in cells.iter().enumerate() {
                    let Ok(run) = cell else { continue };
                    match run() {
                        Ok(v) => runs[r][c].push(v),
                        Err(e) => {
                            eprintln!("  {label}, column {c}: {e}");
                            failed[r][c] = Some(e.to_string());
                        }
                    }
                }
            }
        }
        table
            .iter()
            .enumerate()
            .map(|(r, (label, cells))| {
                let figs = cells
                    .iter()
                    .enumerate()
                    .map(|(c, cell)| match (cell, failed[r][c].take()) {
                        (Err(why), _) => Fig::Missing((*why).into()),
                        (Ok(_), Some(e)) => Fig::Missing(e),
                        (Ok(_), None) => Fig::of(Ok(std::mem::take(&mut runs[r][c]))),
                    })
                    .collect();
                (label.clone(), figs)
            })
            .collect()
    }

    /// Two figures (median and p99 of round trips) from each run.
    pub fn pair(&self, label: &str, f: impl Fn() -> anyhow::Result<(f64, f64)>) -> (Fig, Fig) {
        eprint!("  {label} ...");
        let runs: anyhow::Result<Vec<(f64, f64)>> = (0..self.reps).map(|_| f()).collect();
        let (a, b) = match runs {
            Ok(v) => (
                Fig::of(Ok(v.iter().map(|x| x.0).collect())),
                Fig::of(Ok(v.iter().map(|x| x.1).collect())),
            ),
            Err(e) => (Fig::Missing(e.to_string()), Fig::Missing(e.to_string())),
        };
        eprintln!(" {} / {}", a.cell(), b.cell());
        (a, b)
    }
}
