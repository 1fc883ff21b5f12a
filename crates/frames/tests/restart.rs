//! Writer restarts, crashes and resolution changes: attached readers notice (`is_stale`),
//! re-attaching works and sees a new generation, and frame ids keep increasing where the
//! contract says they do.

mod common;

use common::child::ChildWriter;
use common::{pattern, TestRoot};
use frames::{ExportReader, ReadError, SlotWriter, StaleReason, WriterOptions};

fn publish(writer: &mut SlotWriter) -> u64 {
    let mut scratch = Vec::new();
    let mut fill = writer.begin();
    pattern::fill(&mut fill, &mut scratch);
    let id = fill.frame_id();
    fill.publish(pattern::info(id))
}

#[test]
fn clean_restart_makes_readers_stale_and_reattach_sees_a_new_generation() {
    let root = TestRoot::new("restart-clean");
    let mut first = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    publish(&mut first);
    let reader = ExportReader::attach(root.path(), "cam").unwrap();
    assert_eq!(reader.stale_reason(), None);
    let old_generation = reader.generation();
    let old_ref = reader.latest().unwrap().frame_ref();
    drop(first);
    assert_eq!(reader.stale_reason(), Some(StaleReason::Closed));
    assert!(
        !root.path().join("cam").exists(),
        "drop removes the files and the directory"
    );

    let mut second = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    publish(&mut second);
    assert!(reader.is_stale());
    let again = ExportReader::attach(root.path(), "cam").unwrap();
    assert!(!again.is_stale());
    assert!(again.generation() > old_generation);
    // A reference from the old generation is refused by the new attachment.
    let mut buf = Vec::new();
    assert_eq!(
        again.read_frame_into(&old_ref, &mut buf),
        Err(ReadError::WrongGeneration {
            reference: old_generation,
            attached: again.generation()
        })
    );
    let latest = again.latest().unwrap();
    let meta = again
        .read_frame_into(&latest.frame_ref(), &mut buf)
        .unwrap();
    assert!(pattern::verify(&meta, &buf));
}

#[test]
fn crash_leftovers_are_replaced_and_frame_ids_continue() {
    let root = TestRoot::new("restart-crash");
    let mut crashed = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    for _ in 0..5 {
        publish(&mut crashed);
    }
    let reader = ExportReader::attach(root.path(), "cam").unwrap();
    // A crash: no Drop, the files stay with state LIVE.
    std::mem::forget(crashed);
    assert_eq!(
        reader.stale_reason(),
        None,
        "our own pid is alive, so nothing tells yet"
    );

    let mut replacement =
        SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    // The replacement closed the leftover header, which the old reader still maps.
    assert_eq!(reader.stale_reason(), Some(StaleReason::Closed));
    assert_eq!(
        publish(&mut replacement),
        6,
        "frame ids continue after a crash"
    );
    let again = ExportReader::attach(root.path(), "cam").unwrap();
    assert!(again.generation() > reader.generation());
    assert_eq!(again.latest().unwrap().meta.frame_id, 6);
}

#[test]
fn child_writer_entry() {
    common::child::run_if_requested();
}

#[test]
fn a_killed_writer_process_is_detected() {
    let root = TestRoot::new("restart-killed");
    let mut child = ChildWriter::spawn(
        "child_writer_entry",
        "step",
        root.path(),
        "cam",
        (64, 48),
        2,
    );
    child.step();
    let reader = ExportReader::attach(root.path(), "cam").unwrap();
    assert_eq!(reader.generation(), child.generation);
    assert_eq!(reader.info().writer_pid, child.pid());
    assert_eq!(reader.stale_reason(), None);
    child.kill();
    // SIGKILL: no Drop ran, the files and state LIVE remain; only the pid check can tell.
    assert!(root.path().join("cam/frame.meta").exists());
    assert_eq!(reader.stale_reason(), Some(StaleReason::WriterGone));
    // The mapping stays readable after the writer died.
    let latest = reader.latest().unwrap();
    let mut buf = Vec::new();
    let meta = reader
        .read_slot_into(latest.slot, latest.sequence, &mut buf)
        .unwrap();
    assert!(pattern::verify(&meta, &buf));
}

#[test]
fn reconfigure_starts_a_new_generation_and_keeps_frame_ids() {
    let root = TestRoot::new("restart-resize");
    let mut writer = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    assert_eq!(publish(&mut writer), 1);
    assert_eq!(publish(&mut writer), 2);
    let reader = ExportReader::attach(root.path(), "cam").unwrap();
    let generation = writer.generation();
    writer.reconfigure(64, 48).unwrap();
    assert_eq!(
        writer.generation(),
        generation,
        "same size: nothing happens"
    );
    assert!(!reader.is_stale());

    writer.reconfigure(96, 54).unwrap();
    assert_eq!(writer.geometry(), (96, 54));
    assert!(writer.generation() > generation);
    assert_eq!(reader.stale_reason(), Some(StaleReason::Closed));
    assert_eq!(
        publish(&mut writer),
        3,
        "frame ids carry over a resolution change"
    );
    let again = ExportReader::attach(root.path(), "cam").unwrap();
    assert_eq!((again.info().width, again.info().height), (96, 54));
    assert_eq!(again.generation(), writer.generation());
    let latest = again.latest().unwrap();
    assert_eq!(
        (latest.meta.frame_id, latest.meta.width, latest.meta.height),
        (3, 96, 54)
    );
    let mut buf = Vec::new();
    let meta = again
        .read_slot_into(latest.slot, latest.sequence, &mut buf)
        .unwrap();
    assert!(pattern::verify(&meta, &buf));
    assert_eq!(buf.len(), 96 * 54 * 3 / 2);
}

#[test]
fn an_abandoned_fill_is_never_visible() {
    let root = TestRoot::new("restart-abandon");
    let mut writer = SlotWriter::create(root.path(), "cam", &WriterOptions::new(64, 48)).unwrap();
    assert_eq!(publish(&mut writer), 1);
    let reader = ExportReader::attach(root.path(), "cam").unwrap();
    let before = reader.latest().unwrap();
    {
        let mut fill = writer.begin();
        fill.y_plane_mut().fill(0xEE);
        // Dropped without publish: e.g. the decoder failed mid-frame.
    }
    assert_eq!(
        reader.latest().unwrap(),
        before,
        "latest still names the last published frame"
    );
    let abandoned_slot = (before.slot + 1) % reader.info().slots;
    assert_eq!(
        reader.slot_ref(abandoned_slot),
        Err(ReadError::Torn),
        "odd sequence: being written"
    );
    let id = {
        let mut fill = writer.begin();
        assert_eq!(
            fill.slot(),
            abandoned_slot,
            "the next begin reuses the abandoned slot"
        );
        let mut scratch = Vec::new();
        pattern::fill(&mut fill, &mut scratch);
        let id = fill.frame_id();
        fill.publish(pattern::info(id))
    };
    assert_eq!(id, 2, "no frame id is used up by the abandoned fill");
    let latest = reader.latest().unwrap();
    let mut buf = Vec::new();
    let meta = reader
        .read_slot_into(latest.slot, latest.sequence, &mut buf)
        .unwrap();
    assert!(pattern::verify(&meta, &buf));
}
