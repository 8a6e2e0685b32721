//! Anonymous queues handed to processes that did not inherit them through `fork`
//! (`Queue::handoff`, `Builder::open_handoff`): how Python's `spawn` and `forkserver`
//! children get a queue.

mod common;
use common::*;
use mpqueue::{Error, JoinableQueue, Queue, SimpleQueue, process};
use std::ffi::CString;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);
/// Set in the re-executed test binary: the stats file and the descriptor number it got.
const CHILD_ENV: &str = "MPQUEUE_TEST_HANDOFF";

/// The re-executed process's part: attach through the handoff, answer, leave.
fn execed_child(spec: &str) -> ! {
    let (file, fd) = spec.split_once(':').unwrap();
    let fd: i32 = fd.parse().unwrap();
    // The descriptor was inherited across exec: this process owns it now.
    let data = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .map(OwnedFd::from);
    let code = match data.and_then(|d| {
        Queue::<String>::builder()
            .open_handoff(std::path::Path::new(file), d)
            .map_err(std::io::Error::other)
    }) {
        Ok(q) => {
            let got = q.get_timeout(LONG).unwrap();
            q.put(format!("{got}, answered")).unwrap();
            0
        }
        Err(e) => {
            eprintln!("handoff failed: {e}");
            3
        }
    };
    std::process::exit(code)
}

#[test]
fn an_execed_process_attaches_through_the_handoff() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        execed_child(&spec);
    }
    setup();
    let _w = watchdog(Duration::from_secs(60));
    let q: Queue<String> = Queue::builder().label("handed").create().unwrap();
    q.put("asked".into()).unwrap();
    let h = q.handoff().unwrap();
    let file = h.stats_path.to_str().unwrap().to_owned();
    let data = h.data.try_clone_to_owned().unwrap();
    // A fresh program (exec), as a spawned Python child is: it has no mapping, no
    // registration and no slot of the queue, only the file name and the descriptor.
    let child = process::fork(|| {
        // A copy without close-on-exec, kept open into the new program.
        let fd = nix::unistd::dup(&data).unwrap().into_raw_fd();
        let exe = CString::new(std::env::current_exe().unwrap().to_str().unwrap()).unwrap();
        let args = [
            exe.clone(),
            CString::new("--exact").unwrap(),
            CString::new("an_execed_process_attaches_through_the_handoff").unwrap(),
            CString::new("--nocapture").unwrap(),
        ];
        // SAFETY: single-threaded child right after fork; set_var before exec.
        unsafe { std::env::set_var(CHILD_ENV, format!("{file}:{fd}")) };
        let _ = nix::unistd::execv(&exe, &args);
        4
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(q.get_timeout(LONG).unwrap(), "asked, answered");
}

#[test]
fn every_kind_can_be_handed_off_and_named_queues_cannot() {
    setup();
    let j = JoinableQueue::<u8>::new(0).unwrap();
    let h = j.handoff().unwrap();
    let data = h.data.try_clone_to_owned().unwrap();
    let j2 = JoinableQueue::<u8>::open_handoff(Queue::builder(), h.stats_path, data).unwrap();
    j.put(1).unwrap();
    assert_eq!(j2.get_timeout(LONG).unwrap(), 1);
    assert!(!j.join_timeout(Duration::ZERO));
    j2.task_done().unwrap();
    assert!(j.join_timeout(LONG));

    let s = SimpleQueue::<u8>::new().unwrap();
    let h = s.handoff().unwrap();
    let s2 = SimpleQueue::<u8>::open_handoff(h.stats_path, h.data.try_clone_to_owned().unwrap())
        .unwrap();
    s2.put(2).unwrap();
    assert_eq!(s.get().unwrap(), 2);

    let named: Queue<u8> = Queue::builder().name("not-handed").create().unwrap();
    assert!(named.handoff().is_none());
}

#[test]
fn a_queue_everyone_left_is_gone() {
    setup();
    let q: Queue<u8> = Queue::new(0).unwrap();
    let h = q.handoff().unwrap();
    let (file, data) = (
        h.stats_path.to_owned(),
        h.data.try_clone_to_owned().unwrap(),
    );
    drop(q);
    let e = Queue::<u8>::builder()
        .open_handoff(&file, data)
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn bad_handoffs_are_refused() {
    setup();
    let q: Queue<u8> = Queue::new(0).unwrap();
    let other: Queue<u8> = Queue::new(0).unwrap();
    let h = q.handoff().unwrap();
    let fd = || h.data.try_clone_to_owned().unwrap();
    let dir = h.stats_path.parent().unwrap();
    let bad_paths = ["q.x.stats", "a.1.2.stats", "a.1.2.x.stats", "a.1.2.3.data"]
        .map(|f| dir.join(f))
        .into_iter()
        .chain(["a.1.2.3.stats", "", "/"].map(std::path::PathBuf::from));
    for bad in bad_paths {
        let e = Queue::<u8>::builder().open_handoff(&bad, fd()).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{bad:?}: {e:?}");
    }
    // Another queue's data segment with this queue's stats file.
    let wrong = other.handoff().unwrap().data.try_clone_to_owned().unwrap();
    let e = Queue::<u8>::builder()
        .open_handoff(h.stats_path, wrong)
        .unwrap_err();
    assert!(matches!(e, Error::Removed { .. }), "{e:?}");
    // Not a data segment at all: an empty file, and one of garbage.
    let empty = OwnedFd::from(tempfile::tempfile().unwrap());
    let e = Queue::<u8>::builder()
        .open_handoff(h.stats_path, empty)
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    let mut junk = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut junk, &[0xA5; 8192]).unwrap();
    let e = Queue::<u8>::builder()
        .open_handoff(h.stats_path, junk.into())
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    // None of this disturbed the queue.
    q.put(5).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 5);
}

#[test]
fn a_handed_off_memory_file_cannot_be_resized_or_leak_into_programs_started_later() {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::fd::{AsRawFd, BorrowedFd};
    setup();
    let q: Queue<u8> = Queue::new(0).unwrap();
    let h = q.handoff().unwrap();
    // Whoever holds the memory file cannot shrink it under the others' mappings.
    let file = std::fs::File::from(h.data.try_clone_to_owned().unwrap());
    assert!(file.set_len(0).is_err());
    assert!(file.set_len(1 << 30).is_err());
    // A descriptor handed over without close-on-exec (as a dup gives) gets it.
    let inherited = nix::unistd::dup(h.data).unwrap();
    let raw = inherited.as_raw_fd();
    assert_eq!(
        fcntl(&inherited, FcntlArg::F_GETFD).unwrap() & FdFlag::FD_CLOEXEC.bits(),
        0
    );
    let other = Queue::<u8>::builder()
        .open_handoff(h.stats_path, inherited)
        .unwrap();
    // SAFETY: `other` keeps the descriptor open while it is borrowed here.
    let kept = unsafe { BorrowedFd::borrow_raw(raw) };
    assert_ne!(
        fcntl(kept, FcntlArg::F_GETFD).unwrap() & FdFlag::FD_CLOEXEC.bits(),
        0
    );
    q.put(7).unwrap();
    assert_eq!(other.get_timeout(LONG).unwrap(), 7);
}
