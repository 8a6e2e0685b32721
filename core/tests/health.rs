//! The health verdicts, each from a real workload of forked processes: a stopped consumer
//! is `Stalled` and `Ok` again once it runs, a killed one leaves `NoConsumer`, a slow one
//! is `Lagging`, an empty queue is `Idle` (issue 13).

mod common;
use common::*;
use mpqueue::Queue;
use mpqueue::observe::{Health, HealthRules, HealthWindow};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);
/// How often the tests look, as a dashboard refreshes.
const REFRESH: Duration = Duration::from_millis(250);

fn rules(stall_after: Duration) -> HealthRules {
    HealthRules {
        stall_after,
        idle_after: stall_after,
        window: Duration::from_secs(4),
    }
}

/// Polls the queue's verdict (over `window`) until it is `want`; the verdicts seen.
fn until(name: &str, window: &mut HealthWindow, want: Health, limit: Duration) -> Vec<Health> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < limit {
        let h = window.judge(&snapshot(name));
        seen.push(h);
        if h == want {
            break;
        }
        std::thread::sleep(REFRESH);
    }
    seen
}

#[test]
fn an_empty_queue_is_idle() {
    setup();
    let q: Queue<u64> = Queue::builder().name("idle").create().unwrap();
    assert_eq!(snapshot("idle").health(), Health::Idle);
    // Items that went through, and nothing since: idle again once `idle_after` passed.
    q.put(1).unwrap();
    q.get().unwrap();
    let r = rules(Duration::from_secs(1));
    assert_eq!(snapshot("idle").health_with(&r), Health::Ok);
    assert!(eventually(LONG, || snapshot("idle").health_with(&r) == Health::Idle));
    let mut w = HealthWindow::new(r);
    assert_eq!(
        until("idle", &mut w, Health::Idle, LONG).last(),
        Some(&Health::Idle)
    );
}

/// SIGSTOP on the consumer: `Stalled` once `stall_after` has passed (not before), and `Ok`
/// again after SIGCONT; SIGKILL: `NoConsumer`.
#[test]
fn a_stopped_consumer_stalls_and_a_killed_one_leaves_no_consumer() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let name = "stall";
    let stall_after = Duration::from_secs(2);
    let q: Queue<u64> = Queue::builder().name(name).create().unwrap();
    let producer = producing(&q, Duration::from_millis(10));
    let mut consumer = consuming(&q, Duration::ZERO);
    let mut w = HealthWindow::new(rules(stall_after));
    let seen = until(name, &mut w, Health::Ok, LONG);
    assert_eq!(seen.last(), Some(&Health::Ok), "{seen:?}");

    // Stop it just after it got an item.
    let gets = snapshot(name).gets;
    assert!(eventually(LONG, || snapshot(name).gets > gets));
    consumer.kill(libc::SIGSTOP).unwrap();
    let stopped = Instant::now();
    std::thread::sleep(stall_after / 2);
    let early = snapshot(name);
    if stopped.elapsed() < stall_after {
        assert_ne!(early.health_with(w.rules()), Health::Stalled, "{early:?}");
    }
    let seen = until(name, &mut w, Health::Stalled, LONG);
    assert_eq!(seen.last(), Some(&Health::Stalled), "{seen:?}");
    let took = stopped.elapsed();
    assert!(took >= stall_after, "stalled after {took:?}");
    let s = snapshot(name);
    assert!(s.last_get_age.unwrap() >= stall_after, "{s:?}");
    assert!(s.oldest_age.unwrap() >= stall_after, "{s:?}");

    consumer.kill(libc::SIGCONT).unwrap();
    let seen = until(name, &mut w, Health::Ok, LONG);
    assert_eq!(seen.last(), Some(&Health::Ok), "{seen:?}");

    consumer.kill(libc::SIGKILL).unwrap();
    let _ = consumer.join_timeout(LONG);
    let seen = until(name, &mut w, Health::NoConsumer, LONG);
    assert_eq!(seen.last(), Some(&Health::NoConsumer), "{seen:?}");
    stop(vec![producer]);
}

/// A consumer at half the producer's pace: `Lagging` (items are got, the backlog grows).
#[test]
fn a_slow_consumer_lags() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let name = "lag";
    let q: Queue<u64> = Queue::builder().name(name).create().unwrap();
    let producer = producing(&q, Duration::from_millis(5));
    let consumer = consuming(&q, Duration::from_millis(10));
    let mut w = HealthWindow::new(rules(Duration::from_secs(10)));
    let seen = until(name, &mut w, Health::Lagging, LONG);
    let s = snapshot(name);
    stop(vec![producer, consumer]);
    assert_eq!(seen.last(), Some(&Health::Lagging), "{seen:?}");
    assert!(s.gets > 0 && s.size > 0, "{s:?}");
}
