//! Measures what one 1080p NV12 frame costs to move through the export, and prints it:
//! the writer's first and later writes into a slot (the mapping is pre-faulted, so the first
//! write should cost about what the later ones do), and the reader's race-free atomic-word
//! copy (`read_slot_into`) against a plain memcpy of the same bytes (`with_slot`).
//!
//! `cargo test -p frames --release --test copy_cost -- --nocapture`. Asserts only sanity
//! bounds, 50 times above the expected costs, so a slow machine cannot make it fail.

mod common;

use std::time::{Duration, Instant};

use common::TestRoot;
use frames::{ExportReader, FrameInfo, SlotWriter, WriterOptions};

const ROUNDS: u32 = 50;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[test]
fn one_1080p_frame_through_the_export() {
    let root = TestRoot::new("copy-cost");
    let opts = WriterOptions::new(1920, 1080);
    let mut writer = SlotWriter::create(root.path(), "cam", &opts).unwrap();
    let source: Vec<u8> = (0..3_110_400u32).map(|i| (i % 251) as u8).collect();
    let write = |writer: &mut SlotWriter| {
        let started = Instant::now();
        let mut fill = writer.begin();
        let (y, uv) = fill.planes_mut();
        let y_len = y.len();
        y.copy_from_slice(&source[..y_len]);
        uv.copy_from_slice(&source[y_len..]);
        fill.publish(FrameInfo::captured_now(0));
        started.elapsed()
    };
    let first_writes: Vec<Duration> = (0..opts.slots).map(|_| write(&mut writer)).collect();
    let hot_writes: Vec<Duration> = (0..ROUNDS).map(|_| write(&mut writer)).collect();

    let attach_started = Instant::now();
    let reader = ExportReader::attach(root.path(), "cam").unwrap();
    let attach_time = attach_started.elapsed();
    let latest = reader.latest().unwrap();
    // Touched up front, so the first read measures the reader's mapping faults rather than
    // those of a fresh allocation.
    let mut buf = vec![1u8; source.len()];
    let first_read_started = Instant::now();
    reader
        .read_slot_into(latest.slot, latest.sequence, &mut buf)
        .unwrap();
    let first_read = first_read_started.elapsed();
    let atomic: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            reader
                .read_slot_into(latest.slot, latest.sequence, &mut buf)
                .unwrap();
            started.elapsed()
        })
        .collect();
    assert_eq!(buf, source);
    let mut plain = vec![0u8; source.len()];
    let memcpy: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            reader
                .with_slot(latest.slot, latest.sequence, |_, bytes| {
                    plain.copy_from_slice(bytes)
                })
                .unwrap();
            started.elapsed()
        })
        .collect();
    assert_eq!(plain, source);

    let worst_first = *first_writes.iter().max().unwrap();
    println!(
        "reader attach (4 slots of 1080p) {:.3} ms, its first read of a slot (page faults of \
         the reader's mapping) {:.3} ms",
        ms(attach_time),
        ms(first_read)
    );
    println!(
        "1080p NV12 ({} bytes), median of {ROUNDS}: writer first write into a pre-faulted slot \
         {:.3} ms (worst), later writes {:.3} ms; reader read_slot_into {:.3} ms, plain memcpy \
         {:.3} ms",
        source.len(),
        ms(worst_first),
        ms(median(hot_writes.clone())),
        ms(median(atomic.clone())),
        ms(median(memcpy.clone())),
    );
    if !cfg!(debug_assertions) {
        assert!(median(atomic) < Duration::from_millis(25));
        assert!(worst_first < Duration::from_millis(100));
    }
}
