//! Issue 13 through `mpqueue-exporter`: time in queue, the oldest item's age and the health
//! verdicts, from real workloads of forked processes, read from the real exporter's page
//! and (time in queue) through a real Prometheus server scraping it.
//!
//! The verdicts come from the exporter's own health window, kept across scrapes: these
//! tests scrape it every [`REFRESH`], as Prometheus or a dashboard would.

mod support;
use mpqueue::{Queue, process};
use std::time::{Duration, Instant};
use support::prom::{Exporter, Prometheus, page, scalar, value};
use support::{
    Workers, all_threads_stopped, bin, die_with_parent, proc_status_bytes, queue_dir, wait_for,
    watchdog,
};

const LONG: Duration = Duration::from_secs(60);
/// How often the tests scrape the exporter.
const REFRESH: Duration = Duration::from_millis(250);

/// A process putting one item every `every` until killed.
fn producing(q: &Queue<u64>, every: Duration) -> process::Child {
    process::fork(|| {
        die_with_parent();
        for i in 0.. {
            q.put(i).unwrap();
            std::thread::sleep(every);
        }
        0
    })
    .unwrap()
}

/// A process that keeps about `depth` items queued, putting one whenever the queue holds
/// fewer, until killed.
fn topping_up(q: &Queue<u64>, depth: usize) -> process::Child {
    process::fork(|| {
        die_with_parent();
        for i in 0.. {
            if q.qsize() < depth {
                q.put(i).unwrap();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        0
    })
    .unwrap()
}

/// A process taking one item, then sleeping `every`, until killed.
fn consuming(q: &Queue<u64>, every: Duration) -> process::Child {
    process::fork(|| {
        die_with_parent();
        loop {
            let _ = q.get_timeout(Duration::from_secs(1));
            std::thread::sleep(every);
        }
    })
    .unwrap()
}

fn queue(dir: &std::path::Path, name: &str) -> Queue<u64> {
    Queue::builder().name(name).dir(dir).create().unwrap()
}

/// The status `mpqueue_health` gives queue `name`, checking that the state set is whole:
/// one sample per verdict, exactly one of them 1 and the others 0.
fn health(page: &str, name: &str) -> String {
    let prefix = format!("mpqueue_health{{queue=\"{name}\",");
    let states: Vec<(String, String)> = page
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| {
            let status = l.split("status=\"").nth(1).unwrap().split('"').next();
            let value = l.rsplit(' ').next().unwrap();
            (status.unwrap().to_string(), value.to_string())
        })
        .collect();
    let mut statuses: Vec<&str> = states.iter().map(|(s, _)| s.as_str()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        ["idle", "lagging", "no_consumer", "ok", "stalled"],
        "{page}"
    );
    let on: Vec<&str> = states
        .iter()
        .filter(|(_, v)| v == "1")
        .map(|(s, _)| s.as_str())
        .collect();
    assert!(
        on.len() == 1 && states.iter().all(|(_, v)| v == "0" || v == "1"),
        "{states:?}"
    );
    on[0].to_string()
}

/// Scrapes every [`REFRESH`] until queue `name` is `want` or `limit` passes: the statuses
/// seen, and the last page.
fn until(ex: &Exporter, name: &str, want: &str, limit: Duration) -> (Vec<String>, String) {
    let start = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let body = page(ex);
        let h = health(&body, name);
        if seen.last() != Some(&h) {
            seen.push(h.clone());
        }
        if h == want || start.elapsed() > limit {
            return (seen, body);
        }
        std::thread::sleep(REFRESH);
    }
}

