//! Bad environments and hostile input: a full /dev/shm, few file descriptors, another
//! process scribbling over the segments, a planted symlink, a parent that exits without
//! joining its children. Clear errors, no panic, no hang, no corruption of the rest.

mod common;
use common::*;
use mpqueue::{Error, GetError, Queue, observe, process};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A small tmpfs mounted on a fresh directory (the test runs as root, as CI does).
struct SmallTmpfs(tempfile::TempDir);

impl SmallTmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mpqueue-tmpfs-")
            .tempdir_in("/dev/shm")
            .unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("mount(8) must exist");
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        SmallTmpfs(dir)
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn full_shm_is_a_clear_error_and_existing_queues_keep_working() {
    setup();
    let fs = SmallTmpfs::mount("600k");
    let dir = fs.0.path();
    let mut made = Vec::new();
    let err = loop {
        let q = Queue::<Vec<u8>>::builder()
            .name(&format!("fill-{}", made.len()))
            .dir(dir)
            .capacity_bytes(64 << 10)
            .create();
        match q {
            Ok(q) => made.push(q),
            Err(e) => break e,
        }
        assert!(made.len() < 100, "the small tmpfs never filled up");
    };
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no space for the queue's shared memory"),
        "{err}"
    );
    assert!(!made.is_empty());
    // No half-made queue is left behind, and the others work, big items included.
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), made.len() * 2, "{names:?}");
    for q in &made {
        q.put(vec![1; 200_000]).unwrap();
        assert_eq!(q.get_timeout(LONG).unwrap().len(), 200_000);
    }
}

