//! `mpqueue-exporter` end to end: real queues in child processes, the real exporter,
//! `promtool check metrics`, and a real Prometheus server scraping it every second.

mod support;
use mpqueue::{Queue, process};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::prom::{Exporter, Prometheus, check_metrics, scalar, status_and_body};
use support::*;

/// A scrape of `/metrics` that gives up after `limit` without an answer: the error says
/// what happened instead.
fn scrape_within(port: u16, limit: Duration) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(limit))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    Ok(status_and_body(&resp))
}

/// Whether the peer has closed `s` (end of stream or reset); never blocks, never reads.
fn closed_by_peer(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let closed = match s.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    closed
}

fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn hostile_names_corrupt_and_stale_segments_never_break_a_scrape() {
    let dir = queue_dir();
    let q: Queue<u32> = Queue::builder()
        .name("plain")
        .dir(dir.path())
        .maxsize(4)
        .create()
        .unwrap();
    let hostile: Vec<Queue<u8>> = [
        "quo\"te",
        "new\nline} 1\nfake_metric 2",
        "back\\slash",
        "ünïcödé ✓ 队列",
    ]
    .iter()
    .map(|l| Queue::builder().label(l).dir(dir.path()).create().unwrap())
    .collect();
    for h in &hostile {
        h.put(1).unwrap();
    }
    for i in 0..4 {
        q.put(i).unwrap();
    }
    assert!(q.put_nowait(9).is_err());
    std::fs::write(dir.path().join("q.corrupt.stats"), vec![0x5A; 8192]).unwrap();
    std::fs::write(dir.path().join("q.short.stats"), b"MPQSTAT").unwrap();
    // Many stale segments: queues whose creators were killed.
    for i in 0..30 {
        let d = dir.path().to_path_buf();
        let c = process::fork(move || {
            let q: Queue<u8> = Queue::builder()
                .name(&format!("stale-{i}"))
                .dir(&d)
                .create()
                .unwrap();
            std::mem::forget(q);
            // SAFETY: dies without clean-up, as a crash would.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            0
        })
        .unwrap();
        assert!(c.join().is_err());
    }

    let ex = Exporter::start(dir.path());
    let (status, body) = ex.get("/metrics");
    assert_eq!(status, 200);
    let (rc, msg) = check_metrics(&body);
    assert_eq!(rc, 0, "promtool: {msg}\n{body}");
    assert!(body.contains("mpqueue_puts_total{queue=\"quo\\\"te\",named=\"false\""));
    assert!(body.contains("queue=\"new\\nline} 1\\nfake_metric 2\""));
    assert!(body.contains("queue=\"back\\\\slash\""));
    assert!(body.contains("queue=\"ünïcödé ✓ 队列\""));
    assert!(!body.lines().any(|l| l.starts_with("fake_metric")));
    assert!(!body.contains("stale-"), "stale queues are dropped");
    assert_eq!(
        sample(&body, "mpqueue_puts_total{queue=\"plain\""),
        Some(4.0)
    );
    assert_eq!(
        sample(&body, "mpqueue_full_events_total{queue=\"plain\""),
        Some(1.0)
    );
    assert_eq!(sample(&body, "mpqueue_size{queue=\"plain\""), Some(4.0));
    assert_eq!(
        sample(
            &body,
            "mpqueue_exporter_scrape_errors_total{reason=\"corrupt\"}"
        ),
        Some(2.0)
    );
    assert_eq!(sample(&body, "mpqueue_exporter_stale_queues"), Some(30.0));
    assert_eq!(sample(&body, "mpqueue_exporter_queues"), Some(5.0));
    // The histogram's +Inf bucket and _count equal the shared-memory count.
    let s = mpqueue::observe::list_in(dir.path())
        .unwrap()
        .into_iter()
        .find(|r| r.name() == "plain")
        .unwrap()
        .snapshot()
        .unwrap();
    let inf = sample(
        &body,
        "mpqueue_get_blocked_seconds_bucket{queue=\"plain\",named=\"true\",id=\"q.plain\",le=\"+Inf\"}",
    );
    assert_eq!(inf, Some(s.get_blocked.count as f64));

    let (status, page) = ex.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<a href=\"/metrics\">"));
    assert_eq!(ex.get("/nope").0, 404);
}