/// About 20 items queued and one taken every 25 ms, so each waits about 500 ms: the median
/// Prometheus computes from `mpqueue_item_wait_seconds` is in 500 ms's bucket (268 ms,
/// 537 ms] or a neighbour.
#[test]
fn prometheus_finds_a_half_second_median_wait() {
    let _w = watchdog(Duration::from_secs(240));
    let dir = queue_dir();
    let name = "sojourn";
    let q = queue(dir.path(), name);
    let mut workers = Workers::default();
    workers.add(topping_up(&q, 20));
    assert!(wait_for(LONG, || (q.qsize() >= 20).then_some(())).is_some());
    workers.add(consuming(&q, Duration::from_millis(25)));

    let ex = Exporter::start(dir.path());
    let prom = Prometheus::start(ex.port);
    let up = wait_for(LONG, || scalar(prom.port, "up").filter(|v| *v == 1.0));
    assert!(up.is_some(), "Prometheus never scraped the exporter");
    // Every 16th item is stamped (2.5 a second here): wait until Prometheus has seen 15
    // stamped items in the last 10 s. The first 20 items, which waited less, went
    // through before the first scrape and only set the baseline.
    let count = format!("increase(mpqueue_item_wait_seconds_count{{queue=\"{name}\"}}[10s])");
    let counted = wait_for(Duration::from_secs(120), || {
        scalar(prom.port, &count).filter(|n| *n >= 15.0)
    });
    assert!(counted.is_some(), "too few stamped items:\n{}", page(&ex));
    let median = format!(
        "histogram_quantile(0.5, rate(mpqueue_item_wait_seconds_bucket{{queue=\"{name}\"}}[10s]))"
    );
    let p50 = scalar(prom.port, &median).expect("a median");
    // 0.5 s is in the bucket (2^28 ns, 2^29 ns]; a bucket either side is 2^27 to 2^30 ns.
    let (low, high) = (0.134_217_728, 1.073_741_824);
    assert!(
        p50 > low && p50 <= high,
        "p50 {p50} s, not within a bucket of 0.5 s\n{}",
        page(&ex)
    );
}

/// `--stall-after 2s`: a consumer stopped with SIGSTOP makes the queue `stalled` once no
/// item was got for 2 s while items that old wait (an exporter with `--stall-after 1h`
/// does not say so), `ok` again after SIGCONT; killed, it leaves `no_consumer`.
#[test]
fn stopped_consumer_is_stalled_then_ok_and_killed_one_no_consumer() {
    let _w = watchdog(Duration::from_secs(240));
    let dir = queue_dir();
    let name = "stall";
    let q = queue(dir.path(), name);
    let mut workers = Workers::default();
    workers.add(producing(&q, Duration::from_millis(10)));
    let consumer = workers.add(consuming(&q, Duration::ZERO));
    let ex = Exporter::start_with(dir.path(), &["--stall-after", "2s"]);
    // The same queues judged with a threshold no test reaches: never stalled.
    let patient = Exporter::start_with(dir.path(), &["--stall-after", "1h"]);
    let (seen, body) = until(&ex, name, "ok", LONG);
    assert_eq!(
        seen.last().map(String::as_str),
        Some("ok"),
        "{seen:?}\n{body}"
    );

    workers.0[consumer].kill(libc::SIGSTOP).unwrap();
    let (seen, body) = until(&ex, name, "stalled", LONG);
    assert_eq!(
        seen.last().map(String::as_str),
        Some("stalled"),
        "{seen:?}\n{body}"
    );
    // On the same page: nothing got for 2 s, and the oldest item is as old.
    // No sample if the consumer never got an item before it was stopped (a loaded machine).
    let last_get = value(&body, "mpqueue_last_get_age_seconds", name).unwrap_or(f64::INFINITY);
    let oldest = value(&body, "mpqueue_oldest_item_age_seconds", name).unwrap();
    assert!(last_get >= 2.0 && oldest >= 2.0, "{body}");
    let other = page(&patient);
    assert_ne!(health(&other, name), "stalled", "{other}");

    workers.0[consumer].kill(libc::SIGCONT).unwrap();
    let (seen, body) = until(&ex, name, "ok", LONG);
    assert_eq!(
        seen.last().map(String::as_str),
        Some("ok"),
        "{seen:?}\n{body}"
    );

    workers.0[consumer].kill(libc::SIGKILL).unwrap();
    let (seen, body) = until(&ex, name, "no_consumer", LONG);
    assert_eq!(
        seen.last().map(String::as_str),
        Some("no_consumer"),
        "{seen:?}\n{body}"
    );
    assert!(value(&body, "mpqueue_size", name).unwrap() > 0.0);
}

/// A consumer at half its producer's pace: `lagging` (items are got, the backlog grows
/// over the exporter's window of scrapes).
#[test]
fn slow_consumer_is_lagging() {
    let _w = watchdog(Duration::from_secs(240));
    let dir = queue_dir();
    let name = "lag";
    let q = queue(dir.path(), name);
    let mut workers = Workers::default();
    workers.add(producing(&q, Duration::from_millis(5)));
    workers.add(consuming(&q, Duration::from_millis(10)));
    let ex = Exporter::start(dir.path());
    let (seen, body) = until(&ex, name, "lagging", LONG);
    assert_eq!(
        seen.last().map(String::as_str),
        Some("lagging"),
        "{seen:?}\n{body}"
    );
    assert!(value(&body, "mpqueue_gets_total", name).unwrap() > 0.0);
    assert!(value(&body, "mpqueue_size", name).unwrap() > 0.0);
}

