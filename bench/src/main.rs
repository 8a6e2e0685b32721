//! `mpqueue-bench`: mpqueue and its peers side by side, in one run on one machine, written to
//! `BENCHMARKS.md`. Every figure is the median of several runs with min and max; judge by
//! the ratios within a run (the machine is shared and noisy).
//!
//! `cargo run --release -p mpqueue-bench` (full, several minutes) or `-- --quick` (smoke).

mod ipc;
mod items;
mod limits;
mod mpq;
mod observers;
mod python;
mod shared;

use clap::Parser;
use items::{B8, B64};
use shared::Placement;
use std::fmt::Write as _;

#[derive(Parser)]
#[command(about = "Side-by-side benchmarks of mpqueue and its peers; writes BENCHMARKS.md")]
struct Args {
    /// Run every scenario briefly (a smoke test; the numbers mean little).
    #[arg(long)]
    quick: bool,
    /// Runs per figure (median, min and max are reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: String,
    /// Only run mpqueue 1→1 (or `--producers`→`--consumers`) 64 B with this many items (for
    /// profiling with perf).
    #[arg(long, hide = true)]
    profile: Option<u64>,
    /// Only move this many 1 MiB items through mpqueue and a raw pipe, alternately.
    #[arg(long, hide = true)]
    big_only: Option<u64>,
    /// With `--profile`: producer processes.
    #[arg(long, hide = true, default_value_t = 1)]
    producers: usize,
    /// With `--profile`: consumer processes.
    #[arg(long, hide = true, default_value_t = 1)]
    consumers: usize,
    /// With `--profile`: the queue's maxsize.
    #[arg(long, hide = true, default_value_t = 0)]
    maxsize: usize,
    /// Only run the shared-memory SPSC ring limit (64 B) with this many items.
    #[arg(long, hide = true)]
    ring_only: Option<u64>,
    /// Only ping-pong this many round trips through mpqueue and a raw pipe, per placement.
    #[arg(long, hide = true)]
    pingpong_only: Option<usize>,
    /// Only put and get this many 64 B items in one process, counters on or off (for
    /// counting instructions with `valgrind --tool=callgrind`).
    #[arg(long, hide = true, num_args = 2, value_names = ["N", "on|off"])]
    instructions: Option<Vec<String>>,
}

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

