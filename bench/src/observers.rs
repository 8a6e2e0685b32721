//! What watching costs: `mpqueue-exporter` scrape time and `mpqueue-top` CPU, over many
//! live queues with several attached processes each.

use crate::shared::Shared;
use mpqueue::{Queue, process};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `queues` named queues in a fresh directory, each with `procs` attached processes (that
/// put one item each) plus this one. Returns the directory and the holders to stop.
pub struct Fleet {
    pub dir: PathBuf,
    board: Shared,
    kids: Vec<mpqueue::Child>,
    _queues: Vec<Queue<u64>>,
}

impl Fleet {
    pub fn start(queues: usize, procs: usize) -> anyhow::Result<Self> {
        let dir = PathBuf::from(format!("/dev/shm/mpqueue-bench-obs-{}", std::process::id()));
        let qs: Vec<Queue<u64>> = (0..queues)
            .map(|i| {
                Queue::builder()
                    .name(&format!("fleet-{i:03}"))
                    .dir(&dir)
                    .create()
            })
            .collect::<Result<_, _>>()?;
        let board = Shared::new();
        let mut kids = Vec::new();
        for _ in 0..procs {
            kids.push(process::fork(|| {
                for q in &qs {
                    q.put(1).unwrap();
                }
                board.board().counts[0].fetch_add(1, Ordering::SeqCst);
                while board.board().counts[1].load(Ordering::SeqCst) == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
                0
            })?);
        }
        while board.board().counts[0].load(Ordering::SeqCst) < procs as u64 {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Fleet {
            dir,
            board,
            kids,
            _queues: qs,
        })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.board.board().counts[1].store(1, Ordering::SeqCst);
        for k in self.kids.drain(..) {
            let _ = k.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let p = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        p.exists(),
        "{} not built (cargo build --release --workspace)",
        p.display()
    );
    Ok(p)
}

/// Scrape times of the exporter over `fleet`, in ms: every scrape's duration.
pub fn scrapes(dir: &Path, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut ex = Command::new(sibling("mpqueue-exporter")?)
        .args(["--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(
        ex.stdout
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    )
    .read_line(&mut line)?;
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no port in {line:?}"))?;
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(s, "GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        anyhow::ensure!(body.contains("mpqueue_puts_total"), "bad scrape");
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let _ = ex.kill();
    let _ = ex.wait();
    Ok(times)
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    // rest[0] is field 3; utime and stime are fields 14 and 15.
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

/// Percent of one core that `mpqueue-top` (default interval, in a tmux pane) uses over
/// `secs` seconds watching `dir`.
pub fn top_cpu(dir: &Path, secs: u64) -> anyhow::Result<f64> {
    let top = sibling("mpqueue-top")?;
    let session = format!("mpq-bench-{}", std::process::id());
    let tmux = || {
        let mut c = Command::new("tmux");
        c.args(["-L", &session]).env_remove("TMUX");
        c
    };
    let status = tmux()
        .args(["new-session", "-d", "-s", &session, "-x", "150", "-y", "50"])
        .arg(format!("{} --dir {}", top.display(), dir.display()))
        .status()?;
    anyhow::ensure!(status.success(), "tmux is needed to run mpqueue-top");
    let result = (|| {
        std::thread::sleep(Duration::from_secs(1));
        let out = tmux()
            .args(["display-message", "-p", "-t", &session, "#{pane_pid}"])
            .output()?;
        let pid: u32 = String::from_utf8(out.stdout)?.trim().parse()?;
        let t0 = cpu_ticks(pid).ok_or_else(|| anyhow::anyhow!("mpqueue-top not running"))?;
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let t1 = cpu_ticks(pid).ok_or_else(|| anyhow::anyhow!("mpqueue-top exited"))?;
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?
            .ok_or_else(|| anyhow::anyhow!("no clock tick rate"))? as f64;
        Ok((t1 - t0) as f64 / hz / start.elapsed().as_secs_f64() * 100.0)
    })();
    let _ = tmux().args(["kill-session", "-t", &session]).status();
    result
}