/// An empty queue nobody uses is `idle`, next to a busy one that is `ok`.
#[test]
fn empty_queue_is_idle() {
    let _w = watchdog(Duration::from_secs(240));
    let dir = queue_dir();
    let _idle = queue(dir.path(), "quiet");
    let busy = queue(dir.path(), "busy");
    let mut workers = Workers::default();
    workers.add(producing(&busy, Duration::from_millis(10)));
    workers.add(consuming(&busy, Duration::ZERO));
    let ex = Exporter::start(dir.path());
    let body = page(&ex);
    assert_eq!(health(&body, "quiet"), "idle", "{body}");
    assert_eq!(
        value(&body, "mpqueue_oldest_item_age_seconds", "quiet"),
        Some(0.0)
    );
    assert_eq!(value(&body, "mpqueue_size", "quiet"), Some(0.0));
    let (seen, body) = until(&ex, "busy", "ok", LONG);
    assert_eq!(
        seen.last().map(String::as_str),
        Some("ok"),
        "{seen:?}\n{body}"
    );
    assert_eq!(health(&body, "quiet"), "idle", "{body}");
}

/// One item put and never read: three seconds on, `mpqueue_oldest_item_age_seconds` is
/// between 2.5 and 4 s (the put timeline dates it to about a second, never younger), and
/// `mpqueue_last_get_age_seconds` has no sample, since nothing was ever got.
#[test]
fn unread_item_ages_on_the_page() {
    let _w = watchdog(Duration::from_secs(120));
    let dir = queue_dir();
    let name = "aging";
    let q = queue(dir.path(), name);
    let ex = Exporter::start(dir.path());
    let before_put = Instant::now();
    q.put(1).unwrap();
    let put_done = Instant::now();
    // Poll the page (it must show the item all along) until three seconds have passed.
    let waited = wait_for(LONG, || {
        let body = page(&ex);
        assert_eq!(value(&body, "mpqueue_size", name), Some(1.0), "{body}");
        (put_done.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    assert!(waited.is_some());
    let body = page(&ex);
    let at_most = before_put.elapsed().as_secs_f64();
    let age = value(&body, "mpqueue_oldest_item_age_seconds", name).expect("an age");
    // Up to 4 s as the issue asks; more only as far as this scrape itself came late.
    assert!(
        (2.5..=4.0_f64.max(at_most + 1.0)).contains(&age),
        "age {age} s after {at_most} s\n{body}"
    );
    assert_eq!(value(&body, "mpqueue_last_get_age_seconds", name), None);
    let buffered = value(&body, "mpqueue_buffered_items", name).expect("buffered items");
    assert!(buffered <= 1.0, "{body}");
}

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock of the queue's put timeline.
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    assert_eq!(rc, 0);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// An item that has waited 10 s while a producer kept putting behind it is dated to within
/// a scrape interval: by the last scrape before its put, not by the put timeline of the
/// stats header, whose points for that second are overwritten after about 8.6 s (its
/// 17 s tier's point, the best one left, was written 2.5 s before the put).
#[test]
fn an_item_older_than_the_timelines_fine_tier_is_dated_to_a_scrape() {
    let _w = watchdog(Duration::from_secs(120));
    let dir = queue_dir();
    let name = "old-head";
    let q = queue(dir.path(), name);
    let ex = Exporter::start(dir.path());
    // The timeline's 17 s tier (periods of 2^34 ns) must not start a period between the
    // first put and the item's, 2.5 s later, or that put would date the item exactly.
    const TIER1: u64 = 1 << 34;
    let left = TIER1 - monotonic_ns() % TIER1;
    if left < 3_500_000_000 {
        std::thread::sleep(Duration::from_nanos(left + 100_000_000));
    }
    q.put(0).unwrap();
    assert_eq!(q.get().unwrap(), 0);
    std::thread::sleep(Duration::from_millis(2500));
    let before_scrape = Instant::now();
    let body = page(&ex);
    assert_eq!(value(&body, "mpqueue_size", name), Some(0.0), "{body}");
    q.put(1).unwrap();
    let put_done = Instant::now();
    let mut workers = Workers::default();
    workers.add(producing(&q, Duration::from_millis(50)));
    let waited = wait_for(LONG, || {
        std::thread::sleep(REFRESH);
        page(&ex);
        (put_done.elapsed() >= Duration::from_secs(10)).then_some(())
    });
    assert!(waited.is_some());
    let at_least = put_done.elapsed().as_secs_f64();
    let body = page(&ex);
    let at_most = before_scrape.elapsed().as_secs_f64();
    let age = value(&body, "mpqueue_oldest_item_age_seconds", name).expect("an age");
    assert!(
        (at_least..=at_most).contains(&age),
        "age {age} s, not in [{at_least}, {at_most}] s\n{body}"
    );
}

/// An item that does not fit the ring waits in its producer's feeder buffer (the producer
/// is stopped, so it stays there): it shows in `mpqueue_buffered_items`, and its age is
/// the queue's oldest, while newer items go through.
#[test]
fn buffered_item_shows_in_buffered_items_with_its_age() {
    let _w = watchdog(Duration::from_secs(120));
    let dir = queue_dir();
    let name = "buffered";
    let q: Queue<Vec<u8>> = Queue::builder()
        .name(name)
        .dir(dir.path())
        .capacity_bytes(64 << 10)
        .create()
        .unwrap();
    let ready: Queue<u8> = Queue::builder().dir(dir.path()).create().unwrap();
    for _ in 0..40 {
        q.put(vec![0; 1000]).unwrap(); // 40 KiB of the ring's 64
    }
    let mut workers = Workers::default();
    let p = workers.add(
        process::fork(|| {
            die_with_parent();
            q.put(vec![1; 30_000]).unwrap(); // does not fit: stays in the feeder buffer
            ready.put(1).unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .unwrap(),
    );
    ready.get_timeout(LONG).unwrap();
    let put_at = Instant::now();
    workers.0[p].kill(libc::SIGSTOP).unwrap();
    // Stopped for sure (its feeder thread included) before any room is made.
    let pid = workers.0[p].pid();
    assert!(wait_for(LONG, || all_threads_stopped(pid).then_some(())).is_some());
    for _ in 0..40 {
        assert_eq!(q.get_timeout(LONG).unwrap().len(), 1000);
    }
    let ex = Exporter::start(dir.path());
    let waited = wait_for(LONG, || {
        (put_at.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    assert!(waited.is_some());
    // Newer items go through: only the buffered item's own stamp dates the head.
    for i in 0..5u8 {
        q.put(vec![i]).unwrap();
        assert_eq!(q.get_timeout(LONG).unwrap().len(), 1);
    }
    let body = page(&ex);
    let at_most = put_at.elapsed().as_secs_f64();
    assert_eq!(
        value(&body, "mpqueue_buffered_items", name),
        Some(1.0),
        "{body}"
    );
    assert_eq!(value(&body, "mpqueue_size", name), Some(1.0), "{body}");
    let age = value(&body, "mpqueue_oldest_item_age_seconds", name).expect("an age");
    assert!(
        (2.5..=at_most + 1.0).contains(&age),
        "age {age} s after {at_most} s\n{body}"
    );
}

/// The health window is kept across scrapes, but a client scraping as fast as it can does
/// not make it grow: a queue's snapshot enters it at most every 250 ms, and scrapes in
/// between get the last verdict.
#[test]
fn scraping_in_a_loop_does_not_grow_the_health_window() {
    let _w = watchdog(Duration::from_secs(120));
    let dir = queue_dir();
    let queues: Vec<Queue<u64>> = (0..20)
        .map(|i| queue(dir.path(), &format!("many-{i}")))
        .collect();
    for q in &queues {
        q.put(1).unwrap();
    }
    let ex = Exporter::start(dir.path());
    let rss = || proc_status_bytes(ex.child.id(), "VmRSS").expect("the exporter's VmRSS");
    for _ in 0..50 {
        page(&ex);
    }
    let before = rss();
    let start = Instant::now();
    let mut scrapes = 0;
    // Within one health window (10 s): without the floor, every scrape would add 20
    // snapshots and none would expire yet.
    while start.elapsed() < Duration::from_secs(5) {
        let body = page(&ex);
        assert_eq!(health(&body, "many-0"), "no_consumer");
        scrapes += 1;
    }
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 8 << 20,
        "resident memory grew by {grown} bytes over {scrapes} scrapes"
    );
}

/// `--stall-after` takes the same durations as `mpqueue-top` (`mpqueue::observe::
/// parse_duration`); anything else stops the exporter with a message naming the value.
#[test]
fn bad_stall_after_is_a_clear_error() {
    for (bad, says) in [
        ("10", "has no unit"),
        ("ten", "unknown unit"),
        ("5x", "unknown unit \"x\""),
        ("-1s", "negative"),
        ("", "empty duration"),
    ] {
        let out = std::process::Command::new(bin("mpqueue-exporter"))
            .args(["--listen", "127.0.0.1:0", &format!("--stall-after={bad}")])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(
            err.contains("--stall-after") && err.contains(says),
            "{bad:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "it never started serving");
    }
}