#[test]
fn bad_flags_and_busy_ports_get_clear_errors() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let out = Command::new(bin("mpqueue-exporter"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
    let out = Command::new(bin("mpqueue-exporter"))
        .args(["--listen", "nonsense"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid socket address"));
    let out = Command::new(bin("mpqueue-exporter"))
        .args(["--path", "metrics"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a path like /metrics"));
}

#[test]
fn sigterm_stops_it_cleanly() {
    let dir = queue_dir();
    let mut ex = Exporter::start(dir.path());
    assert_eq!(ex.get("/metrics").0, 200);
    // SAFETY: signals our own child process.
    unsafe { libc::kill(ex.child.id() as i32, libc::SIGTERM) };
    let status = wait_for(Duration::from_secs(10), || ex.child.try_wait().unwrap())
        .expect("exporter did not stop");
    assert!(status.success());
}

#[test]
fn real_prometheus_scrapes_exact_counts() {
    let dir = queue_dir();
    let q: Queue<u64> = Queue::builder()
        .name("prom-e2e")
        .dir(dir.path())
        .create()
        .unwrap();
    // One blocked get before anything is put: a get-blocked observation.
    assert!(q.get_timeout(Duration::from_millis(20)).is_err());
    let ready: Queue<u8> = Queue::builder().dir(dir.path()).create().unwrap();
    let producers: Vec<_> = (0..2)
        .map(|_| {
            process::fork(|| {
                for i in 0..1000 {
                    q.put(i).unwrap();
                }
                0
            })
            .unwrap()
        })
        .collect();
    let doomed = process::fork(|| {
        die_with_parent();
        for i in 0..500 {
            q.put(i).unwrap();
        }
        ready.put(1).unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    ready.get_timeout(Duration::from_secs(30)).unwrap();
    for p in producers {
        assert_eq!(p.join().unwrap(), 0);
    }
    for _ in 0..2000 {
        q.get_timeout(Duration::from_secs(30)).unwrap();
    }

    let ex = Exporter::start(dir.path());
    let prom = Prometheus::start(ex.port);
    let up = wait_for(Duration::from_secs(60), || {
        scalar(prom.port, "up").filter(|v| *v == 1.0)
    });
    assert!(up.is_some(), "Prometheus never scraped the exporter");
    let puts = r#"mpqueue_puts_total{queue="prom-e2e"}"#;
    assert_eq!(
        wait_for(Duration::from_secs(30), || scalar(prom.port, puts)
            .filter(|v| *v == 2500.0)),
        Some(2500.0)
    );
    assert_eq!(
        scalar(prom.port, r#"mpqueue_gets_total{queue="prom-e2e"}"#),
        Some(2000.0)
    );
    assert_eq!(
        scalar(prom.port, r#"mpqueue_size{queue="prom-e2e"}"#),
        Some(500.0)
    );
    let p50 = scalar(
        prom.port,
        r#"histogram_quantile(0.5, mpqueue_get_blocked_seconds_bucket{queue="prom-e2e"})"#,
    )
    .expect("histogram_quantile answers");
    assert!(p50 > 0.0 && p50.is_finite(), "{p50}");

    // Kill a producer: it shows as dead, and its 500 puts stay in the total.
    let pid = doomed.pid();
    doomed.kill(libc::SIGKILL).unwrap();
    assert!(doomed.join().is_err());
    let dead = format!(r#"mpqueue_process_alive{{queue="prom-e2e",pid="{pid}"}}"#);
    assert_eq!(
        wait_for(Duration::from_secs(30), || scalar(prom.port, &dead)
            .filter(|v| *v == 0.0)),
        Some(0.0)
    );
    assert_eq!(scalar(prom.port, puts), Some(2500.0));
    assert_eq!(
        scalar(prom.port, r#"mpqueue_size{queue="prom-e2e"}"#),
        Some(500.0)
    );
}

/// A queue with one item, so that a scrape has a queue series to show.
fn one_queue(dir: &Path, name: &str) -> Queue<u32> {
    let q: Queue<u32> = Queue::builder().name(name).dir(dir).create().unwrap();
    q.put(1).unwrap();
    q
}

#[test]
fn an_endless_header_line_is_cut_off_and_memory_stays_bounded() {
    let dir = queue_dir();
    let _q = one_queue(dir.path(), "busy");
    let ex = Exporter::start(dir.path());
    let pid = ex.child.id();
    let before = proc_status_bytes(pid, "VmHWM").expect("the exporter's VmHWM");

    // One header line of up to 64 MiB that never ends, sent in 64 KiB chunks until the
    // exporter stops taking it.
    const TOTAL: usize = 64 << 20;
    let sent = Arc::new(AtomicUsize::new(0));
    let port = ex.port;
    let writer = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let chunk = vec![b'a'; 64 << 10];
            let mut r = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ");
            while r.is_ok() && sent.load(Ordering::SeqCst) < TOTAL {
                r = s.write_all(&chunk);
                if r.is_ok() {
                    sent.fetch_add(chunk.len(), Ordering::SeqCst);
                }
            }
            // Whatever the exporter answered before it closed the connection.
            let mut answer = Vec::new();
            if r.is_err() {
                let _ = s.read_to_end(&mut answer);
            }
            (r, answer)
        })
    };
    // A normal scrape while the line is being sent…
    wait_for(Duration::from_secs(30), || {
        (sent.load(Ordering::SeqCst) > 0 || writer.is_finished()).then_some(())
    })
    .expect("the endless line never started");
    let (status, body) = scrape_within(ex.port, Duration::from_secs(10))
        .expect("a scrape while a client sends an endless header line");
    assert_eq!(status, 200);
    assert!(body.contains("mpqueue_puts_total{queue=\"busy\""), "{body}");

    let (result, answer) = writer.join().unwrap();
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        result.is_err(),
        "the exporter took all {sent} bytes of one header line without closing the connection"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty()
            || answer.starts_with("HTTP/1.1 431")
            || answer.starts_with("HTTP/1.1 400"),
        "answer to an endless header line: {answer:?}"
    );
    let peak = proc_status_bytes(pid, "VmHWM").expect("the exporter's VmHWM");
    let rss = proc_status_bytes(pid, "VmRSS").expect("the exporter's VmRSS");
    assert!(
        peak < 32 << 20,
        "the exporter's peak resident memory grew to {peak} bytes (from {before}; now {rss}) \
         after a client sent {sent} bytes of one header line"
    );

    // …and after.
    let (status, body) = scrape_within(ex.port, Duration::from_secs(10))
        .expect("a scrape after a client sent an endless header line");
    assert_eq!(status, 200);
    assert!(body.contains("mpqueue_puts_total{queue=\"busy\""), "{body}");
}

#[test]
fn idle_and_unread_connections_never_stall_a_scrape() {
    let dir = queue_dir();
    let _q = one_queue(dir.path(), "watched");
    let ex = Exporter::start(dir.path());

    // More clients than the exporter's connection limit (64) that connect and send nothing.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", ex.port)).unwrap())
        .collect();
    // A client that asks for /metrics, thousands of times in one go (pipelined), and never
    // reads an answer: whoever writes to it fills the socket buffers and then waits.
    let unread = TcpStream::connect(("127.0.0.1", ex.port)).unwrap();
    let mut w = unread.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let requests = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(10_000);
    let writer = std::thread::spawn(move || {
        // The exporter may close the connection after its first answer: errors are fine.
        let _ = w.write_all(requests.as_bytes());
    });
    // Await the exporter's first answer to it (unread: peeked, never consumed).
    wait_for(Duration::from_secs(30), || {
        unread.set_nonblocking(true).unwrap();
        let r = unread.peek(&mut [0u8; 1]);
        unread.set_nonblocking(false).unwrap();
        matches!(r, Ok(n) if n > 0).then_some(())
    })
    .expect("the exporter never answered the pipelined requests");

    // A normal scrape completes.
    let (status, body) = scrape_within(ex.port, Duration::from_secs(10)).expect(
        "a scrape while 100 idle clients are connected and one client never reads its answers",
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("mpqueue_puts_total{queue=\"watched\""),
        "{body}"
    );

    // The clients that send nothing are closed in the end (a header-read timeout).
    let open = wait_for(Duration::from_secs(30), || {
        let open = idle.iter().filter(|s| !closed_by_peer(s)).count();
        (open == 0).then_some(())
    });
    assert!(
        open.is_some(),
        "{} idle connections are still open",
        idle.iter().filter(|s| !closed_by_peer(s)).count()
    );
    writer.join().unwrap();
    drop(unread);
    assert_eq!(
        scrape_within(ex.port, Duration::from_secs(10)).unwrap().0,
        200
    );
}

#[test]
fn no_process_metrics_drops_the_per_process_series() {
    let dir = queue_dir();
    let q = one_queue(dir.path(), "lean");
    let child = process::fork(|| {
        q.put(2).unwrap();
        0
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);

    let full = Exporter::start(dir.path());
    let (status, body) = full.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("mpqueue_process_puts_total{queue=\"lean\""),
        "{body}"
    );

    let lean = Exporter::start_with(dir.path(), &["--no-process-metrics"]);
    let (status, body) = lean.get("/metrics");
    assert_eq!(status, 200);
    let (rc, msg) = check_metrics(&body);
    assert_eq!(rc, 0, "promtool: {msg}\n{body}");
    assert!(
        !body.contains("mpqueue_process_") && !body.contains("pid=\""),
        "per-process series left in:\n{body}"
    );
    assert_eq!(
        sample(&body, "mpqueue_puts_total{queue=\"lean\""),
        Some(2.0)
    );
    assert_eq!(sample(&body, "mpqueue_processes{queue=\"lean\""), Some(1.0));
    assert!(body.contains("mpqueue_exporter_scrape_duration_seconds_count"));
}

#[test]
fn methods_paths_and_head_requests() {
    let dir = queue_dir();
    let _q = one_queue(dir.path(), "paths");
    let ex = Exporter::start_with(dir.path(), &["--path", "/custom"]);
    let ask = |request: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", ex.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        String::from_utf8_lossy(&resp).into_owned()
    };
    let (status, body) = ex.get("/custom?debug=1");
    assert_eq!(status, 200);
    assert!(
        body.contains("mpqueue_puts_total{queue=\"paths\""),
        "{body}"
    );
    assert_eq!(ex.get("/metrics").0, 404);
    let (status, page) = ex.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<a href=\"/custom\">"), "{page}");
    let head = ask("HEAD /custom HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    assert!(
        head.ends_with("\r\n\r\n"),
        "a HEAD answer has no body: {head:?}"
    );
    let post = ask("POST /custom HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nhi");
    assert!(
        post.starts_with("HTTP/1.1 405") || post.starts_with("HTTP/1.0 405"),
        "{post}"
    );
    let garbage = ask("NOT HTTP AT ALL\r\n\r\n");
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );
    assert_eq!(ex.get("/custom").0, 200);
}
