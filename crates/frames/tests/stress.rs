//! Stress test of the seqlock: a writer at full speed into a 2-slot ring of small frames,
//! readers verifying every frame they accept against a pattern derived from its frame id.
//!
//! Release: `cargo test -p frames --release --test stress -- --nocapture` (>= 10^6 read
//! attempts per test, a few seconds each). Debug builds do a twentieth of the attempts
//! (see common::scaled_attempts).
//!
//! Both tests also require that some reads were rejected as torn or lapped: a run where the
//! writer never overtook a reader could not have caught anything.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::ChildWriter;
use common::{pattern, scaled_attempts, TestRoot};
use frames::{ExportReader, ReadError, SlotWriter, WriterOptions};

/// 64x48 NV12 is 4,608 bytes: small enough that the writer laps readers often.
const SIZE: (u32, u32) = (64, 48);
const SLOTS: u32 = 2;
const READERS: u64 = 2;

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    attempts: u64,
    accepted: u64,
    accepted_bad: u64,
    torn: u64,
    lapped: u64,
    no_frame: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.attempts += other.attempts;
        self.accepted += other.accepted;
        self.accepted_bad += other.accepted_bad;
        self.torn += other.torn;
        self.lapped += other.lapped;
        self.no_frame += other.no_frame;
    }
}

/// One reader thread: alternates the copy path and the borrow path, and every fourth attempt
/// reads a reference taken one attempt earlier, which is often lapped by then.
fn read_and_verify(reader: &ExportReader, attempts: u64) -> Tally {
    let mut tally = Tally::default();
    let mut buf = Vec::new();
    let mut held = None;
    while tally.attempts < attempts {
        let Some(latest) = reader.latest() else {
            tally.no_frame += 1;
            if tally.no_frame > 10_000_000 {
                panic!("the writer published nothing");
            }
            std::hint::spin_loop();
            continue;
        };
        tally.attempts += 1;
        let target = match (tally.attempts % 4, held.replace(latest)) {
            (0, Some(old)) => old,
            _ => latest,
        };
        let result = if tally.attempts % 2 == 0 {
            reader
                .read_slot_into(target.slot, target.sequence, &mut buf)
                .map(|meta| meta.frame_id == target.meta.frame_id && pattern::verify(&meta, &buf))
        } else {
            reader.with_slot(target.slot, target.sequence, |meta, bytes| {
                meta.frame_id == target.meta.frame_id && pattern::verify(meta, bytes)
            })
        };
        match result {
            Ok(true) => tally.accepted += 1,
            Ok(false) => tally.accepted_bad += 1,
            Err(ReadError::Torn) => tally.torn += 1,
            Err(ReadError::Lapped) => tally.lapped += 1,
            Err(other) => panic!("unexpected read error: {other}"),
        }
    }
    tally
}

fn run_readers(root: &std::path::Path, camera: &str, total_attempts: u64) -> (Tally, Duration) {
    let started = Instant::now();
    let handles: Vec<_> = (0..READERS)
        .map(|i| {
            let root = root.to_path_buf();
            let camera = camera.to_string();
            std::thread::Builder::new()
                .name(format!("reader-{i}"))
                .spawn(move || {
                    let reader = ExportReader::attach(&root, &camera).expect("attach");
                    let tally = read_and_verify(&reader, total_attempts / READERS);
                    let stats = reader.read_stats();
                    assert_eq!(stats.torn, tally.torn, "reader's own torn count");
                    assert_eq!(stats.lapped, tally.lapped, "reader's own lapped count");
                    tally
                })
                .unwrap()
        })
        .collect();
    let mut total = Tally::default();
    for h in handles {
        total.add(&h.join().expect("reader thread"));
    }
    (total, started.elapsed())
}

fn check(label: &str, tally: &Tally, elapsed: Duration, frames_written: Option<u64>, target: u64) {
    println!(
        "{label}: {} attempts in {:.2} s, accepted {}, rejected torn {} lapped {}, accepted torn {}{}",
        tally.attempts,
        elapsed.as_secs_f64(),
        tally.accepted,
        tally.torn,
        tally.lapped,
        tally.accepted_bad,
        frames_written.map(|n| format!(", frames written {n}")).unwrap_or_default()
    );
    assert_eq!(tally.accepted_bad, 0, "a torn frame was accepted");
    assert!(tally.attempts >= target);
    assert!(
        tally.torn + tally.lapped > 0,
        "no read was ever rejected: the writer never overtook a reader, so this run proves nothing"
    );
    assert!(tally.accepted > 0, "no read was ever accepted");
}

#[test]
fn writer_thread_never_hands_out_a_torn_frame() {
    let root = TestRoot::new("stress-thread");
    let opts = WriterOptions {
        slots: SLOTS,
        width: SIZE.0,
        height: SIZE.1,
        group: None,
    };
    let mut writer = SlotWriter::create(root.path(), "stress", &opts).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer_stop = stop.clone();
    let writer_thread = std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || {
            let mut scratch = Vec::new();
            let mut written = 0u64;
            // Relaxed: a stop request, no data travels with it.
            while !writer_stop.load(Ordering::Relaxed) {
                let mut fill = writer.begin();
                pattern::fill(&mut fill, &mut scratch);
                let id = fill.frame_id();
                assert_eq!(fill.publish(pattern::info(id)), id);
                written += 1;
            }
            written
        })
        .unwrap();
    let target = scaled_attempts(1_000_000);
    let (tally, elapsed) = run_readers(root.path(), "stress", target);
    // Relaxed: see the writer loop.
    stop.store(true, Ordering::Relaxed);
    let written = writer_thread.join().unwrap();
    check("writer thread", &tally, elapsed, Some(written), target);
}

#[test]
fn child_writer_entry() {
    common::child::run_if_requested();
}

#[test]
fn writer_process_never_hands_out_a_torn_frame() {
    let root = TestRoot::new("stress-process");
    let child = ChildWriter::spawn(
        "child_writer_entry",
        "stress",
        root.path(),
        "stress",
        SIZE,
        SLOTS,
    );
    let target = scaled_attempts(1_000_000);
    let (tally, elapsed) = run_readers(root.path(), "stress", target);
    child.stop();
    check("writer process", &tally, elapsed, None, target);
}
