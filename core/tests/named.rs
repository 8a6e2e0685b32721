//! Named queues: create/open/unlink, permissions, hostile files, clean-up of shared memory.

mod common;
use common::*;
use mpqueue::{Error, Queue, observe, process};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn unrelated_process_opens_by_name() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<String> = Queue::builder()
        .name("by-name")
        .maxsize(3)
        .create()
        .unwrap();
    // The child does not use the parent's handle: it opens the queue by name, as an
    // unrelated process would.
    let child = process::fork(|| {
        let mine: Queue<String> = Queue::open("by-name").unwrap();
        assert_eq!(mine.maxsize(), 3);
        mine.put("from the opener".into()).unwrap();
        0
    })
    .unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), "from the opener");
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn create_existing_name_fails_unless_open_or_create() {
    setup();
    let a: Queue<u8> = Queue::builder().name("twice").create().unwrap();
    assert!(matches!(
        Queue::<u8>::builder().name("twice").create(),
        Err(Error::AlreadyExists { name }) if name == "twice"
    ));
    let b: Queue<u8> = Queue::builder()
        .name("twice")
        .open_or_create(true)
        .create()
        .unwrap();
    a.put(4).unwrap();
    assert_eq!(b.get().unwrap(), 4);
}

#[test]
fn open_missing_is_not_found() {
    setup();
    let e = Queue::<u8>::open("nobody-made-this").unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert_eq!(e.to_string(), "no queue named \"nobody-made-this\"");
}

#[test]
fn bad_names_are_rejected() {
    setup();
    for bad in [
        "",
        "../etc",
        "a/b",
        ".x",
        "-x",
        "sp ace",
        "ü",
        &"n".repeat(101),
    ] {
        let e = Queue::<u8>::builder().name(bad).create().unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{bad:?}: {e}");
        assert!(matches!(
            Queue::<u8>::open(bad),
            Err(Error::InvalidName { .. })
        ));
    }
}

#[test]
fn bad_options_are_rejected() {
    setup();
    assert!(matches!(
        Queue::<u8>::builder().max_processes(0).create(),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        Queue::<u8>::builder().capacity_bytes(usize::MAX).create(),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        Queue::<u8>::builder().max_item_size(0).create(),
        Err(Error::InvalidOption { .. })
    ));
}

#[test]
fn segments_are_private_by_default_and_group_on_request() {
    let dir = setup();
    let _a: Queue<u8> = Queue::builder().name("private").create().unwrap();
    let _b: Queue<u8> = Queue::builder()
        .name("grouped")
        .group_access(true)
        .create()
        .unwrap();
    for (name, mode) in [("private", 0o600), ("grouped", 0o660)] {
        for ext in ["data", "stats"] {
            let md = std::fs::metadata(dir.join(format!("q.{name}.{ext}"))).unwrap();
            assert_eq!(md.permissions().mode() & 0o777, mode, "{name}.{ext}");
        }
    }
}

#[test]
fn foreign_or_corrupt_files_are_refused() {
    let dir = setup();
    // Not a segment at all.
    std::fs::write(dir.join("q.foreign.data"), vec![0x41; 8192]).unwrap();
    std::fs::write(dir.join("q.foreign.stats"), vec![0x41; 8192]).unwrap();
    let e = Queue::<u8>::open("foreign").unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    // Truncated.
    std::fs::write(dir.join("q.short.data"), b"MPQ").unwrap();
    assert!(matches!(
        Queue::<u8>::open("short"),
        Err(Error::Corrupt { .. })
    ));
    // A real queue whose stats file was replaced by garbage.
    let _q: Queue<u8> = Queue::builder().name("scribbled").create().unwrap();
    std::fs::write(dir.join("q.scribbled.stats"), vec![7u8; 70_656]).unwrap();
    assert!(matches!(
        Queue::<u8>::open("scribbled"),
        Err(Error::Corrupt { .. })
    ));
    // A symlink planted in the directory is not followed.
    std::os::unix::fs::symlink("/etc/passwd", dir.join("q.link.data")).unwrap();
    assert!(matches!(
        Queue::<u8>::open("link"),
        Err(Error::Corrupt { .. })
    ));
    for f in ["foreign.data", "foreign.stats", "short.data", "link.data"] {
        std::fs::remove_file(dir.join(format!("q.{f}"))).unwrap();
    }
}

#[test]
fn unlink_removes_name_but_attached_handles_keep_working() {
    let dir = setup();
    let q: Queue<u8> = Queue::builder().name("unlinked").create().unwrap();
    assert!(mpqueue::unlink("unlinked").unwrap());
    assert!(!dir.join("q.unlinked.data").exists());
    assert!(matches!(
        Queue::<u8>::open("unlinked"),
        Err(Error::NotFound { .. })
    ));
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
    assert!(!mpqueue::unlink("unlinked").unwrap());
}

#[test]
fn last_handle_removes_the_shared_memory() {
    let dir = setup();
    let named = |n: &str| dir.join(format!("q.{n}.stats")).exists();
    {
        let q: Queue<u8> = Queue::builder().name("short-lived").create().unwrap();
        let q2 = q.clone();
        drop(q);
        assert!(named("short-lived"));
        q2.put(1).unwrap();
    }
    assert!(!named("short-lived"));
    assert!(!dir.join("q.short-lived.data").exists());
    // Anonymous queues too; and children keep it alive after the parent's handle is gone.
    let q: Queue<u8> = Queue::builder().label("anon-life").create().unwrap();
    let files = |label: &str| {
        observe::list()
            .unwrap()
            .into_iter()
            .filter(|r| r.snapshot().is_ok_and(|s| s.name == label))
            .count()
    };
    assert_eq!(files("anon-life"), 1);
    let gate: Queue<u8> = Queue::new(0).unwrap();
    let child = process::fork(|| {
        gate.get_timeout(LONG).unwrap();
        q.put(42).unwrap();
        0
    })
    .unwrap();
    let reader = q.clone();
    drop(q);
    assert_eq!(files("anon-life"), 1, "the child still holds it");
    gate.put(0).unwrap();
    assert_eq!(reader.get_timeout(LONG).unwrap(), 42);
    assert_eq!(child.join().unwrap(), 0);
    drop(reader);
    assert_eq!(files("anon-life"), 0);
}

