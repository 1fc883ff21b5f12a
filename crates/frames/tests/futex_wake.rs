//! wait_for_publish really sleeps in FUTEX_WAIT on the read-only mapping, wakes on a publish
//! (from a thread or from another process), times out when nothing is published, and
//! returns when the writer closes.
//!
//! Timeouts are generous (30 s) so a loaded machine cannot make the wake tests flake; a
//! passing run takes milliseconds.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::child::ChildWriter;
use common::{pattern, TestRoot};
use frames::{ExportReader, SlotWriter, WaitOutcome, WriterOptions};

const GENEROUS: Duration = Duration::from_secs(30);

fn publish(writer: &mut SlotWriter) -> u64 {
    let mut scratch = Vec::new();
    let mut fill = writer.begin();
    pattern::fill(&mut fill, &mut scratch);
    let id = fill.frame_id();
    fill.publish(pattern::info(id))
}

/// The system call thread `tid` of this process is blocked in, from /proc (first field of
/// /proc/self/task/TID/syscall; "running" when it is not in one).
fn blocked_syscall(tid: i32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Starts a waiter thread and returns once it is asleep in the futex system call.
fn start_waiter(
    reader: std::sync::Arc<ExportReader>,
    timeout: Duration,
) -> mpsc::Receiver<(WaitOutcome, Duration)> {
    let counter = reader.publish_counter();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("waiter".into())
        .spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let started = Instant::now();
            let outcome = reader.wait_for_publish(counter, timeout);
            done_tx.send((outcome, started.elapsed())).unwrap();
        })
        .unwrap();
    let tid = tid_rx.recv().unwrap();
    let deadline = Instant::now() + GENEROUS;
    while blocked_syscall(tid) != Some(libc::SYS_futex) {
        assert!(
            Instant::now() < deadline,
            "the waiter never blocked in FUTEX_WAIT"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    done_rx
}

#[test]
fn a_blocked_reader_wakes_on_publish() {
    let root = TestRoot::new("futex-wake");
    let mut writer = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    let reader = std::sync::Arc::new(ExportReader::attach(root.path(), "cam").unwrap());
    let before = reader.publish_counter();
    let done = start_waiter(reader.clone(), GENEROUS);
    // It is asleep in the kernel now, not polling: give it a moment to prove it stays there.
    std::thread::sleep(Duration::from_millis(50));
    assert!(done.try_recv().is_err(), "returned without a publish");
    let published = Instant::now();
    publish(&mut writer);
    let (outcome, waited) = done.recv_timeout(GENEROUS).expect("the waiter woke");
    let latency = published.elapsed();
    assert_eq!(
        outcome,
        WaitOutcome::Published {
            counter: before.wrapping_add(1)
        }
    );
    assert!(waited < GENEROUS);
    println!(
        "woke {:.3} ms after the publish",
        latency.as_secs_f64() * 1e3
    );
}

#[test]
fn a_reader_times_out_when_nothing_is_published() {
    let root = TestRoot::new("futex-timeout");
    let _writer = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    let reader = ExportReader::attach(root.path(), "cam").unwrap();
    let counter = reader.publish_counter();
    let started = Instant::now();
    assert_eq!(
        reader.wait_for_publish(counter, Duration::from_millis(200)),
        WaitOutcome::TimedOut
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    // A stale counter returns at once, whatever the timeout (even one too long for Instant).
    assert_eq!(
        reader.wait_for_publish(counter.wrapping_sub(1), Duration::MAX),
        WaitOutcome::Published { counter }
    );
}

#[test]
fn a_blocked_reader_wakes_when_the_writer_closes() {
    let root = TestRoot::new("futex-close");
    let writer = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    let reader = std::sync::Arc::new(ExportReader::attach(root.path(), "cam").unwrap());
    let done = start_waiter(reader.clone(), GENEROUS);
    drop(writer);
    let (outcome, _) = done.recv_timeout(GENEROUS).expect("the waiter woke");
    assert_eq!(outcome, WaitOutcome::Closed);
}

#[test]
fn child_writer_entry() {
    common::child::run_if_requested();
}

#[test]
fn a_publish_in_another_process_wakes_the_reader() {
    let root = TestRoot::new("futex-process");
    let mut child = ChildWriter::spawn(
        "child_writer_entry",
        "step",
        root.path(),
        "cam",
        (64, 48),
        2,
    );
    let reader = std::sync::Arc::new(ExportReader::attach(root.path(), "cam").unwrap());
    let before = reader.publish_counter();
    let done = start_waiter(reader.clone(), GENEROUS);
    child.step_async();
    let (outcome, _) = done.recv_timeout(GENEROUS).expect("the waiter woke");
    assert_eq!(
        outcome,
        WaitOutcome::Published {
            counter: before.wrapping_add(1)
        }
    );
    assert_eq!(child.expect_line("published"), "1");
    let latest = reader.latest().unwrap();
    assert_eq!(latest.meta.frame_id, 1);
    child.stop();
}