/// Back to every CPU after a pinned scenario.
pub fn unpin_all() {
    // SAFETY: builds a cpu_set_t with every online CPU and applies it to this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::sysconf(libc::_SC_NPROCESSORS_ONLN).max(1) as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A figure: median, min, max over the runs (and the runs in the order they ran), or why
/// it is missing.
#[derive(Clone)]
enum Fig {
    Val {
        med: f64,
        min: f64,
        max: f64,
        runs: Vec<f64>,
    },
    Missing(String),
}

impl Fig {
    fn of(runs: anyhow::Result<Vec<f64>>) -> Fig {
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

    fn med(&self) -> Option<f64> {
        match self {
            Fig::Val { med, .. } => Some(*med),
            Fig::Missing(_) => None,
        }
    }

    fn cell(&self) -> String {
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

struct Runner {
    reps: usize,
}

/// One cell of a table: a run giving a figure, or why there is none.
type Cell = Result<Box<dyn Fn() -> anyhow::Result<f64>>, &'static str>;

impl Runner {
    fn fig(&self, label: &str, f: impl Fn() -> anyhow::Result<f64>) -> Fig {
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
    fn table(&self, table: &[(String, Vec<Cell>)]) -> Vec<(String, Vec<Fig>)> {
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
    fn pair(&self, label: &str, f: impl Fn() -> anyhow::Result<(f64, f64)>) -> (Fig, Fig) {
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

fn py(peer: &str, args: &[String]) -> anyhow::Result<f64> {
    python::run(peer, args)?
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no output"))
}

fn machine() -> String {
    let sh = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "- CPU: {} ({} CPUs), kernel {}\n- {} · {} · faster-fifo {}\n- date: {}",
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").trim(),
        sh("nproc"),
        sh("uname -r"),
        sh("rustc --version"),
        sh("python3 --version"),
        sh(
            "(.venv/bin/python -c 'import importlib.metadata as m; print(m.version(\"faster-fifo\"))' 2>/dev/null) || echo 'not installed'"
        ),
        sh("date -u '+%Y-%m-%d %H:%M UTC'")
    )
}

/// Instructions per put + get with counters on and off: callgrind's count for `2n` items
/// minus its count for `n` (so start-up cancels out), divided by `n`.
fn instructions(n: u64) -> anyhow::Result<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let count = |items: u64, stats: &str| -> anyhow::Result<f64> {
        let out = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .args(["--instructions", &items.to_string(), stats])
            .output()
            .map_err(|e| anyhow::anyhow!("valgrind: {e}"))?;
        anyhow::ensure!(out.status.success(), "valgrind failed: {}", out.status);
        // "==1234== I   refs:      157,370,933"
        let text = String::from_utf8_lossy(&out.stderr);
        let refs = text
            .lines()
            .find_map(|l| l.split_once("I   refs:"))
            .ok_or_else(|| anyhow::anyhow!("no instruction count in valgrind's output"))?
            .1;
        Ok(refs.trim().replace(',', "").parse()?)
    };
    let per = |stats: &str| -> anyhow::Result<f64> {
        Ok((count(2 * n, stats)? - count(n, stats)?) / n as f64)
    };
    Ok((per("on")?, per("off")?))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(n) = args.big_only {
        for _ in 0..args.reps {
            println!(
                "mpqueue {:.0} MB/s, raw pipe {:.0} MB/s",
                mpq::big(n)?,
                limits::pipe_big(n)?
            );
        }
        return Ok(());
    }
    if let Some(v) = &args.instructions {
        let n: u64 = v[0].parse()?;
        let q: mpqueue::Queue<B64> = mpqueue::Queue::builder().stats(v[1] == "on").create()?;
        for _ in 0..n {
            q.put(<B64 as items::Item>::make())?;
            q.get()?;
        }
        return Ok(());
    }
    if let Some(n) = args.ring_only {
        println!("{:.0} items/s", limits::shm_ring(n, 64, Placement::Free)?);
        return Ok(());
    }
    if let Some(n) = args.pingpong_only {
        for place in [Placement::Same, Placement::Cross, Placement::Free] {
            let (m50, m99) = mpq::pingpong(n, place)?;
            let (p50, p99) = limits::pipe_pingpong(n, place)?;
            unpin_all();
            println!(
                "{}: mpqueue {m50:.1}/{m99:.1} µs, raw pipe {p50:.1}/{p99:.1} µs",
                place.label()
            );
        }
        return Ok(());
    }
    if let Some(n) = args.profile {
        println!(
            "{:.0} items/s",
            mpq::tput::<B64>(
                args.producers,
                args.consumers,
                n,
                Placement::Free,
                true,
                args.maxsize
            )?
        );
        return Ok(());
    }
    let q = args.quick;
    let r = Runner {
        reps: if q { 1 } else { args.reps.max(1) },
    };
    // Items per run: about a second each in the full run.
    let n_fast: u64 = if q { 50_000 } else { 2_000_000 };
    let n_py: u64 = if q { 10_000 } else { 200_000 };
    let n_ring: u64 = if q { 200_000 } else { 20_000_000 };
    let n_big: u64 = if q { 20 } else { 1000 };
    let n_big_py: u64 = if q { 10 } else { 300 };
    let n_rtt: usize = if q { 500 } else { 20_000 };
    let s = |v: u64| v.to_string();
    let mut md = String::new();

    let rtt_before = limits::line_round_trip_ns();
    // ---- throughput ---------------------------------------------------------------------
    eprintln!("throughput");
    let mut table: Vec<(String, Vec<Cell>)> = Vec::new();
    for (p, c) in [(1usize, 1usize), (4, 4), (1, 4)] {
        for size in [8usize, 64] {
            let py_args = move || -> Vec<String> {
                ["tput".to_string(), p.to_string(), c.to_string()]
                    .into_iter()
                    .chain([size.to_string(), n_py.to_string()])
                    .collect()
            };
            let one_to_one = (p, c) == (1, 1);
            let cells: Vec<Cell> = vec![
                Ok(Box::new(move || match size {
                    8 => mpq::tput::<B8>(p, c, n_fast, Placement::Free, true, 0),
                    _ => mpq::tput::<B64>(p, c, n_fast, Placement::Free, true, 0),
                })),
                Ok(Box::new(move || py("mpq", &py_args()))),
                Ok(Box::new(move || py("ff", &py_args()))),
                match (one_to_one, size) {
                    (true, 64) => Ok(Box::new(move || ipc::tput(n_py * 2))),
                    (true, _) => Err("64 B only"),
                    _ => Err("1 receiver only"),
                },
                if one_to_one {
                    Ok(Box::new(move || {
                        limits::pipe_tput(n_fast / 2, size, Placement::Free)
                    }))
                } else {
                    Err("1→1 only")
                },
                if one_to_one {
                    Ok(Box::new(move || {
                        limits::shm_ring(n_ring, size, Placement::Free)
                    }))
                } else {
                    Err("1→1 only")
                },
            ];
            table.push((format!("{p}→{c}, {size} B"), cells));
        }
    }
    let bounded_py: Vec<String> = ["tput", "1", "1", "64", &(n_py / 2).to_string()]
        .into_iter()
        .chain(["--maxsize", "1"])
        .map(String::from)
        .collect();
    table.push((
        "1→1, 64 B, maxsize 1".into(),
        vec![
            Ok(Box::new(move || {
                mpq::tput::<B64>(1, 1, n_fast / 4, Placement::Free, true, 1)
            })),
            Ok(Box::new(move || py("mpq", &bounded_py))),
            Err("bounded by bytes, not items"),
            Err("unbounded only"),
            Err("-"),
            Err("-"),
        ],
    ));
    let rows = r.table(&table);

    writeln!(md, "# mpqueue benchmarks\n")?;
    writeln!(
        md,
        "Produced by `cargo run --release -p mpqueue-bench -- {}` in one run; every figure is the median of {} runs with [min–max]; the throughput table is measured in rounds, each running every cell once. The machine is a shared 2-vCPU VM: compare ratios within this run, not absolute numbers across runs.\n",
        if q {
            "--quick".to_string()
        } else {
            format!("--reps {}", r.reps)
        },
        r.reps
    )?;
    writeln!(md, "{}", machine())?;
    writeln!(
        md,
        "- cross-CPU cache-line round trip (two threads pinned to CPUs 0 and 1): {rtt_before:.0} ns before the run, {:.0} ns after. On this VM it is ~65 ns, ~80 ns or ~320 ns depending on where the host puts the two vCPUs, and it changes while the benchmarks run: this is why some figures spread widely.\n",
        limits::line_round_trip_ns()
    )?;
    writeln!(
        md,
        "## Throughput, items/s (producer processes → consumer processes)\n"
    )?;
    writeln!(
        md,
        "| scenario | mpqueue | Python multiprocessing.Queue | faster-fifo | ipc-channel | raw pipe (1 write/frame) | shm SPSC ring (limit) |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for (label, figs) in &rows {
        writeln!(
            md,
            "| {label} | {} |",
            figs.iter().map(Fig::cell).collect::<Vec<_>>().join(" | ")
        )?;
    }

    // ---- counters on vs off ---------------------------------------------------------------
    // Interleaved runs (on, off, on, off, …) with producers on CPU 0 and consumers on CPU 1,
    // so placement and drift affect both sides alike.
    eprintln!("counters on vs off");
    writeln!(
        md,
        "\n## Counters on vs off, 64 B items, items/s (interleaved runs, producers on CPU 0, consumers on CPU 1)\n"
    )?;
    writeln!(
        md,
        "| scenario | counters on | counters off | cost |\n|---|---|---|---|"
    )?;
    let mut costs = Vec::new();
    for (p, c) in [(1usize, 1usize), (4, 4)] {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..r.reps * 2 {
            on.push(mpq::tput::<B64>(p, c, n_fast, Placement::Cross, true, 0)?);
            off.push(mpq::tput::<B64>(p, c, n_fast, Placement::Cross, false, 0)?);
        }
        // The cost of each on/off pair (they ran back to back), median and range.
        let mut pair_costs: Vec<f64> = on
            .iter()
            .zip(&off)
            .map(|(a, b)| (b - a) / b * 100.0)
            .collect();
        pair_costs.sort_by(f64::total_cmp);
        let cost = format!(
            "{:+.1}% (pairs {:+.1}% … {:+.1}%)",
            pair_costs[pair_costs.len() / 2],
            pair_costs[0],
            pair_costs[pair_costs.len() - 1]
        );
        let (on, off) = (Fig::of(Ok(on)), Fig::of(Ok(off)));
        eprintln!("  {p}→{c}: {} vs {} ({cost})", on.cell(), off.cell());
        writeln!(md, "| {p}→{c} | {} | {} | {cost} |", on.cell(), off.cell())?;
        costs.push(cost);
    }

    // Instructions are deterministic where wall-clock time on this VM is not.
    eprintln!("counters on vs off, instructions");
    let n_instr: u64 = if q { 10_000 } else { 100_000 };
    let instr = instructions(n_instr);
    writeln!(
        md,
        "\nInstructions per put + get of a 64 B item in one process, counted by `valgrind --tool=callgrind target/release/mpqueue-bench --instructions N on|off` (the count for 2N items minus the count for N, so start-up cancels out; N = {n_instr}):\n"
    )?;
    let instr_cost = match &instr {
        Ok((on, off)) => {
            let cost = format!("{:+.1}%", (on - off) / off * 100.0);
            writeln!(
                md,
                "| counters | instructions per put + get |\n|---|---|\n| on | {on:.1} |\n| off | {off:.1} |\n| cost | {cost} |"
            )?;
            cost
        }
        Err(e) => {
            writeln!(md, "n/a ({e})")?;
            "n/a".into()
        }
    };

    // ---- each side alone --------------------------------------------------------------------
    eprintln!("each side alone");
    writeln!(md, "\n## Each side alone (1→1 64 B: where the time goes)\n")?;
    match (
        mpq::sides(if q { 50 } else { 2000 }),
        mpq::codec(if q { 100_000 } else { 5_000_000 }),
    ) {
        (Ok((put, get)), Ok((enc, dec))) => {
            writeln!(
                md,
                "- one process, warm, no other process: `put` {put:.0} ns, `get` {get:.0} ns per 64 B item (so one consumer cannot take more than {:.1}M items/s)\n- of which bincode alone, with mpqueue's options: encode {enc:.0} ns, decode {dec:.0} ns",
                1e3 / get
            )?;
        }
        (Err(e), _) | (_, Err(e)) => writeln!(md, "n/a ({e})")?,
    }

    // ---- big items --------------------------------------------------------------------------
    eprintln!("1 MiB items");
    let big = [
        ("mpqueue (4 MiB ring)", r.fig("mpqueue", || mpq::big(n_big))),
        (
            "Python multiprocessing.Queue",
            r.fig("mp.Queue", || py("mpq", &["big".into(), s(n_big_py)])),
        ),
        (
            "faster-fifo",
            r.fig("faster-fifo", || py("ff", &["big".into(), s(n_big_py)])),
        ),
        ("ipc-channel", r.fig("ipc-channel", || ipc::big(n_big / 2))),
        (
            "raw pipe, 1 MiB pipe buffer (F_SETPIPE_SZ)",
            r.fig("raw pipe", || limits::pipe_big(n_big)),
        ),
    ];
    writeln!(
        md,
        "\n## 1 MiB items, MB/s (1e6 bytes), one producer process → one consumer process\n"
    )?;
    writeln!(md, "| peer | MB/s |\n|---|---|")?;
    for (label, f) in &big {
        writeln!(md, "| {label} | {} |", f.cell())?;
    }

    // ---- ping-pong --------------------------------------------------------------------------
    eprintln!("ping-pong");
    writeln!(
        md,
        "\n## Ping-pong round trip between two processes over two queues, µs (median / p99)\n"
    )?;
    writeln!(
        md,
        "| placement | mpqueue | Python multiprocessing.Queue | faster-fifo | ipc-channel | raw pipe |\n|---|---|---|---|---|---|"
    )?;
    let mut rtt_same = (None, None);
    let mut rtt_cross = (None, None);
    for place in [Placement::Same, Placement::Cross, Placement::Free] {
        eprintln!(" {}", place.label());
        let pin = match place {
            Placement::Same => vec!["--pin".to_string(), "same".into()],
            Placement::Cross => vec!["--pin".into(), "cross".into()],
            Placement::Free => vec![],
        };
        let pyargs = |peer: &str| {
            let mut a = vec!["pingpong".to_string(), s(n_rtt as u64 / 4)];
            a.extend(pin.clone());
            let v = python::run(peer, &a)?;
            anyhow::ensure!(v.len() == 2, "bad pybench output");
            Ok((v[0], v[1]))
        };
        let cells = [
            r.pair("mpqueue", || mpq::pingpong(n_rtt, place)),
            r.pair("mp.Queue", || pyargs("mpq")),
            r.pair("faster-fifo", || pyargs("ff")),
            r.pair("ipc-channel", || ipc::pingpong(n_rtt, place)),
            r.pair("raw pipe", || limits::pipe_pingpong(n_rtt, place)),
        ];
        match place {
            Placement::Same => rtt_same = (cells[0].0.med(), cells[4].0.med()),
            Placement::Cross => rtt_cross = (cells[0].0.med(), cells[4].0.med()),
            Placement::Free => {}
        }
        let row: Vec<String> = cells
            .iter()
            .map(|(m, p)| format!("{} / {}", m.cell(), p.cell()))
            .collect();
        writeln!(md, "| {} | {} |", place.label(), row.join(" | "))?;
    }

    // ---- memory and observers --------------------------------------------------------------
    eprintln!("memory and observers");
    let (declared, touched, per_proc) = mpq::memory()?;
    writeln!(md, "\n## Memory\n")?;
    writeln!(
        md,
        "- per queue, shared memory as created (data segment with the default 1 MiB ring + stats segment with 64 process slots; a named queue's files are allocated in full at creation, so a full /dev/shm fails early; an anonymous queue's ring is allocated as it is touched): {} bytes",
        declared
    )?;
    writeln!(
        md,
        "- per queue, resident after 100 puts and gets of 64 B in one process: {} bytes",
        touched
    )?;
    writeln!(
        md,
        "- per attached process per queue (its stats slot, per-process state and feeder thread), resident: {} bytes",
        per_proc
    )?;
    let (queues, procs) = if q { (20, 2) } else { (100, 8) };
    let fleet = observers::Fleet::start(queues, procs)?;
    let scrapes = observers::scrapes(&fleet.dir, if q { 5 } else { 50 });
    let top = observers::top_cpu(&fleet.dir, if q { 3 } else { 20 });
    drop(fleet);
    writeln!(
        md,
        "\n## Observers ({queues} live queues, {procs} processes attached to each besides the creator)\n"
    )?;
    match &scrapes {
        Ok(v) => {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            writeln!(
                md,
                "- `mpqueue-exporter` scrape (HTTP round trip, {} scrapes): median {:.1} ms, max {:.1} ms",
                v.len(),
                v[v.len() / 2],
                v[v.len() - 1]
            )?;
        }
        Err(e) => writeln!(md, "- `mpqueue-exporter` scrape: n/a ({e})")?,
    }
    match &top {
        Ok(pct) => writeln!(
            md,
            "- `mpqueue-top` at the default 1 s interval: {pct:.2}% of one core"
        )?,
        Err(e) => writeln!(md, "- `mpqueue-top`: n/a ({e})")?,
    }

    // ---- targets ----------------------------------------------------------------------------
    let get = |row: &str, col: usize| rows.iter().find(|(l, _)| l == row).map(|(_, f)| &f[col]);
    // Two cells of the throughput table ran in the same rounds: the median of the ratios
    // round by round (each round's pair saw the same state of the machine), with their range.
    // `unit` follows the median ("×" for speed-ups, "" for fractions).
    let paired = |a: Option<&Fig>, b: Option<&Fig>, unit: &str| match (a, b) {
        (Some(Fig::Val { runs: x, .. }), Some(Fig::Val { runs: y, .. })) if x.len() == y.len() => {
            let mut r: Vec<f64> = x.iter().zip(y).map(|(a, b)| a / b).collect();
            r.sort_by(f64::total_cmp);
            if r.len() == 1 {
                format!("{:.2}{unit}", r[0])
            } else {
                format!(
                    "{:.2}{unit} (rounds {:.2}–{:.2})",
                    r[r.len() / 2],
                    r[0],
                    r[r.len() - 1]
                )
            }
        }
        _ => "n/a".into(),
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    };
    writeln!(md, "\n## Targets (ratios within this run)\n")?;
    writeln!(
        md,
        "Throughput ratios are the median of the ratios round by round (the two figures of a round ran in the same pass over the table, seconds apart), with their range.\n"
    )?;
    writeln!(md, "| target | wanted | measured |\n|---|---|---|")?;
    let one = "1→1, 64 B";
    let four = "4→4, 64 B";
    let targets = [
        (
            "1→1 64 B vs Python multiprocessing.Queue",
            "≥ 30×",
            paired(get(one, 0), get(one, 1), "×"),
        ),
        (
            "1→1 64 B vs ipc-channel",
            "> 1×",
            paired(get(one, 0), get(one, 3), "×"),
        ),
        (
            "1→1 64 B vs shm SPSC ring limit",
            "≥ 0.20",
            paired(get(one, 0), get(one, 5), ""),
        ),
        (
            "4→4 64 B vs Python multiprocessing.Queue",
            "≥ 20×",
            paired(get(four, 0), get(four, 1), "×"),
        ),
        (
            "4→4 64 B vs faster-fifo",
            "≥ 20×",
            paired(get(four, 0), get(four, 2), "×"),
        ),
        (
            "4→4 64 B vs mpqueue's own 1→1",
            "≥ 0.50",
            paired(get(four, 0), get(one, 0), ""),
        ),
        (
            "ping-pong median vs raw pipe, same CPU",
            "≤ 1",
            ratio(rtt_same.0, rtt_same.1),
        ),
        (
            "ping-pong median vs raw pipe, cross CPU",
            "≤ 1",
            ratio(rtt_cross.0, rtt_cross.1),
        ),
        (
            "1 MiB items vs raw pipe (1 MiB buffer)",
            "≥ 0.70",
            ratio(big[0].1.med(), big[4].1.med()),
        ),
        (
            "counters on vs off: instructions per put + get (deterministic)",
            "≤ 5%",
            instr_cost,
        ),
        (
            "counters on vs off: 1→1 64 B wall clock (noisy here)",
            "≤ 5%",
            costs[0].clone(),
        ),
        (
            "counters on vs off: 4→4 64 B wall clock (noisy here)",
            "≤ 5%",
            costs[1].clone(),
        ),
    ];
    for (target, wanted, measured) in targets {
        writeln!(md, "| {target} | {wanted} | {measured} |")?;
    }

    if let Ok(analysis) = std::fs::read_to_string("bench/ANALYSIS.md") {
        writeln!(md, "\n{analysis}")?;
    }
    std::fs::write(&args.out, &md)?;
    println!("{md}");
    Ok(())
}