#[test]
fn queues_need_no_file_descriptors_once_made() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let child = process::fork(|| {
        // SAFETY: lowers this child's own descriptor limit.
        unsafe {
            let lim = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        // Far more queues than descriptors: files are closed once mapped.
        let qs: Vec<Queue<u32>> = (0..100)
            .map(|i| Queue::builder().name(&format!("fd-{i}")).create().unwrap())
            .collect();
        for (i, q) in qs.iter().enumerate() {
            q.put(i as u32).unwrap();
            assert_eq!(q.get().unwrap(), i as u32);
        }
        // With no descriptor at all, creating fails with a clear error, nothing panics.
        // SAFETY: as above.
        unsafe {
            let lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 32,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        match Queue::<u32>::builder().name("no-fd").create() {
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EMFILE) => {}
            other => {
                eprintln!("unexpected: {other:?}");
                return 1;
            }
        }
        qs[0].put(7).unwrap();
        i32::from(qs[0].get().unwrap() != 7)
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
}

fn scribble(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn scribbled_ring_gives_errors_not_panics() {
    let dir = setup();
    let q: Queue<String> = Queue::builder()
        .name("scribbled-ring")
        .capacity_bytes(4096)
        .create()
        .unwrap();
    for i in 0..5 {
        q.put(format!("item {i}")).unwrap();
    }
    let data = dir.join("q.scribbled-ring.data");
    // Random bytes over the records.
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    scribble(&data, 4096, &junk);
    let mut errors = 0;
    for _ in 0..10 {
        match q.get_timeout(Duration::from_millis(50)) {
            Ok(_) | Err(GetError::Empty) => {}
            Err(GetError::Corrupt { .. } | GetError::Decode { .. }) => errors += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(errors >= 1, "corruption went unnoticed");
    // The queue goes on after skipping what it could not read.
    q.put("after".into()).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), "after");
    let s = observe::list()
        .unwrap()
        .into_iter()
        .find(|r| r.name() == "scribbled-ring")
        .unwrap()
        .snapshot()
        .unwrap();
    assert!(s.frames_discarded >= 1);
}

#[test]
fn scribbled_positions_and_counts_give_errors_not_panics() {
    let dir = setup();
    let q: Queue<u64> = Queue::builder()
        .name("scribbled-head")
        .maxsize(4)
        .create()
        .unwrap();
    q.put(1).unwrap();
    let data = dir.join("q.scribbled-head.data");
    // write_pos (offset 192, pinned in layout.rs) far beyond read_pos: "more data than the
    // ring holds".
    scribble(&data, 192, &u64::MAX.to_le_bytes());
    assert!(matches!(
        q.get_timeout(Duration::from_millis(100)),
        Err(GetError::Corrupt { .. })
    ));
    // Huge counters in the stats segment: observers and the queue stay sane.
    let stats = dir.join("q.scribbled-head.stats");
    scribble(&stats, 256, &(u64::MAX - 3).to_le_bytes()); // reserved
    scribble(&stats, 1024 + 64, &u64::MAX.to_le_bytes()); // retired puts
    let s = observe::list()
        .unwrap()
        .into_iter()
        .find(|r| r.name() == "scribbled-head")
        .unwrap()
        .snapshot()
        .unwrap();
    assert!(s.size <= s.puts);
    let _ = q.qsize();
    let _ = q.full();
    assert!(
        q.put_timeout(2, Duration::from_millis(50)).is_err(),
        "the counters say full"
    );
    // Garbage process-slot state: the observer reports the entry as corrupt, nothing else.
    scribble(&stats, 1024 + 1024, &7u64.to_le_bytes());
    let r = observe::list()
        .unwrap()
        .into_iter()
        .find(|r| r.name() == "scribbled-head")
        .unwrap();
    assert!(matches!(r.snapshot(), Err(Error::Corrupt { .. })));
}

#[test]
fn symlinked_queue_directory_is_refused() {
    let dir = setup();
    let target = tempfile::Builder::new()
        .prefix("mpqueue-target-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let link = dir.join("linked-dir");
    std::os::unix::fs::symlink(target.path(), &link).unwrap();
    let e = Queue::<u8>::builder()
        .name("x")
        .dir(&link)
        .create()
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("symlinks are not followed"));
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
    std::fs::remove_file(&link).unwrap();
}

#[test]
fn non_utf8_files_in_the_directory_are_ignored() {
    use std::os::unix::ffi::OsStrExt;
    let dir = setup();
    let weird = dir.join(std::ffi::OsStr::from_bytes(b"q.\xff\xfe.stats"));
    std::fs::write(&weird, b"x").unwrap();
    let _q: Queue<u8> = Queue::builder().label("beside-weird").create().unwrap();
    let list = observe::list().unwrap();
    assert!(
        list.iter()
            .any(|r| r.snapshot().is_ok_and(|s| s.name == "beside-weird"))
    );
    std::fs::remove_file(&weird).unwrap();
}

#[test]
fn parent_exiting_without_joining_children_loses_nothing() {
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<u32> = Queue::new(0).unwrap();
    // A middle process forks three workers and exits at once without joining them.
    let middle = process::fork(|| {
        for w in 0..3u32 {
            let q = &q;
            let _ = process::fork(move || {
                std::thread::sleep(Duration::from_millis(50));
                for i in 0..1000 {
                    q.put(w * 1000 + i).unwrap();
                }
                0
            })
            .unwrap();
        }
        0
    })
    .unwrap();
    assert_eq!(middle.join().unwrap(), 0);
    let mut got: Vec<u32> = (0..3000).map(|_| q.get_timeout(LONG).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..3000).collect::<Vec<_>>());
}

/// A segment written by another layout version (an older or newer mpqueue) is refused with
/// a clear error naming the version, and observers report it without touching it.
#[test]
fn other_layout_versions_are_refused_by_name() {
    let dir = setup();
    let q: Queue<u64> = Queue::builder().name("versions").create().unwrap();
    q.put(1).unwrap();
    let data = dir.join("q.versions.data");
    let stats = dir.join("q.versions.stats");
    // The data segment of layout 3 (before records carried put stamps).
    scribble(&data, 8, &0x0003_0000u32.to_le_bytes());
    match Queue::<u64>::open("versions") {
        Err(e @ Error::Incompatible { .. }) => {
            assert!(matches!(
                &e,
                Error::Incompatible { path, major: 3, supported: 4, .. } if *path == data
            ));
            assert!(e.to_string().contains("3.0; this build reads 4.x"), "{e}");
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    scribble(&data, 8, &0x0004_0000u32.to_le_bytes());
    // A stats segment of a future major version.
    scribble(&stats, 8, &0x0009_0003u32.to_le_bytes());
    match Queue::<u64>::open("versions") {
        Err(Error::Incompatible {
            major,
            minor,
            supported,
            ..
        }) => assert_eq!((major, minor, supported), (9, 3, 1)),
        other => panic!("expected Incompatible, got {other:?}"),
    }
    let entry = observe::list()
        .unwrap()
        .into_iter()
        .find(|r| r.name() == "versions")
        .unwrap();
    assert!(matches!(
        entry.snapshot(),
        Err(Error::Incompatible { major: 9, .. })
    ));
    // Back to this version: the queue and its item are intact.
    scribble(&stats, 8, &0x0001_0001u32.to_le_bytes());
    let again = Queue::<u64>::open("versions").unwrap();
    assert_eq!(again.get_timeout(LONG), Ok(1));
}

fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

/// Whether the main thread of `pid` is inside a `futex` system call (a lock or futex wait).
fn in_futex_wait(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<libc::c_long>().ok())
        == Some(libc::SYS_futex)
}

/// Issue 11: a stopped process holds the slot lock. A forked child's first `put_timeout`
/// (which attaches it) ends at its own deadline with `Full`, and `open`, which has no
/// deadline, gives up with `Error::Busy`. The order in which they end shows the deadline was
/// honoured, without timing either: the `put_timeout` (1 s) starts after the `open` (10 s)
/// is already waiting, yet ends first; were its deadline ignored it would wait the lock's
/// own 10 s as well (and then also return `Full`) and end second.
#[test]
fn stopped_slot_lock_holder_put_timeout_is_full_by_its_deadline_open_is_busy() {
    let dir = setup();
    let _w = watchdog(Duration::from_secs(120));
    let q: Queue<u64> = Queue::builder().name("busy-attach").create().unwrap();
    // Bytes 0 and 1: go for the opener and the putter; 2: the opener is about to wait;
    // 3: how many have finished; 4, 5: the opener's and the putter's result; 6, 7: the
    // order in which they finished.
    let flags = SharedBytes::new(4096);
    let byte = |i: usize| flags.byte(i);
    let load = |i: usize| byte(i).load(std::sync::atomic::Ordering::SeqCst);
    let store = |i: usize, v: u8| byte(i).store(v, std::sync::atomic::Ordering::SeqCst);
    let finished = |result: usize, rank: usize, code: u8| {
        store(result, code);
        let order = byte(3).fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        store(rank, order + 1);
    };
    let await_go = |i: usize| {
        while load(i) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let opener = process::fork(|| {
        await_go(0);
        store(2, 1);
        let code = match Queue::<u64>::open("busy-attach") {
            Err(Error::Busy { .. }) => 1,
            Err(_) => 2,
            Ok(_) => 3,
        };
        finished(4, 6, code);
        0
    })
    .unwrap();
    let putter = process::fork(|| {
        await_go(1);
        let code = match q.put_timeout(7, Duration::from_secs(1)) {
            Err(mpqueue::PutError::Full(7)) => 1,
            Err(mpqueue::PutError::Broken { .. }) => 2,
            _ => 3,
        };
        finished(5, 7, code);
        0
    })
    .unwrap();
    let stats = dir.join("q.busy-attach.stats");
    let mut holder = process::fork(move || {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&stats)
            .unwrap();
        // SAFETY: maps the whole stats file shared; the robust mutex `slot_lock` lives at
        // offset 448 (pinned in layout.rs) and is initialised by the queue's creator.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            libc::pthread_mutex_lock(p.cast::<u8>().add(448).cast());
            libc::raise(libc::SIGSTOP);
        }
        0
    })
    .unwrap();
    assert!(eventually(LONG, || stopped(holder.pid())));
    store(0, 1);
    assert!(
        eventually(LONG, || load(2) == 1 && in_futex_wait(opener.pid())),
        "the opener never waited for the slot lock"
    );
    store(1, 1);
    assert!(eventually(Duration::from_secs(60), || load(3) == 2));
    let (open_code, put_code) = (load(4), load(5));
    let (open_rank, put_rank) = (load(6), load(7));
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    unsafe { libc::kill(holder.pid() as i32, libc::SIGKILL) };
    let _ = holder.join_timeout(LONG);
    let _ = putter.join();
    let _ = opener.join();
    assert_eq!(
        put_code, 1,
        "put_timeout: 1 Full, 2 Broken (the lock wait failed), 3 other"
    );
    assert_eq!(open_code, 1, "open: 1 Busy, 2 another error, 3 opened");
    assert_eq!(
        (put_rank, open_rank),
        (1, 2),
        "the put_timeout started later but ended first: its deadline was honoured"
    );
}

/// Issue 11: a hostile `max_item` in the stats header is refused when opening, and a
/// streamed item announcing a huge length is an error for that item, never a panic or an
/// abort on allocation.
#[test]
fn hostile_item_limits_and_lengths_are_errors_not_panics() {
    let dir = setup();
    let q: Queue<Vec<u8>> = Queue::builder()
        .name("huge-len")
        .capacity_bytes(64 << 10)
        .create()
        .unwrap();
    let (data, stats) = (dir.join("q.huge-len.data"), dir.join("q.huge-len.stats"));
    // max_item (stats header offset 48) out of any sane range.
    scribble(&stats, 48, &u64::MAX.to_le_bytes());
    assert!(matches!(
        Queue::<Vec<u8>>::open("huge-len"),
        Err(Error::Corrupt { .. })
    ));
    // A legal but enormous limit, and a FIRST record (kind 2) announcing 2^39 bytes, then
    // one announcing 2^62: both consumers get an error for the item and go on.
    scribble(&stats, 48, &(1u64 << 40).to_le_bytes());
    let consumer = Queue::<Vec<u8>>::open("huge-len").unwrap();
    for (n, total) in [(0u64, 1u64 << 39), (1, 1 << 62)] {
        let at = 4096 + 24 * n;
        scribble(
            &data,
            at,
            &[16u32.to_le_bytes(), 2u32.to_le_bytes()].concat(),
        );
        scribble(&data, at + 8, &total.to_le_bytes());
        scribble(&data, at + 16, &[0; 8]);
        scribble(&data, 192, &(24 * (n + 1)).to_le_bytes());
        assert!(
            consumer.get_timeout(Duration::from_millis(200)).is_err(),
            "an item of {total} bytes cannot be read"
        );
    }
    q.put(vec![5; 10]).unwrap();
    assert_eq!(consumer.get_timeout(LONG), Ok(vec![5; 10]));
}