#[test]
fn crashed_creator_leftovers_can_be_removed() {
    let dir = setup();
    // A creator killed right after creating the files leaves an unpublished segment.
    std::fs::write(dir.join("q.half-made.data"), vec![0u8; 8192]).unwrap();
    std::fs::write(dir.join("q.half-made.stats"), vec![0u8; 4096]).unwrap();
    assert!(matches!(
        Queue::<u8>::builder().name("half-made").create(),
        Err(Error::AlreadyExists { .. })
    ));
    let e = Queue::<u8>::open("half-made").unwrap_err();
    assert!(e.to_string().contains("never initialised"), "{e}");
    assert!(mpqueue::unlink("half-made").unwrap());
    let q: Queue<u8> = Queue::builder().name("half-made").create().unwrap();
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
}

#[test]
fn oversized_items_get_a_clear_error() {
    setup();
    let q: Queue<Vec<u8>> = Queue::builder().max_item_size(1000).create().unwrap();
    let e = q.put(vec![0; 2000]).unwrap_err();
    // 2000 bytes plus a 3-byte varint length prefix.
    assert!(
        matches!(
            e,
            mpqueue::PutError::TooLarge {
                size: 2003,
                max: 1000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "item of 2003 bytes exceeds the queue's limit of 1000 bytes"
    );
    assert_eq!(e.into_inner().len(), 2000);
    q.put(vec![0; 990]).unwrap();
    assert_eq!(q.get().unwrap().len(), 990);
}

#[test]
fn default_limit_takes_64_mib_items() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<Vec<u8>> = Queue::new(0).unwrap();
    let child = process::fork(|| {
        q.put(vec![0xAB; (64 << 20) - 16]).unwrap();
        0
    })
    .unwrap();
    let v = q.get_timeout(LONG).unwrap();
    assert_eq!(v.len(), (64 << 20) - 16);
    assert!(v.iter().all(|&b| b == 0xAB));
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn decode_errors_report_length_and_the_queue_goes_on() {
    setup();
    let w: Queue<String> = Queue::builder().name("typed").create().unwrap();
    let r: Queue<u64> = Queue::open("typed").unwrap();
    w.put("not a number at all".into()).unwrap();
    w.put("x".into()).unwrap();
    match r.get() {
        Err(mpqueue::GetError::Decode { len, reason }) => {
            assert_eq!(len, 20);
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let s: Queue<String> = Queue::open("typed").unwrap();
    assert_eq!(s.get().unwrap(), "x");
    assert!(r.empty());
}

/// Issue 11: a child killed before it ever used an inherited queue does not keep the
/// queue's files for ever (its claim was a counter that only the child could give back).
#[test]
fn a_child_killed_before_attaching_does_not_keep_the_files() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u8> = Queue::builder().name("killed-claim").create().unwrap();
    let child = process::fork(|| {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    unsafe { libc::kill(child.pid() as i32, libc::SIGKILL) };
    assert!(child.join().is_err(), "killed");
    drop(q);
    let left: Vec<_> = leftovers()
        .into_iter()
        .filter(|f| f.contains("killed-claim"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Issue 11: the last process detaching races with another opening the queue. The opener
/// either attaches first (and the files stay) or finds the queue gone and looks the name up
/// again; it never keeps a queue that no one else can find.
#[test]
fn the_last_detach_never_strands_a_racing_opener() {
    setup();
    let _w = watchdog(Duration::from_secs(120));
    let flags = SharedBytes::new(4096);
    let stop = || flags.byte(0).load(std::sync::atomic::Ordering::SeqCst) != 0;
    // An unrelated-looking opener: a child that never touches the parent's handles.
    let opener = process::fork(|| {
        let mut met = 0u32;
        for round in 0..20_000u64 {
            if stop() && met > 50 {
                break;
            }
            let Ok(first) = Queue::<u64>::open("race") else {
                continue;
            };
            met += 1;
            match Queue::<u64>::open("race") {
                Ok(second) => {
                    first.put(round).unwrap();
                    if second.get_timeout(LONG) != Ok(round) {
                        return 2; // two queues under one name
                    }
                }
                Err(Error::NotFound { .. }) => return 1, // attached to a queue with no name
                Err(_) => {}
            }
        }
        0
    })
    .unwrap();
    let mut rounds = 0;
    while rounds < 20_000 {
        let q: Queue<u64> = Queue::builder()
            .name("race")
            .open_or_create(true)
            .create()
            .unwrap();
        drop(q);
        rounds += 1;
        if rounds == 2000 {
            flags.byte(0).store(1, std::sync::atomic::Ordering::SeqCst);
        }
        if rounds > 2000 && process_exited(&opener) {
            break;
        }
    }
    flags.byte(0).store(1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        opener.join().unwrap(),
        0,
        "1: stranded opener, 2: two queues"
    );
}

fn process_exited(c: &process::Child) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", c.pid()))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
