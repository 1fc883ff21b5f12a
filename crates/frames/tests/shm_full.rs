//! A full shared-memory filesystem makes `create` fail with a "shm full" error that names the
//! sizes and the fix, and never a SIGBUS. Needs root to mount a 4 MiB tmpfs; otherwise the
//! test prints why it skipped.

mod common;

use common::pattern;
use common::small_tmpfs::SmallTmpfs;
use frames::{ErrorKind, ExportReader, SlotWriter, WriterOptions};

#[test]
fn create_on_a_full_tmpfs_fails_cleanly() {
    let tmpfs = match SmallTmpfs::mount("shm-full", "4m") {
        Ok(t) => t,
        Err(reason) => {
            println!("SKIPPED create_on_a_full_tmpfs_fails_cleanly: {reason}");
            return;
        }
    };
    let root = tmpfs.path();
    // 4 slots of 1080p need 4 * 3,112,960 bytes plus a page of metadata; 4 MiB is free.
    let err = SlotWriter::create(root, "front", &WriterOptions::new(1920, 1080))
        .err()
        .expect("12 MiB cannot fit in 4 MiB");
    assert_eq!(err.kind(), ErrorKind::ShmFull);
    let message = err.to_string();
    println!("{message}");
    let has = format!("{} has 4.0 MiB (4194304 bytes) free", root.display());
    assert!(message.starts_with(&has), "{message}");
    assert!(
        message.contains(
            "camera 'front' needs 11.9 MiB (12455936 bytes) for 4 slots of 1920x1080 NV12"
        ),
        "{message}"
    );
    assert!(
        message.contains("raise the size of /tmp/vas-frames-shm-full-"),
        "{message}"
    );
    assert!(message.contains("or lower [export] slots"), "{message}");
    // Nothing is left behind to confuse readers.
    let leftovers: Vec<_> = std::fs::read_dir(root.join("front"))
        .unwrap()
        .flatten()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        ExportReader::attach(root, "front").err().unwrap().kind(),
        ErrorKind::NoExport
    );

    // What fits still works, and fills every page without a fault: 2 slots of 640x480.
    let mut writer = SlotWriter::create(
        root,
        "small",
        &WriterOptions {
            slots: 2,
            ..WriterOptions::new(640, 480)
        },
    )
    .expect("926 KiB fits in 4 MiB");
    let mut scratch = Vec::new();
    for _ in 0..4 {
        let mut fill = writer.begin();
        pattern::fill(&mut fill, &mut scratch);
        let id = fill.frame_id();
        fill.publish(pattern::info(id));
    }
    let reader = ExportReader::attach(root, "small").unwrap();
    let latest = reader.latest().unwrap();
    let mut buf = Vec::new();
    let meta = reader
        .read_slot_into(latest.slot, latest.sequence, &mut buf)
        .unwrap();
    assert!(pattern::verify(&meta, &buf));

    // A second camera that no longer fits fails the same way, and the first keeps working.
    let err = SlotWriter::create(root, "second", &WriterOptions::new(1280, 720))
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::ShmFull, "{err}");
    let mut fill = writer.begin();
    pattern::fill(&mut fill, &mut scratch);
    let id = fill.frame_id();
    fill.publish(pattern::info(id));
    drop(reader);
    drop(writer);
}
